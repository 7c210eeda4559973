"""The month's numbers, computed in one place for ``cxnlp ledger summary``, ``GET /v1/ledger/summary``,
the 汇总 sheet and the dashboard: totals by kind, negative feedback per category/channel/department,
the service cycle (response and resolution within tier, overdue by tier, follow-ups and satisfaction),
the high-frequency problems and the alerts — all counted by the database (GROUP BY), so a summary
costs a few queries whatever the size of the month.

A category's share is the share of the month's negative feedback texts that carry it; a text may carry
two categories, so shares may add to more than 100 %. Alerts are read over complaints only.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Text, and_, case, cast, func, select, text
from sqlalchemy.orm import Session

from cxnlp.errors import LedgerError
from cxnlp.ledger.models import KINDS, SEVERITIES, URGENCIES, FeedbackRecord, FollowUp
from cxnlp.ledger.records import utcnow

ALERT_SHARE = 0.30       # a category carried by this share of the month's complaints
ALERT_GROWTH = 0.50      # or whose complaints grow by this fraction month over month
ALERT_MIN_PREVIOUS = 5   # (growth from fewer complaints than this is noise, not a trend)
OPEN_STATUSES = ("open", "responded", "in_progress")
SHARES_NOTE = ("a category's share is the share of negative feedback texts that carry it; a text may carry "
               "several categories, so shares may add to more than 100%")
SHARES_NOTE_ZH = "占比 = 含该维度的负面反馈条数 ÷ 负面反馈总条数；一条反馈可含多个维度，各维度占比之和可能超过 100%"
TOP_PROBLEMS = 10
STATUS_ZH = {"open": "待处理", "responded": "已响应", "in_progress": "处理中", "resolved": "已解决", "closed": "已关闭"}
TERMINAL_ROWS = 20  # rows of a long list (the overdue complaints) shown in the terminal summary
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The month in the configured zone, as naive UTC bounds [start, end) of stored times."""
    from cxnlp.ledger.timezone import to_utc

    m = _MONTH.match(month or "")
    if not m:
        raise LedgerError(f"month must look like 2026-11, got {month!r}")
    year, mon = int(m.group(1)), int(m.group(2))
    start = datetime(year, mon, 1)
    end = datetime(year + (mon == 12), 1 if mon == 12 else mon + 1, 1)
    return to_utc(start), to_utc(end)


def previous_month(month: str) -> str:
    m = _MONTH.match(month or "")
    if not m:
        raise LedgerError(f"month must look like 2026-11, got {month!r}")
    year, mon = int(m.group(1)), int(m.group(2))
    return f"{year - (mon == 1)}-{12 if mon == 1 else mon - 1:02d}"


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
    complaints: int = 0
    kinds: Counter = field(default_factory=Counter)
    by_cat: Counter = field(default_factory=Counter)
    complaint_cat: Counter = field(default_factory=Counter)
    by_channel: Counter = field(default_factory=Counter)
    by_dept: Counter = field(default_factory=Counter)
    status: Counter = field(default_factory=Counter)


