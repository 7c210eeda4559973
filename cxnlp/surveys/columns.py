"""Which column of a survey export is what: metadata, rating questions, a 0–10 question, open answers.

Chinese survey platforms (问卷星, 腾讯问卷 and their like) export one row per submission: metadata columns
(序号, 提交答卷时间, 所用时间 "125秒" / "2分5秒", 来源, 来自IP …), then one column per question. Columns are
recognised by their headers first and their values second; every guess can be overridden, and the layout
says what it recognised so the analyst can check it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cxnlp.errors import DataError

# Rating words as the platforms write them (a five-point satisfaction scale).
RATING_WORDS = {
    "非常不满意": 1, "很不满意": 1, "极不满意": 1, "非常差": 1,
    "不满意": 2, "比较不满意": 2, "较不满意": 2, "差": 2,
    "一般": 3, "中立": 3, "还行": 3, "说不清": 3, "一般满意": 3,
    "满意": 4, "比较满意": 4, "较满意": 4, "基本满意": 4, "好": 4,
    "非常满意": 5, "很满意": 5, "十分满意": 5, "非常好": 5,
}
SKIPPED = {"", "(跳过)", "（跳过）", "(空)", "-3", "-2", "-1", "跳过", "n/a", "na", "-", "—"}
SCALE = (1, 5)
NPS_SCALE = (0, 10)

# The service dimensions of the satisfaction plans, recognised in question headers.
DIMENSION_CUES = {
    "服务态度": ("态度", "礼貌", "热情", "耐心", "友好", "服务意识"),
    "响应速度": ("速度", "及时", "响应", "等待", "等候", "时效", "效率", "快慢"),
    "专业能力": ("专业", "能力", "解决", "准确", "技能", "知识", "技术"),
    "流程合规性": ("流程", "规范", "合规", "手续", "便捷", "透明", "规则", "收费"),
}
OVERALL_CUES = ("总体", "整体", "综合", "总的来说", "总满意")
NPS_CUES = ("推荐", "NPS", "nps", "0-10", "0～10", "0~10")
# A header that asks for a rating: its column is a rating question even with a few unreadable answers.
RATING_CUES = ("满意", "评分", "打分", "评价等级")

_META = {
    "row_id": ("序号", "编号", "答卷编号", "id", "ID", "答卷ID"),
    "submitted_at": ("提交答卷时间", "提交时间", "结束答题时间", "答题结束时间", "完成时间"),
    "started_at": ("开始答题时间", "开始时间"),
    "duration": ("所用时间", "答题时长", "用时", "答题用时", "填写时长"),
    "source": ("来源", "来源详情", "来源渠道"),
    "ip": ("来自IP", "IP", "ip", "IP地址", "填写者IP"),
    "respondent": ("用户ID", "用户id", "openid", "OpenID", "会员号", "手机号", "respondent", "微信昵称", "答题人"),
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(小时|时|分钟|分|秒|h|m|s)", re.I)
_CLOCK = re.compile(r"^(\d+):(\d{1,2})(?::(\d{1,2}))?$")
_QUESTION_NUMBER = re.compile(r"^\s*(?:Q\s*)?\d+[、.．:：)\s]*", re.I)


@dataclass
class SurveyLayout:
    """What each column is. Ratings map column → dimension; open answers are classified when negative."""

    columns: list[str]
    meta: dict[str, str] = field(default_factory=dict)
    ratings: dict[str, str] = field(default_factory=dict)
    overall: str | None = None
    nps: str | None = None
    texts: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        """Lines that tell the analyst what was recognised (the CLI prints them)."""
        lines = [f"metadata: {', '.join(f'{k}={v}' for k, v in self.meta.items()) or '(none)'}"]
        for col, dim in self.ratings.items():
            lines.append(f"rating 1–5: {short(col)} → {dim}" + ("  (overall)" if col == self.overall else ""))
        if self.nps:
            lines.append(f"recommendation 0–10: {short(self.nps)}")
        lines.append(f"open answers: {', '.join(map(short, self.texts)) or '(none)'}")
        if self.groups:
            lines.append(f"grouping columns (for --by): {', '.join(map(short, self.groups))}")
        if self.ignored:
            lines.append(f"not used: {', '.join(map(short, self.ignored))}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "ratings": self.ratings, "overall": self.overall, "nps": self.nps,
                "texts": self.texts, "groups": self.groups, "ignored": self.ignored}


def short(header: str, limit: int = 40) -> str:
    header = str(header)
    return header if len(header) <= limit else header[: limit - 1] + "…"


def question_title(header: str) -> str:
    """A header without its leading question number ("3、您对…" → "您对…")."""
    return _QUESTION_NUMBER.sub("", str(header)).strip() or str(header)


def parse_rating(value: Any) -> int | None:
    """A 1–5 answer as an int; None when skipped. Raises ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        if value != value:  # NaN from a spreadsheet
            return None
        if float(value).is_integer() and SCALE[0] <= value <= SCALE[1]:
            return int(value)
        raise ValueError(value)
    text = str(value).strip()
    if text.lower() in SKIPPED:
        return None
    text = text.removesuffix("分").removesuffix("星").strip()
    if text in RATING_WORDS:
        return RATING_WORDS[text]
    if text.isdigit() and SCALE[0] <= int(text) <= SCALE[1]:
        return int(text)
    raise ValueError(value)


