"""总览: the month on one page — the summary's numbers (``month_summary``, as `cxnlp ledger summary` and
``GET /v1/ledger/summary``), the trend, sentiment by channel and departments' open items. Every chart
element carries the link to the 台账 list behind it."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from cxnlp.ledger.dashboard import NONE, category_trend, ensure_statistics, latest_month, month_breakdown, summary_counts
from cxnlp.ledger.summary import month_summary
from cxnlp.taxonomy import SENTIMENTS
from service.deps import ModelDep, SessionDep
from service.pages.auth import Actor
from service.pages.render import page, pct, query, zh_category, zh_sentiment
from service.schemas import MONTH_PATTERN

router = APIRouter(include_in_schema=False)
TREND_MONTHS = 6
MAX_TREND_MONTHS = 12


def ledger_link(**params: str | bool) -> str:
    return "/ledger?" + query({}, **params)


def check_month(month: str) -> str:
    if not re.match(MONTH_PATTERN, month):
        raise HTTPException(status_code=400, detail=f"月份格式应为 2026-11，收到 {month[:20]!r}")
    return month


def pick_month(session, month: str | None) -> str:
    """The month asked for; else the current one, or the newest month holding records when the current
    one is still empty (a ledger filled from an export of past months)."""
    if month:
        return check_month(month)
    now = datetime.now(timezone.utc)
    current = f"{now.year}-{now.month:02d}"
    latest = latest_month(session)
    return latest if latest and latest < current else current


def charts(s: dict, trend: dict, channels: dict, categories: tuple[str, ...]) -> dict:
    """The chart data, each point with its 台账 link (serialised into the page as JSON)."""
    month, prev = s["month"], s["previous"]["month"]
    by_category = {
        "categories": [zh_category(c) for c in categories],
        "current": [{"value": s["by_category"][c]["count"],
                     "url": ledger_link(month=month, category=c, sentiment="negative")} for c in categories],
        "previous": [{"value": s["change"][c]["previous"],
                      "url": ledger_link(month=prev, category=c, sentiment="negative")} for c in categories],
        "month": month, "previous_month": prev,
    }
    trend_chart = {
        "months": trend["months"],
        "series": [{"name": zh_category(c),
                    "data": [{"value": n, "url": ledger_link(month=m, category=c, sentiment="negative")}
                             for m, n in zip(trend["months"], trend["series"][c])]} for c in categories],
    }
    names = list(channels)
    channel_chart = {
        "channels": names,
        "series": [{"name": zh_sentiment(sent), "key": sent,
                    "data": [{"value": channels[ch].get(sent, 0),
                              "url": ledger_link(month=month, channel=ch, sentiment=sent)} for ch in names]}
                   for sent in SENTIMENTS],
    }
    return {"by_category": by_category, "trend": trend_chart, "channels": channel_chart}


def overdue_count(s: dict) -> int:
    """The month's overdue items: by tier when the summary counts them so (its list is then cut short)."""
    by_tier = (s.get("service") or {}).get("overdue_by_severity")
    return sum(by_tier.values()) if by_tier else len(s["overdue"])


def service_cards(s: dict, month: str) -> list[dict]:
    """Cards for the service cycle's numbers, shown when the ledger's summary has them (a ledger with
    response tiers and follow-ups): response and resolution within tier, follow-up coverage, satisfaction."""
    service, followups = s.get("service"), s.get("followups")
    cards = []
    if service:
        cards += [{"label": "按时响应率", "value": pct(service.get("response_within_tier")), "id": "response",
                   "url": ledger_link(month=month)},
                  {"label": "按时办结率", "value": pct(service.get("resolution_within_tier")), "id": "resolution",
                   "url": ledger_link(month=month, overdue=True)}]
    if followups:
        satisfaction = followups.get("satisfaction")
        cards += [{"label": "回访覆盖率", "value": pct(followups.get("coverage")), "id": "followup_coverage",
                   "url": ledger_link(month=month)},
                  {"label": "回访满意度（1–5）", "value": "—" if satisfaction is None else satisfaction,
                   "id": "satisfaction", "url": ledger_link(month=month)}]
    return cards


@router.get("/", name="overview")
def overview(request: Request, actor: Actor, session: SessionDep, model: ModelDep, month: str | None = None,
             trend: Annotated[int, Query(ge=2, le=MAX_TREND_MONTHS)] = TREND_MONTHS):
    if not getattr(request.app.state, "ledger_statistics", False):
        ensure_statistics(session)
        request.app.state.ledger_statistics = True
    month = pick_month(session, month)
    categories = tuple(model.estimator.categories_)
    s = month_summary(session=session, month=month, categories=categories)
    trend_counts = category_trend(session=session, month=month, categories=categories, n=trend,
                                  known=summary_counts(s))
    breakdown = month_breakdown(session=session, month=month, min_confidence=model.estimator.min_confidence)
    channels, needs_review = breakdown.channels, breakdown.needs_review
    cards = [
        {"label": "反馈总数", "value": s["total"], "url": ledger_link(month=month), "id": "total"},
        {"label": "负面反馈", "value": s["negative"], "url": ledger_link(month=month, sentiment="negative"),
         "id": "negative"},
        {"label": "负面占比", "value": f"{s['negative_share'] * 100:.1f}%",
         "url": ledger_link(month=month, sentiment="negative"), "id": "negative_share"},
        {"label": "待复核占比", "value": f"{needs_review / s['total'] * 100:.1f}%" if s["total"] else "—",
         "note": f"{needs_review} 条", "url": ledger_link(month=month, needs_review=True), "id": "needs_review"},
        {"label": "超期未办结", "value": overdue_count(s), "url": ledger_link(month=month, overdue=True),
         "id": "overdue"},
    ]
    if "complaints" in s:  # a ledger that tells complaints from praise and questions
        cards.insert(2, {"label": "投诉", "value": s["complaints"], "url": ledger_link(month=month, kind="complaint"),
                         "id": "complaints"})
    cards += service_cards(s, month)
    departments = breakdown.departments
    return page(request, "overview.html", {
        "month": month, "s": s, "cards": cards, "categories": categories, "departments": departments,
        "charts": charts(s, trend_counts, channels, categories), "none": NONE, "ledger_link": ledger_link,
        "title": "总览", "trend_months": trend, "max_trend": MAX_TREND_MONTHS})