def _month_counts(session: Session, month: str) -> _MonthCounts:
    """The month's counts from one GROUP BY over (negative?, kind, categories, channel, department,
    status): a few hundred groups whatever the number of records. Categories are grouped by the stored
    JSON list and split here, so the SQL is the same on every database."""
    none = "(none)"
    keys = (_effective_sentiment() == "negative", FeedbackRecord.kind,
            cast(func.coalesce(FeedbackRecord.corrected_categories, FeedbackRecord.categories), Text),
            func.coalesce(func.nullif(FeedbackRecord.channel, ""), none),
            func.coalesce(func.nullif(FeedbackRecord.department, ""), none),
            FeedbackRecord.status)
    counts = _MonthCounts()
    for negative, kind, cats, channel, dept, status, n in session.execute(
            select(*keys, func.count()).where(*_in_month(month)).group_by(*keys)):
        counts.total += n
        counts.status[status] += n
        counts.kinds[kind] += n
        cats = json.loads(cats)
        if kind == KINDS[0]:
            counts.complaints += n
            for c in cats:
                counts.complaint_cat[c] += n
        if negative:
            counts.negative += n
            counts.by_channel[channel] += n
            counts.by_dept[dept] += n
            for c in cats:
                counts.by_cat[c] += n
    return counts


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _service(session: Session, month: str, now: datetime) -> dict[str, Any]:
    """Response within tier (every record: each customer need gets a response), resolution within tier
    and overdue (complaints), by tier. A record counts towards a rate once it was due or done."""
    f = FeedbackRecord
    one = lambda cond: func.sum(case((cond, 1), else_=0))  # noqa: E731
    answered, answered_late = f.first_response_at.is_not(None), f.first_response_at > f.respond_by
    unanswered_late = and_(f.first_response_at.is_(None), f.respond_by < now)
    response = {u: {"records": 0, "answered": 0, "within_tier": 0, "due": 0, "unanswered_overdue": 0} for u in URGENCIES}
    for urgency, n, done, late, overdue in session.execute(
            select(f.urgency, func.count(), one(answered), one(answered_late), one(unanswered_late))
            .where(*_in_month(month)).group_by(f.urgency)):
        done, late, overdue = int(done or 0), int(late or 0), int(overdue or 0)
        response[urgency] = {"records": n, "answered": done, "within_tier": done - late, "due": done + overdue,
                             "unanswered_overdue": overdue}
    resolved, resolved_late = f.resolved_at.is_not(None), f.resolved_at > f.resolve_by
    open_late = and_(f.status.in_(OPEN_STATUSES), f.resolve_by < now)
    resolution = {s: {"complaints": 0, "resolved": 0, "within_tier": 0, "due": 0, "overdue": 0} for s in SEVERITIES}
    for severity, n, done, late, overdue in session.execute(
            select(f.severity, func.count(), one(resolved), one(resolved_late), one(open_late))
            .where(*_in_month(month), f.kind == KINDS[0]).group_by(f.severity)):
        done, late, overdue = int(done or 0), int(late or 0), int(overdue or 0)
        resolution[severity] = {"complaints": n, "resolved": done, "within_tier": done - late, "due": done + overdue,
                                "overdue": overdue}

    def total(table: dict[str, dict[str, int]], key: str) -> int:
        return sum(v[key] for v in table.values())

    return {
        "response_within_tier": _rate(total(response, "within_tier"), total(response, "due")),
        "response_rate": _rate(total(response, "answered"), total(response, "due")),
        "resolution_within_tier": _rate(total(resolution, "within_tier"), total(resolution, "due")),
        "response_by_urgency": {u: {**v, "rate": _rate(v["within_tier"], v["due"])} for u, v in response.items()},
        "resolution_by_severity": {s: {**v, "rate": _rate(v["within_tier"], v["due"])} for s, v in resolution.items()},
        "overdue_by_severity": {s: v["overdue"] for s, v in resolution.items()},
        "unanswered_by_urgency": {u: v["unanswered_overdue"] for u, v in response.items()},
    }


def _followups(session: Session, month: str, now: datetime) -> dict[str, Any]:
    """Follow-ups of the month's complaints: coverage (first calls made / first calls due or made), mean
    satisfaction of the first calls, and the share of second calls that ended satisfied (score ≥ 4)."""
    done = FollowUp.done_at.is_not(None)
    due_or_done = (done | (FollowUp.due_at < now))
    rounds = {1: (0, 0, 0, None, 0), 2: (0, 0, 0, None, 0)}
    query = (select(FollowUp.round, func.count(), func.sum(case((done, 1), else_=0)),
                    func.sum(case((due_or_done, 1), else_=0)), func.avg(FollowUp.score),
                    func.sum(case((FollowUp.score >= 4, 1), else_=0)))
             .join(FeedbackRecord, FeedbackRecord.id == FollowUp.feedback_id)
             .where(*_in_month(month)).group_by(FollowUp.round))
    for rnd, n, made, due, mean, satisfied in session.execute(query):
        rounds[rnd] = (n, int(made or 0), int(due or 0), None if mean is None else float(mean), int(satisfied or 0))
    (n1, made1, due1, mean1, _), (n2, made2, _, _, sat2) = rounds[1], rounds[2]
    return {"scheduled": n1, "made": made1, "due": due1, "coverage": _rate(made1, due1),
            "satisfaction": None if mean1 is None else round(mean1, 2),
            "second_scheduled": n2, "second_made": made2, "second_resolved": _rate(sat2, made2)}


