"""The month's numbers: totals, negative feedback per category/channel/department, change against the
previous month, top terms, overdue items and alerts, all counted by the database (GROUP BY), so a
summary costs a few queries whatever the size of the month."""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, select, text
from sqlalchemy.orm import Session

from cxnlp.errors import LedgerError
from cxnlp.ledger.models import FeedbackRecord
from cxnlp.ledger.records import utcnow

ALERT_SHARE = 0.30       # a category that reaches this share of the month's negative feedback
ALERT_GROWTH = 0.50      # or grows by this fraction month over month
OPEN_STATUSES = ("open", "in_progress")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    m = _MONTH.match(month or "")
    if not m:
        raise LedgerError(f"month must look like 2026-11, got {month!r}")
    year, mon = int(m.group(1)), int(m.group(2))
    start = datetime(year, mon, 1)
    end = datetime(year + (mon == 12), 1 if mon == 12 else mon + 1, 1)
    return start, end


def previous_month(month: str) -> str:
    start, _ = month_bounds(month)
    return f"{start.year - (start.month == 1)}-{12 if start.month == 1 else start.month - 1:02d}"


def month_records(session: Session, month: str) -> list[FeedbackRecord]:
    start, end = month_bounds(month)
    query = select(FeedbackRecord).where(FeedbackRecord.received_at >= start, FeedbackRecord.received_at < end)
    return list(session.scalars(query.order_by(FeedbackRecord.received_at, FeedbackRecord.id)))


def _effective_sentiment() -> Any:
    return func.coalesce(func.nullif(FeedbackRecord.corrected_sentiment, ""), FeedbackRecord.sentiment)


def _in_month(month: str) -> list[Any]:
    start, end = month_bounds(month)
    return [FeedbackRecord.received_at >= start, FeedbackRecord.received_at < end]


@dataclass
class _MonthCounts:
    total: int = 0
    negative: int = 0
    by_cat: Counter = field(default_factory=Counter)
    by_channel: Counter = field(default_factory=Counter)
    by_dept: Counter = field(default_factory=Counter)
    status: Counter = field(default_factory=Counter)


def _month_counts(session: Session, month: str) -> _MonthCounts:
    """The month's counts from one GROUP BY over (negative?, categories, channel, department, status):
    a few hundred groups whatever the number of records. Categories are grouped by the stored JSON
    list and split here, so the SQL is the same on every database."""
    none = "(none)"
    keys = (_effective_sentiment() == "negative",
            cast(func.coalesce(FeedbackRecord.corrected_categories, FeedbackRecord.categories), Text),
            func.coalesce(func.nullif(FeedbackRecord.channel, ""), none),
            func.coalesce(func.nullif(FeedbackRecord.department, ""), none),
            FeedbackRecord.status)
    counts = _MonthCounts()
    for negative, cats, channel, dept, status, n in session.execute(
            select(*keys, func.count()).where(*_in_month(month)).group_by(*keys)):
        counts.total += n
        counts.status[status] += n
        if negative:
            counts.negative += n
            counts.by_channel[channel] += n
            counts.by_dept[dept] += n
            for c in json.loads(cats):
                counts.by_cat[c] += n
    return counts


# The evidence terms of negative records, one row per (label, term), counted by the database. JSON
# functions differ between the two databases; the result does not.
_TERMS_SQL = {
    "sqlite": """SELECT l.key, json_extract(s.value, '$.term') AS term, count(*) AS n
                 FROM feedback AS f, json_each(f.evidence) AS l, json_each(l.value) AS s
                 WHERE f.received_at >= :start AND f.received_at < :end
                   AND coalesce(nullif(f.corrected_sentiment, ''), f.sentiment) = 'negative'
                 GROUP BY l.key, term""",
    "postgresql": """SELECT l.key, s.value ->> 'term' AS term, count(*) AS n
                     FROM feedback AS f, json_each(f.evidence) AS l, json_array_elements(l.value) AS s
                     WHERE f.received_at >= :start AND f.received_at < :end
                       AND coalesce(nullif(f.corrected_sentiment, ''), f.sentiment) = 'negative'
                     GROUP BY l.key, term""",
}


