"""Which submissions count: the cleaning rules of a satisfaction survey, each row's verdict with its reasons.

An invalid row is never dropped silently: it is kept with every reason that applies (the workbook's
剔除明细 sheet), and the valid rate is reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cxnlp.surveys.columns import (SCALE, SurveyLayout, parse_duration, parse_rating, parse_score, parse_time,
                                   short)

# Reasons, as the 剔除明细 sheet names them.
TOO_FAST = "答题时间过短"
STRAIGHT_LINING = "所有评分均为最高或最低分"
DUPLICATE = "重复提交"
EMPTY = "空白问卷"
UNREADABLE = "无法读取的答案"


@dataclass(frozen=True)
class CleaningRules:
    """Thresholds of the cleaning rules (configurable from the CLI)."""

    min_seconds: float = 30.0
    duplicate_minutes: float = 10.0
    min_ratings_for_straight_lining: int = 3


@dataclass
class Submission:
    """One parsed row of the export: its answers as numbers and texts, and why it is invalid (if it is)."""

    row: int
    values: dict[str, Any]
    ratings: dict[str, int] = field(default_factory=dict)
    nps: int | None = None
    texts: dict[str, str] = field(default_factory=dict)
    seconds: float | None = None
    submitted_at: datetime | None = None
    reasons: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.reasons

    def respondent(self, layout: SurveyLayout) -> str | None:
        col = layout.meta.get("respondent")
        value = self.values.get(col) if col else None
        return str(value).strip() or None if value is not None else None

    def ip(self, layout: SurveyLayout) -> str | None:
        col = layout.meta.get("ip")
        value = self.values.get(col) if col else None
        # 问卷星 writes "123.45.67.89(广东-深圳)": the address is what identifies the device.
        return str(value).split("(")[0].split("（")[0].strip() or None if value is not None else None

    def answers_key(self) -> tuple:
        return tuple(sorted(self.ratings.items())), self.nps, tuple(sorted(self.texts.items()))


def parse_submission(row: int, values: dict[str, Any], layout: SurveyLayout) -> Submission:
    """Answers as numbers and texts; an answer that cannot be read is named in ``problems``, not guessed."""
    sub = Submission(row=row, values=values)
    for col in layout.ratings:
        try:
            rating = parse_rating(values.get(col))
        except ValueError:
            sub.problems.append(f"{short(col)}: {short(str(values.get(col)), 30)!r} is not a 1–5 rating")
            continue
        if rating is not None:
            sub.ratings[col] = rating
    if layout.nps:
        try:
            sub.nps = parse_score(values.get(layout.nps))
        except ValueError:
            sub.problems.append(f"{short(layout.nps)}: {short(str(values.get(layout.nps)), 30)!r} is not 0–10")
    for col in layout.texts:
        value = values.get(col)
        text = "" if value is None else str(value).strip()
        if text and text not in ("(跳过)", "（跳过）", "(空)"):
            sub.texts[col] = text
    for key, attr, parse in (("duration", "seconds", parse_duration), ("submitted_at", "submitted_at", parse_time)):
        col = layout.meta.get(key)
        if col:
            try:
                setattr(sub, attr, parse(values.get(col)))
            except ValueError:
                sub.problems.append(f"{short(col)}: {short(str(values.get(col)), 30)!r} cannot be read")
    return sub


def apply_rules(subs: list[Submission], layout: SurveyLayout, rules: CleaningRules) -> None:
    """Set each submission's reasons, in file order (the first of duplicates is the one kept)."""
    seen_respondents: set[str] = set()
    seen_answers: dict[tuple, list[datetime | None]] = {}
    window = timedelta(minutes=rules.duplicate_minutes)
    for sub in subs:
        if sub.problems:
            sub.reasons.append(UNREADABLE)
        if not sub.ratings and sub.nps is None and not sub.texts:
            sub.reasons.append(EMPTY)
            continue
        if sub.seconds is not None and sub.seconds < rules.min_seconds:
            sub.reasons.append(TOO_FAST)
        answered = list(sub.ratings.values())
        if len(answered) >= rules.min_ratings_for_straight_lining and len(set(answered)) == 1 \
                and answered[0] in SCALE:
            sub.reasons.append(STRAIGHT_LINING)
        who = sub.respondent(layout)
        ip = sub.ip(layout)
        duplicate = who is not None and who in seen_respondents
        if not duplicate and ip is not None:
            key = (ip, sub.answers_key())
            earlier = seen_answers.get(key, [])
            duplicate = any(t is None or sub.submitted_at is None or abs(sub.submitted_at - t) <= window
                            for t in earlier)
            seen_answers.setdefault(key, []).append(sub.submitted_at)
        if duplicate:
            sub.reasons.append(DUPLICATE)
        if who is not None:
            seen_respondents.add(who)
