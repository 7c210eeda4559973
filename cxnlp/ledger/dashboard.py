"""Queries the dashboard pages need beyond the month summary: the filtered record list, the per-month
trend, sentiment by channel, departments' workload. Every count is made by the database; the month's
own figures (totals, shares, change, overdue, alerts) come from ``summary.month_summary`` and are not
counted again here. The trend reads each month with the summary's own counter, so a month's bar in
the trend is the same number as that month's summary."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, case, cast, func, or_, select, text
from sqlalchemy.orm import Session

from cxnlp.errors import LedgerError
from cxnlp.ledger.models import FeedbackRecord
from cxnlp.ledger.records import utcnow
from cxnlp.ledger.summary import OPEN_STATUSES, _effective_sentiment, _month_counts, month_bounds, previous_month

NONE = "(none)"  # the summary's name for a record without channel or department
SORTS = {
    "received_at": FeedbackRecord.received_at,
    "confidence": FeedbackRecord.confidence,
    "due_at": FeedbackRecord.due_at,
    "severity": FeedbackRecord.severity,
    "status": FeedbackRecord.status,
    "id": FeedbackRecord.id,
}
MAX_PER_PAGE = 200


@dataclass
class RecordFilter:
    """What the 台账 list shows; an empty field does not filter. ``needs_review`` means confidence under
    the model's threshold and no analyst correction yet (what the review queue holds); ``unresolved``: a status the summary counts as open."""

    month: str | None = None
    category: str | None = None
    problem: str | None = None
    kind: str | None = None
    urgency: str | None = None
    sentiment: str | None = None
    severity: str | None = None
    status: str | None = None
    unresolved: bool = False
    department: str | None = None
    channel: str | None = None
    overdue: bool = False
    needs_review: bool = False
    q: str | None = None

    def as_params(self) -> dict[str, str]:
        """The filter as query parameters (for links and the export)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is True:
                out[f.name] = "1"
            elif value:
                out[f.name] = str(value)
        return out


def overdue_clause(now: datetime) -> Any:
    """Overdue as the month summary counts it: still open and past its deadline (and, in a ledger that
    tells complaints from praise and questions, a complaint: only complaints have a deadline)."""
    clause = and_(FeedbackRecord.status.in_(OPEN_STATUSES), FeedbackRecord.due_at < now)
    kind = getattr(FeedbackRecord, "kind", None)
    return clause if kind is None else and_(kind == "complaint", clause)


def needs_review_clause(min_confidence: float) -> Any:
    """A prediction needs review when its confidence is under the model's threshold (as
    ``Prediction.needs_review``) and no analyst has corrected it yet."""
    return and_(FeedbackRecord.confidence < min_confidence, FeedbackRecord.corrected_at.is_(None))


def _effective_categories_text() -> Any:
    return cast(func.coalesce(FeedbackRecord.corrected_categories, FeedbackRecord.categories), Text)


def _optional(column: Any, value: str) -> Any:
    return or_(column.is_(None), column == "") if value == NONE else column == value


def filter_clauses(f: RecordFilter, *, now: datetime, min_confidence: float) -> list[Any]:
    clauses: list[Any] = []
    if f.month:
        start, end = month_bounds(f.month)
        clauses += [FeedbackRecord.received_at >= start, FeedbackRecord.received_at < end]
    if f.category:
        # Categories are stored as a JSON list of names; a quoted name is one whole element.
        clauses.append(_effective_categories_text().contains(f'"{f.category}"', autoescape=True))
    if f.problem:
        problems = getattr(FeedbackRecord, "problems", None)  # ledgers with a problem catalogue (issue 11)
        if problems is None:
            raise LedgerError("this ledger does not record problems")
        clauses.append(cast(problems, Text).contains(f'"{f.problem}"', autoescape=True))
    for name in ("kind", "urgency"):  # complaint / praise / inquiry and 紧急 / 一般 / 咨询 (issue 11)
        value = getattr(f, name)
        if value:
            column = getattr(FeedbackRecord, name, None)
            if column is None:
                raise LedgerError(f"this ledger does not record {name}")
            clauses.append(column == value)
    if f.sentiment:
        clauses.append(_effective_sentiment() == f.sentiment)
    if f.severity:
        clauses.append(FeedbackRecord.severity == f.severity)
    if f.status:
        clauses.append(FeedbackRecord.status == f.status)
    if f.unresolved:
        clauses.append(FeedbackRecord.status.in_(OPEN_STATUSES))
    if f.department:
        clauses.append(_optional(FeedbackRecord.department, f.department))
    if f.channel:
        clauses.append(_optional(FeedbackRecord.channel, f.channel))
    if f.overdue:
        clauses.append(overdue_clause(now))
    if f.needs_review:
        clauses.append(needs_review_clause(min_confidence))
    if f.q:
        clauses.append(or_(FeedbackRecord.text.contains(f.q, autoescape=True),
                           FeedbackRecord.source_id.contains(f.q, autoescape=True)))
    return clauses


def _ordered(query: Any, sort: str, descending: bool) -> Any:
    if sort not in SORTS:
        raise LedgerError(f"cannot sort by {sort!r} (one of {', '.join(SORTS)})")
    column = SORTS[sort]
    return query.order_by(column.desc() if descending else column.asc(),
                          FeedbackRecord.id.desc() if descending else FeedbackRecord.id.asc())


def list_records(*, session: Session, filters: RecordFilter, min_confidence: float, sort: str = "received_at",
                 descending: bool = True, page: int = 1, per_page: int = 50, now: datetime | None = None
                 ) -> tuple[list[FeedbackRecord], int]:
    """One page of the filtered records and the number of records the filter matches."""
    where = filter_clauses(filters, now=now or utcnow(), min_confidence=min_confidence)
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    total = session.scalar(select(func.count()).select_from(FeedbackRecord).where(*where)) or 0
    query = _ordered(select(FeedbackRecord).where(*where), sort, descending)
    rows = list(session.scalars(query.offset((max(page, 1) - 1) * per_page).limit(per_page)))
    return rows, total


def iter_records(*, session: Session, filters: RecordFilter, min_confidence: float, sort: str = "received_at",
                 descending: bool = True, now: datetime | None = None) -> Iterator[FeedbackRecord]:
    """Every record the filter matches, read in batches (the export of the filtered list)."""
    where = filter_clauses(filters, now=now or utcnow(), min_confidence=min_confidence)
    query = _ordered(select(FeedbackRecord).where(*where), sort, descending).execution_options(yield_per=1000)
    yield from session.scalars(query)


def months_back(month: str, n: int) -> list[str]:
    """``n`` months ending with ``month``, oldest first."""
    months = [month]
    while len(months) < n:
        months.append(previous_month(months[-1]))
    return months[::-1]


def category_trend(*, session: Session, month: str, categories: Sequence[str], n: int = 6,
                   known: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """Negative feedback per category for the ``n`` months up to ``month``, counted by the summary's
    own month counter (one GROUP BY per month). ``known``: months already counted (the summary holds
    this month and the previous one), taken as they are rather than counted again."""
    months = months_back(month, n)
    known = known or {}
    counts = {m: known[m] if m in known else dict(_month_counts(session, m).by_cat) for m in months}
    return {"months": months, "series": {c: [counts[m].get(c, 0) for m in months] for c in categories}}


def summary_counts(summary: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The per-category negative counts a month summary already holds (its month and the previous)."""
    return {summary["month"]: {c: v["count"] for c, v in summary["by_category"].items()},
            summary["previous"]["month"]: {c: v["previous"] for c, v in summary["change"].items()}}


