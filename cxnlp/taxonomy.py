"""The label set: names, validation and parsing of labels as analysts write them.

The default set is described in ``docs/taxonomy.md``; a company may train its own category names, so the
category set of a model always comes from its training data and is stored in its card.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from cxnlp.errors import DataError

DEFAULT_CATEGORIES: tuple[str, ...] = ("attitude", "speed", "expertise", "process")
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
CATEGORY_NAMES_ZH: dict[str, str] = {
    "attitude": "服务态度",
    "speed": "响应速度",
    "expertise": "专业能力",
    "process": "流程规范",
}
SENTIMENT_NAMES_ZH: dict[str, str] = {"negative": "负面", "neutral": "中性", "positive": "正面"}

# Analysts type sentiments in either language; both map to the canonical names.
_SENTIMENT_ALIASES = {
    **{s: s for s in SENTIMENTS},
    **{zh: en for en, zh in SENTIMENT_NAMES_ZH.items()},
    "neg": "negative", "pos": "positive", "neu": "neutral",
    "消极": "negative", "积极": "positive", "差评": "negative", "好评": "positive",
}
_LABEL_RE = re.compile(r"^[A-Za-z0-9_\-\u4e00-\u9fff]+$")
_SEPARATORS = re.compile(r"[|｜,，;；、]")


def parse_sentiment(value: object) -> str:
    """Canonical sentiment name for an analyst's value, or DataError."""
    key = str(value).strip().lower() if value is not None else ""
    if key not in _SENTIMENT_ALIASES:
        raise DataError(f"unknown sentiment {value!r} (expected one of {', '.join(SENTIMENTS)})")
    return _SENTIMENT_ALIASES[key]


def parse_categories(value: object) -> list[str]:
    """Labels from a cell: a list, or text joined by ``|`` (also , ; 、); empty means none.

    Category names map from their Chinese names too (服务态度 → attitude). Raises DataError on a
    malformed label (spaces inside, punctuation, an empty piece between separators).
    """
    if value is None:
        return []
    if isinstance(value, float) and value != value:  # NaN from spreadsheets
        return []
    if isinstance(value, (list, tuple)):
        pieces = [str(v).strip() for v in value]
    else:
        text = str(value).strip()
        if text in ("", "[]", "none", "无"):
            return []
        pieces = [p.strip() for p in _SEPARATORS.split(text)]
    zh_to_en = {zh: en for en, zh in CATEGORY_NAMES_ZH.items()}
    labels: list[str] = []
    for piece in pieces:
        if not piece or not _LABEL_RE.match(piece):
            raise DataError(f"malformed category label {piece!r} in {value!r}")
        label = zh_to_en.get(piece, piece)
        if label not in labels:
            labels.append(label)
    return labels


def check_known(labels: Iterable[str], known: Iterable[str]) -> None:
    """DataError naming the labels that are not in ``known``."""
    unknown = sorted(set(labels) - set(known))
    if unknown:
        raise DataError(f"unknown category label(s) {', '.join(unknown)} (model knows {', '.join(known)})")