# The month's complaints per problem: count, distinct customers and channels. JSON functions differ
# between the two databases; the result does not.
_PROBLEMS_SQL = {
    "sqlite": """SELECT p.value, count(*), count(DISTINCT f.customer), count(DISTINCT f.channel)
                 FROM feedback AS f, json_each(f.problems) AS p
                 WHERE f.received_at >= :start AND f.received_at < :end AND f.kind = 'complaint'
                 GROUP BY p.value""",
    "postgresql": """SELECT p.value, count(*), count(DISTINCT f.customer), count(DISTINCT f.channel)
                     FROM feedback AS f, json_array_elements_text(f.problems) AS p
                     WHERE f.received_at >= :start AND f.received_at < :end AND f.kind = 'complaint'
                     GROUP BY p.value""",
}
_EXAMPLES_SQL = {
    "sqlite": """SELECT f.text FROM feedback AS f, json_each(f.problems) AS p
                 WHERE f.received_at >= :start AND f.received_at < :end AND f.kind = 'complaint'
                   AND p.value = :name ORDER BY f.received_at, f.id LIMIT 3""",
    "postgresql": """SELECT f.text FROM feedback AS f, json_array_elements_text(f.problems) AS p
                     WHERE f.received_at >= :start AND f.received_at < :end AND f.kind = 'complaint'
                       AND p.value = :name ORDER BY f.received_at, f.id LIMIT 3""",
}


def _problem_counts(session: Session, month: str) -> dict[str, tuple[int, int, int]]:
    start, end = month_bounds(month)
    sql = text(_PROBLEMS_SQL[session.get_bind().dialect.name])
    return {name: (n, customers, channels) for name, n, customers, channels
            in session.execute(sql, {"start": start, "end": end})}


def top_problems(session: Session, month: str, complaints: int, k: int = TOP_PROBLEMS) -> list[dict[str, Any]]:
    """The month's high-frequency problems, most frequent first: count, share of complaints, customers
    and channels affected, change against the previous month, owning department and three examples."""
    from cxnlp.ledger.problems import configured_catalogue

    catalogue = configured_catalogue()
    this, before = _problem_counts(session, month), _problem_counts(session, previous_month(month))
    start, end = month_bounds(month)
    examples_sql = text(_EXAMPLES_SQL[session.get_bind().dialect.name])
    ranked = sorted(this.items(), key=lambda kv: (-kv[1][0], kv[0]))[:k]
    out = []
    for name, (n, customers, channels) in ranked:
        prev = before.get(name, (0, 0, 0))[0]
        problem = catalogue.get(name)
        out.append({"problem": name, "category": problem.category if problem else "",
                    "department": problem.department if problem else "", "count": n,
                    "share": _rate(n, complaints) or 0.0, "customers": customers, "channels": channels,
                    "previous": prev, "change": _rate(n - prev, prev),
                    "examples": [t for (t,) in session.execute(examples_sql, {"start": start, "end": end, "name": name})]})
    return out