def ensure_statistics(session: Session) -> bool:
    """On SQLite, gather the planner's statistics once if the ledger has none (``ANALYZE feedback``,
    about 0.1 s for 200,000 records). Without them SQLite reads a month's overdue items through the
    (status, deadline) index, i.e. every open record of every month, instead of the month's range.
    PostgreSQL keeps its statistics itself. Returns whether it ran."""
    if session.get_bind().dialect.name != "sqlite":
        return False
    has_stats = session.execute(text(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")).first() is not None
    if has_stats and session.execute(text("SELECT 1 FROM sqlite_stat1 WHERE tbl = 'feedback'")).first():
        return False
    session.execute(text("ANALYZE feedback"))
    session.commit()
    return True


@dataclass
class MonthBreakdown:
    """The month by channel and department, from one pass over its records."""

    channels: dict[str, dict[str, int]]   # {channel: {sentiment: records}}, busiest channel first
    departments: list[dict[str, Any]]     # [{department, open, overdue}] of departments with open records
    needs_review: int                     # records under the model's confidence threshold, not yet corrected


def month_breakdown(*, session: Session, month: str, min_confidence: float, now: datetime | None = None
                    ) -> MonthBreakdown:
    """Sentiment by channel (effective sentiment, as the summary reads it), each department's open and
    overdue records (open and overdue as the summary counts them) and the records needing review: one
    GROUP BY over the month's range, so the database reads the month once and never every open record."""
    now = now or utcnow()
    start, end = month_bounds(month)
    channel = func.coalesce(func.nullif(FeedbackRecord.channel, ""), NONE)
    dept = func.coalesce(func.nullif(FeedbackRecord.department, ""), NONE)
    sentiment = _effective_sentiment()
    count_if = lambda cond: func.sum(case((cond, 1), else_=0))  # noqa: E731
    query = (select(channel, dept, sentiment, func.count(), count_if(FeedbackRecord.status.in_(OPEN_STATUSES)),
                    count_if(overdue_clause(now)), count_if(needs_review_clause(min_confidence)))
             .where(FeedbackRecord.received_at >= start, FeedbackRecord.received_at < end)
             .group_by(channel, dept, sentiment))
    channels: dict[str, dict[str, int]] = {}
    departments: dict[str, dict[str, Any]] = {}
    review = 0
    for ch, dp, sent, n, n_open, n_late, n_review in session.execute(query):
        by_sent = channels.setdefault(ch, {})
        by_sent[sent] = by_sent.get(sent, 0) + n
        row = departments.setdefault(dp, {"department": dp, "open": 0, "overdue": 0})
        row["open"] += int(n_open or 0)
        row["overdue"] += int(n_late or 0)
        review += int(n_review or 0)
    return MonthBreakdown(
        channels=dict(sorted(channels.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))),
        departments=sorted((r for r in departments.values() if r["open"]),
                           key=lambda r: (-r["overdue"], -r["open"], r["department"])),
        needs_review=review)


def latest_month(session: Session) -> str | None:
    """The month of the newest record (the overview opens there when the current month is empty)."""
    latest = session.scalar(select(func.max(FeedbackRecord.received_at)))
    return f"{latest.year}-{latest.month:02d}" if latest else None


def filter_options(session: Session) -> dict[str, list[str]]:
    """The channels and departments present, for the list's drop-downs."""
    out = {}
    for name, column in (("channels", FeedbackRecord.channel), ("departments", FeedbackRecord.department)):
        values = session.scalars(select(func.coalesce(func.nullif(column, ""), NONE)).distinct())
        out[name] = sorted(v for v in values if v is not None)
    return out


def corrections_since(session: Session, since: datetime | None) -> int:
    """Records an analyst corrected after ``since`` (a model's training time): what a retrain would add."""
    query = select(func.count()).select_from(FeedbackRecord).where(FeedbackRecord.corrected_at.is_not(None))
    if since is not None:
        query = query.where(FeedbackRecord.corrected_at >= since)
    return session.scalar(query) or 0
