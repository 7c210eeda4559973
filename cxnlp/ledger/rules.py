"""Severity, responsible department and deadline of a ledger record, from a readable TOML file.

The shipped rules are ``cxnlp/data/ledger_rules.toml``; ``CXNLP_LEDGER_RULES`` points at a
company's own copy.
"""
from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from cxnlp.errors import ConfigError
from cxnlp.ledger.cues import CueMatcher
from cxnlp.ledger.models import SEVERITIES
from cxnlp.text import Token, normalize, tokenize_batch

NO_CATEGORY = "(none)"


@dataclass(frozen=True)
class SeverityRule:
    """A level reached by a cue word (found as a word, see ``CueMatcher``, in a text that is at least
    ``words_min_negative`` negative: praise of the 12345 hotline is no threat to call it) or by
    sentiment and the number of problems alone."""

    level: str
    words: tuple[str, ...]
    min_negative: float
    min_categories: int
    words_min_negative: float = 0.0
    matcher: CueMatcher = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matcher", CueMatcher(self.words))

    def matches(self, text: str, categories: list[str], negative: float, tokens: list[Token] | None = None) -> bool:
        if negative >= self.words_min_negative and self.matcher.matches(text, tokens):
            return True
        return negative >= self.min_negative and len(categories) >= self.min_categories


@dataclass(frozen=True)
class LedgerRules:
    severity: tuple[SeverityRule, ...]
    due_hours: dict[str, float]
    departments: dict[str, str]

    @classmethod
    def load(cls, path: Path | None = None) -> "LedgerRules":
        source = path or Path(str(resources.files("cxnlp") / "data" / "ledger_rules.toml"))
        try:
            tree: dict[str, Any] = tomllib.loads(Path(source).read_text(encoding="utf-8"))
            rules = tuple(SeverityRule(level=r["level"], words=tuple(r.get("words", [])),
                                       min_negative=float(r["min_negative"]), min_categories=int(r["min_categories"]),
                                       words_min_negative=float(r.get("words_min_negative", 0.0)))
                          for r in tree["severity"])
            due = {k: float(v) for k, v in tree["due_hours"].items()}
            departments = dict(tree["departments"])
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: invalid ledger rules ({exc})") from exc
        unknown = {r.level for r in rules} - set(SEVERITIES)
        if unknown or set(due) != set(SEVERITIES):
            raise ConfigError(f"{source}: severity levels must be {', '.join(SEVERITIES)}, each with due_hours")
        return cls(rules, due, departments)

    def severity_of(self, text: str, categories: list[str], sentiment_scores: dict[str, float],
                    tokens: list[Token] | None = None) -> str:
        negative = float(sentiment_scores.get("negative", 0.0))
        for rule in self.severity:
            if rule.matches(text, categories, negative, tokens):
                return rule.level
        return SEVERITIES[0]

    def severities(self, texts: Sequence[str], categories: Sequence[list[str]],
                   sentiment_scores: Sequence[dict[str, float]]) -> list[str]:
        """``severity_of`` for many texts: the texts holding a cue word are segmented in one call."""
        norms = [normalize(t) for t in texts]
        need = [i for i, n in enumerate(norms) if any(r.matcher.may_match(n) for r in self.severity)]
        table = tokenize_batch([texts[i] for i in need]) if need else None
        tokens = {i: table.tokens_of(k) for k, i in enumerate(need)} if table is not None else {}
        return [self.severity_of(t, c, s, tokens.get(i)) for i, (t, c, s)
                in enumerate(zip(texts, categories, sentiment_scores))]

    def department_of(self, categories: list[str]) -> str | None:
        for category in self.departments:
            if category in categories:
                return self.departments[category]
        return self.departments.get(NO_CATEGORY)

    def due_at(self, severity: str, received_at: datetime) -> datetime:
        return received_at + timedelta(hours=self.due_hours[severity])