def overdue_complaints(session: Session, month: str | None, now: datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Complaints past their resolution deadline and not resolved (praise and questions have none),
    oldest deadline first; ``month`` None means every month."""
    f = FeedbackRecord
    where = [f.kind == KINDS[0], f.status.in_(OPEN_STATUSES), f.resolve_by < now]
    if month is not None:
        where += _in_month(month)
    query = (select(f.id, f.source_id, f.department, f.severity, f.urgency, f.resolve_by, f.status, f.problems)
             .where(*where).order_by(f.resolve_by, f.id).limit(limit))
    return [{"id": rid, "source_id": sid, "department": dept, "severity": sev, "urgency": urg,
             "resolve_by": due.replace(tzinfo=timezone.utc).isoformat(timespec="minutes"), "status": status,
             "problems": list(problems or [])}
            for rid, sid, dept, sev, urg, due, status, problems in session.execute(query)]


def month_summary(*, session: Session, month: str, categories: tuple[str, ...], now: datetime | None = None
                  ) -> dict[str, Any]:
    """The month's numbers as plain data: the one function behind the CLI table, the HTTP summary, the
    汇总 sheet and the dashboard. Aggregated in the database: no record of the month is loaded.
    ``now`` (naive UTC) decides what is overdue."""
    now = now or utcnow()
    this, prev = _month_counts(session, month), _month_counts(session, previous_month(month))
    negative = this.negative

    def shares(counts: Counter, keys: list[str] | None = None) -> dict[str, dict[str, float]]:
        names = keys if keys is not None else [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        return {k: {"count": counts.get(k, 0), "share": round(counts.get(k, 0) / negative, 4) if negative else 0.0}
                for k in names}

    by_category = shares(this.by_cat, list(categories))
    change, alerts = {}, []
    for c in categories:
        before, after = prev.by_cat.get(c, 0), this.by_cat.get(c, 0)
        change[c] = {"previous": before, "current": after,
                     "change": round((after - before) / before, 4) if before else None}
        c_share = round(this.complaint_cat.get(c, 0) / this.complaints, 4) if this.complaints else 0.0
        if this.complaints and c_share >= ALERT_SHARE:
            alerts.append({"category": c, "kind": "share", "value": c_share,
                           "message": f"{c} is in {c_share:.0%} of complaints (alert at {ALERT_SHARE:.0%})",
                           "message_zh": f"{_zh(c)}问题占投诉的 {c_share:.0%}（预警线 {ALERT_SHARE:.0%}）"})
        c_before, c_after = prev.complaint_cat.get(c, 0), this.complaint_cat.get(c, 0)
        if c_before >= ALERT_MIN_PREVIOUS and (c_after - c_before) / c_before >= ALERT_GROWTH:
            growth = round((c_after - c_before) / c_before, 4)
            alerts.append({"category": c, "kind": "growth", "value": growth,
                           "message": f"{c} complaints grew from {c_before} to {c_after} ({growth:+.0%}) month over month",
                           "message_zh": f"{_zh(c)}投诉环比增长 {growth:+.0%}（{c_before} → {c_after}，预警线 +{ALERT_GROWTH:.0%}）"})
    overdue = overdue_complaints(session, month, now)
    return {
        "month": month,
        "total": this.total,
        "negative": negative,
        "negative_share": round(negative / this.total, 4) if this.total else 0.0,
        "kinds": {k: this.kinds.get(k, 0) for k in KINDS},
        "complaints": this.complaints,
        "previous": {"month": previous_month(month), "total": prev.total, "negative": prev.negative,
                     "complaints": prev.complaints},
        "by_category": by_category,
        "shares_note": SHARES_NOTE,
        "by_channel": shares(this.by_channel),
        "by_department": shares(this.by_dept),
        "change": change,
        "service": _service(session, month, now),
        "followups": _followups(session, month, now),
        "problems": top_problems(session, month, this.complaints),
        "overdue": overdue,
        "alerts": alerts,
        "status": dict(this.status),
    }


def _zh(category: str) -> str:
    from cxnlp.taxonomy import CATEGORY_NAMES_ZH

    return CATEGORY_NAMES_ZH.get(category, category)


@dataclass
class Table:
    """One section of the summary as people read it (Chinese labels), rendered by ``format_summary``
    for the terminal and by the register for the 汇总 sheet: both show these very values."""

    title: str
    headers: list[str]
    rows: list[list[Any]]
    percent: set[int] = field(default_factory=set)  # columns holding a fraction shown as a percentage
    note: str = ""


def summary_tables(s: dict[str, Any]) -> list[Table]:
    from cxnlp.taxonomy import CATEGORY_NAMES_ZH

    kinds, prev, svc, fu = s["kinds"], s["previous"], s["service"], s["followups"]
    tables = [
        Table("概况", ["月份", "总数", "投诉", "咨询", "表扬", "负面", "负面占比", "上月总数", "上月投诉"],
              [[s["month"], s["total"], kinds["complaint"], kinds["inquiry"], kinds["praise"], s["negative"],
                s["negative_share"], prev["total"], prev["complaints"]]], {6}),
        Table("问题维度（负面反馈）", ["维度", "负面条数", "占负面比例", "上月", "环比"],
              [[CATEGORY_NAMES_ZH.get(c, c), v["count"], v["share"], s["change"][c]["previous"], s["change"][c]["change"]]
               for c, v in s["by_category"].items()], {2, 4}, SHARES_NOTE_ZH),
        Table("服务时效与回访", ["响应及时率", "响应率", "解决及时率", "回访覆盖率", "满意度均分（1–5）", "二次回访满意率",
                          "已回访", "应回访", "二次回访已做", "二次回访安排"],
              [[svc["response_within_tier"], svc["response_rate"], svc["resolution_within_tier"], fu["coverage"],
                fu["satisfaction"], fu["second_resolved"], fu["made"], fu["due"], fu["second_made"],
                fu["second_scheduled"]]], {0, 1, 2, 3, 5},
              "及时率 = 时限内完成 ÷ 已到期或已完成；满意度为首次回访评分均值；二次回访满意率 = 评分 ≥ 4 的二次回访占比"),
        Table("按紧急程度（响应时限）", ["紧急程度", "条数", "已响应", "时限内", "超时未响应", "及时率"],
              [[u, v["records"], v["answered"], v["within_tier"], v["unanswered_overdue"], v["rate"]]
               for u, v in svc["response_by_urgency"].items()], {5}),
        Table("按严重程度（解决时限，仅投诉）", ["严重程度", "投诉", "已解决", "时限内", "超期未解决", "及时率"],
              [[sev, v["complaints"], v["resolved"], v["within_tier"], v["overdue"], v["rate"]]
               for sev, v in svc["resolution_by_severity"].items()], {5}),
        Table("高频问题", ["排名", "问题", "责任部门", "投诉数", "占投诉比例", "涉及客户", "涉及渠道", "上月", "环比", "典型反馈"],
              [[i + 1, p["problem"], p["department"], p["count"], p["share"], p["customers"], p["channels"],
                p["previous"], p["change"], " | ".join(p["examples"])] for i, p in enumerate(s["problems"])], {4, 8},
              "一条投诉可对应多个问题"),
        Table("渠道（负面反馈）", ["渠道", "负面条数", "占负面比例"],
              [[k, v["count"], v["share"]] for k, v in s["by_channel"].items()], {2}),
        Table("责任部门（负面反馈）", ["部门", "负面条数", "占负面比例"],
              [[k, v["count"], v["share"]] for k, v in s["by_department"].items()], {2}),
        overdue_table(s["overdue"]),
        Table("预警", ["维度", "类型", "预警"],
              [[CATEGORY_NAMES_ZH.get(a["category"], a["category"]), "占比" if a["kind"] == "share" else "环比增长",
                a["message_zh"]] for a in s["alerts"]]),
    ]
    return tables


def overdue_table(overdue: list[dict[str, Any]]) -> Table:
    """The overdue complaints (``overdue_complaints``) as a table, deadlines in the configured zone."""
    return Table("超期未解决的投诉", ["编号", "工单号", "严重程度", "紧急程度", "责任部门", "解决时限", "状态", "问题"],
                 [[o["id"], o["source_id"], o["severity"], o["urgency"], o["department"] or "", _local(o["resolve_by"]),
                   STATUS_ZH.get(o["status"], o["status"]), "、".join(o["problems"])] for o in overdue])


def _local(iso: str) -> str:
    from cxnlp.ledger.timezone import show

    return show(datetime.fromisoformat(iso).astimezone(timezone.utc).replace(tzinfo=None))


def cell_text(value: Any, percent: bool) -> str:
    if value is None:
        return "-"
    if percent and isinstance(value, (int, float)):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _width(text_: str) -> int:
    from wcwidth import wcswidth

    w = wcswidth(text_)
    return w if w >= 0 else len(text_)


def _pad(text_: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - _width(text_))
    return gap + text_ if right else text_ + gap


def _clip(text_: str, width: int) -> str:
    """At most ``width`` display columns, with … when cut."""
    text_ = " ".join(text_.split())
    if _width(text_) <= width:
        return text_
    out, used = [], 1
    for ch in text_:
        used += max(_width(ch), 0)
        if used > width:
            break
        out.append(ch)
    return "".join(out) + "…"


def render_table(table: Table, max_cell: int = 60, max_rows: int | None = None) -> str:
    """A table aligned for a terminal: widths counted in columns (a Chinese character takes two)."""
    shown = table.rows if max_rows is None else table.rows[:max_rows]
    cells = [[_clip(cell_text(v, i in table.percent), max_cell) for i, v in enumerate(row)] for row in shown]
    widths = [max([_width(h)] + [_width(r[i]) for r in cells]) for i, h in enumerate(table.headers)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in table.rows) and table.rows
               for i in range(len(table.headers))]
    lines = [f"【{table.title}】"]
    lines.append("  ".join(_pad(h, w, bool(n)) for h, w, n in zip(table.headers, widths, numeric)).rstrip())
    for row in cells or [["(无)"] + [""] * (len(table.headers) - 1)]:
        lines.append("  ".join(_pad(c, w, bool(n)) for c, w, n in zip(row, widths, numeric)).rstrip())
    if len(shown) < len(table.rows):
        lines.append(f"… 另有 {len(table.rows) - len(shown)} 条（cxnlp ledger overdue 列出全部）")
    if table.note:
        lines.append(f"注：{table.note}")
    return "\n".join(lines)


def format_summary(s: dict[str, Any]) -> str:
    """The summary as aligned tables for a terminal (the 汇总 sheet holds the same tables)."""
    return "\n\n".join(render_table(t, max_rows=TERMINAL_ROWS if t.title.startswith("超期") else None)
                       for t in summary_tables(s))