def parse_score(value: Any, scale: tuple[int, int] = NPS_SCALE) -> int | None:
    """A 0–10 answer as an int; None when skipped. Raises ValueError for anything else."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if float(value).is_integer() and scale[0] <= value <= scale[1]:
            return int(value)
        raise ValueError(value)
    text = str(value).strip().removesuffix("分").strip()
    if text.lower() in SKIPPED:
        return None
    if text.isdigit() and scale[0] <= int(text) <= scale[1]:
        return int(text)
    raise ValueError(value)


def parse_duration(value: Any) -> float | None:
    """Seconds from "125秒", "2分5秒", "1小时2分", "00:02:05" or a plain number of seconds; None if empty."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if not text or text in SKIPPED:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    clock = _CLOCK.match(text)
    if clock:
        parts = [int(p) for p in clock.groups() if p is not None]
        return float(parts[0] * 3600 + parts[1] * 60 + parts[2]) if len(parts) == 3 else float(parts[0] * 60 + parts[1])
    found = _DURATION_PART.findall(text)
    if not found or _DURATION_PART.sub("", text).strip():
        raise ValueError(value)
    unit_seconds = {"小时": 3600, "时": 3600, "h": 3600, "分钟": 60, "分": 60, "m": 60, "秒": 1, "s": 1}
    return sum(float(n) * unit_seconds[u.lower()] for n, u in found)


def parse_time(value: Any) -> datetime | None:
    """A submission time as the platforms write it ("2024/5/3 10:21:07", ISO, or an Excel datetime)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    text = str(value).strip().replace("/", "-").replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(value)


def _share(values: list[Any], parse) -> float:
    """Share of the non-empty values that ``parse`` accepts."""
    present = [v for v in values if v is not None and str(v).strip() not in SKIPPED]
    if not present:
        return 0.0
    ok = 0
    for v in present:
        try:
            parse(v)
            ok += 1
        except ValueError:
            pass
    return ok / len(present)


def dimension_of(header: str) -> str | None:
    for dim, cues in DIMENSION_CUES.items():
        if any(c in header for c in cues):
            return dim
    return None


def recognise(columns: list[str], rows: list[dict[str, Any]], *, rating_columns: list[str] | None = None,
              text_columns: list[str] | None = None, duration_column: str | None = None,
              nps_column: str | None = None, dimensions: dict[str, str] | None = None) -> SurveyLayout:
    """The layout of an export: headers first, values second, overrides last (they always win)."""
    layout = SurveyLayout(columns=list(columns))
    names = [str(c) for c in columns]
    for given in [*(rating_columns or []), *(text_columns or []), duration_column, nps_column,
                  *(dimensions or {}).values()]:
        if given and given not in names:
            raise DataError(f"no column {short(given)!r} in the export; columns are: "
                            f"{', '.join(short(c) for c in names[:30])}{' …' if len(names) > 30 else ''}")
    for key, headers in _META.items():
        for col in names:
            if col.strip() in headers and col not in layout.meta.values():
                layout.meta.setdefault(key, col)
    if duration_column:
        layout.meta["duration"] = duration_column
    taken = set(layout.meta.values())
    values = {c: [r.get(c) for r in rows] for c in names}
    for col in names:
        if col in taken:
            continue
        vals = values[col]
        title = question_title(col)
        forced_rating = rating_columns is not None and col in rating_columns
        forced_text = text_columns is not None and col in text_columns
        if col == nps_column or (nps_column is None and not forced_rating and not forced_text
                                 and any(c in title for c in NPS_CUES) and _share(vals, parse_score) >= 0.9):
            layout.nps = col
        elif forced_rating or (rating_columns is None and not forced_text
                               and _share(vals, parse_rating) >= (0.5 if any(c in title for c in RATING_CUES) else 0.9)):
            layout.ratings[col] = dimension_of(title) or title
            if any(c in title for c in OVERALL_CUES):
                layout.overall = layout.overall or col
                layout.ratings[col] = "总体满意度"
        elif forced_text or (text_columns is None and _looks_like_open_answers(vals)):
            layout.texts.append(col)
        elif _looks_like_groups(vals):
            layout.groups.append(col)
        else:
            layout.ignored.append(col)
    for dim, col in (dimensions or {}).items():
        if col not in layout.ratings:
            raise DataError(f"--dimension {dim}={short(col)}: that column does not hold 1–5 ratings")
        layout.ratings[col] = dim
    if not layout.ratings and not layout.texts and layout.nps is None:
        raise DataError("no rating question and no open answer recognised; name them with "
                        "--rating-columns / --text-columns. Columns are: "
                        + ", ".join(short(c) for c in names[:30]) + (" …" if len(names) > 30 else ""))
    return layout


def _present_strings(vals: list[Any]) -> list[str]:
    return [str(v).strip() for v in vals if v is not None and str(v).strip() not in SKIPPED]


def _looks_like_open_answers(vals: list[Any]) -> bool:
    present = _present_strings(vals)
    if not present:
        return False
    numeric = sum(p.replace(".", "", 1).isdigit() for p in present)
    distinct = len(set(present)) / len(present)
    mean_len = sum(map(len, present)) / len(present)
    return numeric / len(present) < 0.5 and distinct >= 0.5 and mean_len >= 4


def _looks_like_groups(vals: list[Any]) -> bool:
    present = _present_strings(vals)
    return bool(present) and len(set(present)) <= max(20, len(present) // 20)
