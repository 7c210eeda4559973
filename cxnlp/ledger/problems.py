"""High-frequency problems (高频问题): a readable catalogue of named problems, matched in complaints as
words, and proposals of new problems from the complaints no problem matched.

The shipped catalogue is ``cxnlp/data/problems.toml``; analysts' own problems live in a user catalogue
(``Settings.problems_file``, default ``problems.toml`` in the per-user data folder) that
``accept_problem`` appends to. A user problem with a shipped name replaces the shipped one.
"""
from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cxnlp.errors import ConfigError, DataError
from cxnlp.ledger.cues import CueMatcher, CueTexts
from cxnlp.ledger.models import FeedbackRecord

SHIPPED = "problems.toml"
KEY_POS = ("n", "nz", "vn", "v", "a", "an", "l", "i")  # jieba part-of-speech tags kept as key phrases
MAX_PHRASE_SHARE, MIN_COMMON = 0.15, 20
DISTANCE_THRESHOLD = 0.9  # cosine distance under which two groups of texts are merged (average linkage)


@dataclass(frozen=True)
class Problem:
    name: str
    category: str
    department: str
    cues: tuple[str, ...]
    matcher: CueMatcher = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matcher", CueMatcher(self.cues))


@dataclass(frozen=True)
class ProblemCatalogue:
    problems: tuple[Problem, ...]
    any_cue: CueMatcher = field(init=False, compare=False, repr=False)  # every problem's cues: one search per text

    def __post_init__(self) -> None:
        object.__setattr__(self, "any_cue", CueMatcher(c for p in self.problems for c in p.cues))

    @classmethod
    def load(cls, user_file: Path | None = None) -> "ProblemCatalogue":
        """The shipped catalogue, then the user's (when the file exists)."""
        shipped = Path(str(resources.files("cxnlp") / "data" / SHIPPED))
        by_name: dict[str, Problem] = {p.name: p for p in _read(shipped)}
        if user_file is not None and Path(user_file).exists():
            by_name.update((p.name, p) for p in _read(Path(user_file)))
        return cls(tuple(by_name.values()))

    def match(self, texts: Sequence[str] | CueTexts, rows: Sequence[int] | None = None) -> list[list[str]]:
        """The names of the problems found in each text (catalogue order), or in the texts of ``rows``
        only; the texts that may hold a cue are segmented in one call (none again that ``texts``, a
        ``CueTexts`` shared with other rules, already holds the tokens of)."""
        cue = CueTexts.of(texts)
        rows = range(len(cue)) if rows is None else rows
        candidates = [[p for p in self.problems if p.matcher.may_match(cue.norms[i])]
                      if self.any_cue.may_match(cue.norms[i]) else [] for i in rows]
        cue.segment(i for i, found in zip(rows, candidates) if found)
        return [[p.name for p in found if p.matcher.matches(cue.texts[i], cue.tokens(i), cue.norms[i])]
                for i, found in zip(rows, candidates)]

    def get(self, name: str) -> Problem | None:
        return next((p for p in self.problems if p.name == name), None)


def _read(path: Path) -> list[Problem]:
    try:
        tree: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        problems = [Problem(name=str(p["name"]), category=str(p.get("category", "")),
                            department=str(p.get("department", "")), cues=tuple(str(c) for c in p["cues"]))
                    for p in tree.get("problem", [])]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: invalid problem catalogue ({exc})") from exc
    for p in problems:
        if not p.name.strip() or not p.cues:
            raise ConfigError(f"{path}: every problem needs a name and at least one cue phrase")
    return problems


def user_catalogue_path() -> Path:
    from platformdirs import user_data_path

    from cxnlp.settings import get_settings

    return get_settings().problems_file or user_data_path("cxnlp", appauthor=False) / "problems.toml"


_CACHE: dict[tuple[str, float], ProblemCatalogue] = {}


def configured_catalogue() -> ProblemCatalogue:
    """The shipped and the user catalogue, reloaded when the user file changes."""
    path = user_catalogue_path()
    key = (str(path), path.stat().st_mtime if path.exists() else 0.0)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = ProblemCatalogue.load(path)
    return _CACHE[key]