def top_terms(session: Session, month: str, categories: tuple[str, ...], k: int = 5) -> dict[str, list[str]]:
    """The ``k`` evidence terms seen most often in the month's negative feedback, per category (ties in
    term order)."""
    start, end = month_bounds(month)
    counts: dict[str, list[tuple[int, str]]] = defaultdict(list)
    rows = session.execute(text(_TERMS_SQL[session.get_bind().dialect.name]), {"start": start, "end": end})
    for label, term, n in rows:
        counts[label].append((-n, term))
    return {c: [t for _, t in sorted(counts[c])[:k]] for c in categories}


def month_summary(*, session: Session, month: str, categories: tuple[str, ...], now: datetime | None = None
                  ) -> dict[str, Any]:
    """The summary as plain data (the CLI prints it, the HTTP service returns it as JSON), aggregated in
    the database: no record of the month is loaded."""
    now = now or utcnow()
    where = _in_month(month)
    this, prev = _month_counts(session, month), _month_counts(session, previous_month(month))
    total, negative, by_cat, prev_cat = this.total, this.negative, this.by_cat, prev.by_cat

    def shares(counts: Counter, keys: list[str] | None = None) -> dict[str, dict[str, float]]:
        names = keys if keys is not None else [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        return {k: {"count": counts.get(k, 0), "share": round(counts.get(k, 0) / negative, 4) if negative else 0.0}
                for k in names}

    overdue_query = (select(FeedbackRecord.id, FeedbackRecord.source_id, FeedbackRecord.department,
                            FeedbackRecord.severity, FeedbackRecord.due_at, FeedbackRecord.status)
                     .where(*where, FeedbackRecord.status.in_(OPEN_STATUSES), FeedbackRecord.due_at < now)
                     .order_by(FeedbackRecord.received_at, FeedbackRecord.id))
    overdue = [{"id": rid, "source_id": sid, "department": dept, "severity": sev,
                "due_at": due.isoformat(timespec="minutes"), "status": status}
               for rid, sid, dept, sev, due, status in session.execute(overdue_query)]
    by_category = shares(by_cat, list(categories))
    change = {}
    alerts = []
    for c in categories:
        before, after = prev_cat.get(c, 0), by_cat.get(c, 0)
        change[c] = {"previous": before, "current": after,
                     "change": round((after - before) / before, 4) if before else None}
        share = by_category[c]["share"]
        if negative and share >= ALERT_SHARE:
            alerts.append({"category": c, "kind": "share", "value": share,
                           "message": f"{c} is {share:.0%} of negative feedback (alert at {ALERT_SHARE:.0%})"})
        if before and (after - before) / before >= ALERT_GROWTH:
            alerts.append({"category": c, "kind": "growth", "value": round((after - before) / before, 4),
                           "message": f"{c} grew from {before} to {after} negative feedbacks month over month"})
    return {
        "month": month,
        "total": total,
        "negative": negative,
        "negative_share": round(negative / total, 4) if total else 0.0,
        "previous": {"month": previous_month(month), "total": prev.total, "negative": prev.negative},
        "by_category": by_category,
        "by_channel": shares(this.by_channel),
        "by_department": shares(this.by_dept),
        "change": change,
        "top_terms": top_terms(session, month, categories),
        "overdue": overdue,
        "alerts": alerts,
        "status": dict(this.status),
    }


def format_summary(s: dict[str, Any]) -> str:
    lines = [f"month {s['month']}: {s['total']} feedbacks, {s['negative']} negative ({s['negative_share']:.0%}); "
             f"previous month {s['previous']['total']} / {s['previous']['negative']} negative"]
    lines.append(f"\n{'category':<12}{'negative':>9}{'share':>8}{'prev':>6}{'change':>9}  top terms")
    for c, v in s["by_category"].items():
        ch = s["change"][c]["change"]
        lines.append(f"{c:<12}{v['count']:>9}{v['share']:>8.0%}{s['change'][c]['previous']:>6}"
                     f"{(f'{ch:+.0%}' if ch is not None else '-'):>9}  {'、'.join(s['top_terms'][c])}")
    for title, key in (("channel", "by_channel"), ("department", "by_department")):
        lines.append(f"\n{title:<20}{'negative':>9}{'share':>8}")
        for k, v in s[key].items():
            lines.append(f"{k:<20}{v['count']:>9}{v['share']:>8.0%}")
    lines.append(f"\noverdue: {len(s['overdue'])}")
    for o in s["overdue"][:20]:
        lines.append(f"  #{o['id']} {o['source_id']} {o['severity']} {o['department']} due {o['due_at']} ({o['status']})")
    for a in s["alerts"]:
        lines.append(f"ALERT: {a['message']}")
    return "\n".join(lines)
