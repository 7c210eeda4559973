"""The month's numbers: totals, negative feedback per category/channel/department, change against the
previous month, top terms, overdue items and alerts."""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
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


def _negative_counts(records: list[FeedbackRecord]) -> tuple[int, Counter, Counter, Counter]:
    negatives = [r for r in records if r.effective_sentiment == "negative"]
    by_cat = Counter(c for r in negatives for c in r.effective_categories)
    by_channel = Counter(r.channel or "(none)" for r in negatives)
    by_dept = Counter(r.department or "(none)" for r in negatives)
    return len(negatives), by_cat, by_channel, by_dept


def month_summary(*, session: Session, month: str, categories: tuple[str, ...], now: datetime | None = None
                  ) -> dict[str, Any]:
    """The summary as plain data (the CLI prints it, the HTTP service returns it as JSON)."""
    now = now or utcnow()
    records = month_records(session, month)
    prev = month_records(session, previous_month(month))
    negative, by_cat, by_channel, by_dept = _negative_counts(records)
    prev_negative, prev_cat, _, _ = _negative_counts(prev)

    def shares(counts: Counter, keys: list[str] | None = None) -> dict[str, dict[str, float]]:
        names = keys if keys is not None else [k for k, _ in counts.most_common()]
        return {k: {"count": counts.get(k, 0), "share": round(counts.get(k, 0) / negative, 4) if negative else 0.0}
                for k in names}

    terms: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        if r.effective_sentiment == "negative":
            for label, spans in (r.evidence or {}).items():
                terms[label].update(s["term"] for s in spans)
    overdue = [{"id": r.id, "source_id": r.source_id, "department": r.department, "severity": r.severity,
                "due_at": r.due_at.isoformat(timespec="minutes"), "status": r.status}
               for r in records if r.status in OPEN_STATUSES and r.due_at < now]
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
        "total": len(records),
        "negative": negative,
        "negative_share": round(negative / len(records), 4) if records else 0.0,
        "previous": {"month": previous_month(month), "total": len(prev), "negative": prev_negative},
        "by_category": by_category,
        "by_channel": shares(by_channel),
        "by_department": shares(by_dept),
        "change": change,
        "top_terms": {c: [t for t, _ in terms[c].most_common(5)] for c in categories},
        "overdue": overdue,
        "alerts": alerts,
        "status": dict(Counter(r.status for r in records)),
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