def _toml_str(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def accept_problem(*, name: str, category: str, cues: Sequence[str], department: str = "",
                   path: Path | None = None) -> Path:
    """Add a problem to the user catalogue (a proposal of ``suggest_problems``, possibly renamed); a name
    already there is a ``DataError`` (edit the file to change a problem: its name is its identity)."""
    from cxnlp.io import write_text_atomic

    name, cues = name.strip(), [c.strip() for c in cues if c.strip()]
    if not name or not cues:
        raise DataError("a problem needs a name and at least one cue phrase")
    path = path or user_catalogue_path()
    existing = path.read_text(encoding="utf-8") if path.exists() else (
        "# Problems accepted by analysts (cxnlp ledger problems accept); read after the shipped catalogue.\n")
    if any(p.name == name for p in (_read(path) if path.exists() else [])):
        raise DataError(f"{path} already has a problem named {name!r}")
    block = (f"\n[[problem]]\nname = {_toml_str(name)}\ncategory = {_toml_str(category)}\n"
             f"department = {_toml_str(department)}\ncues = [{', '.join(_toml_str(c) for c in cues)}]\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, existing + block)
    _CACHE.clear()
    return path


@dataclass
class Proposal:
    """A candidate problem: its key phrases (the first is the suggested name), how many unmatched
    complaints it covers and three of them (masked, as stored)."""

    phrases: list[str]
    count: int
    examples: list[str]
    category: str = ""


def suggest_problems(*, session: Session, start: datetime, end: datetime, max_proposals: int = 10,
                     min_count: int = 3) -> list[Proposal]:
    """Proposals from the complaints received in [start, end) that no catalogue problem matched: each
    text's key phrases (jieba TF-IDF), the texts clustered on them (agglomerative, cosine), and each
    cluster of at least ``min_count`` texts named by its most shared phrases."""
    import jieba.analyse
    import numpy as np
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer

    rows = session.execute(
        select(FeedbackRecord.text, FeedbackRecord.categories, FeedbackRecord.corrected_categories)
        .where(FeedbackRecord.received_at >= start, FeedbackRecord.received_at < end,
               FeedbackRecord.kind == "complaint").order_by(FeedbackRecord.id)).all()
    unmatched = [(t, c2 if c2 is not None else c1) for t, c1, c2, in rows]
    unmatched = [(t, c) for (t, c), found in zip(unmatched, configured_catalogue().match([t for t, _ in unmatched]))
                 if not found]
    if len(unmatched) < min_count:
        return []
    keys = [[k for k in jieba.analyse.extract_tags(t.replace("*", ""), topK=8, allowPOS=KEY_POS)
             if len(k) > 1 and not any(ch.isdigit() for ch in k)] for t, _ in unmatched]
    # phrases in more than MAX_PHRASE_SHARE of the texts name the company or the trade, not a problem
    df = Counter(k for ks in keys for k in set(ks))
    common = {k for k, n in df.items() if n > max(MAX_PHRASE_SHARE * len(keys), MIN_COMMON)}
    keys = [[k for k in ks if k not in common] for ks in keys]
    docs = [" ".join(k) for k in keys]
    keep = [i for i, d in enumerate(docs) if d]
    if len(keep) < min_count:
        return []
    vectors = TfidfVectorizer(token_pattern=r"[^ ]+", sublinear_tf=True).fit_transform([docs[i] for i in keep])
    labels = AgglomerativeClustering(n_clusters=None, distance_threshold=DISTANCE_THRESHOLD, metric="cosine",
                                     linkage="average").fit_predict(vectors.toarray())
    proposals = []
    for label in np.unique(labels):
        members = [keep[j] for j in np.flatnonzero(labels == label)]
        if len(members) < min_count:
            continue
        shared = Counter(k for i in members for k in set(keys[i]))
        cats = Counter(c for i in members for c in unmatched[i][1])
        proposals.append(Proposal(phrases=[k for k, _ in shared.most_common(4)], count=len(members),
                                  examples=[unmatched[i][0] for i in members[:3]],
                                  category=cats.most_common(1)[0][0] if cats else ""))
    proposals.sort(key=lambda p: (-p.count, p.phrases))
    return proposals[:max_proposals]
