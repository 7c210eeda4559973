"""Severity, urgency, kind, responsible department and deadlines of a ledger record, from a readable
TOML file.

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
from cxnlp.ledger.cues import CueMatcher, CueTexts, Spans
from cxnlp.ledger.models import KINDS, SEVERITIES, URGENCIES
from cxnlp.text import Token

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
    false_friends: tuple[str, ...] = ()
    matcher: CueMatcher = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matcher", CueMatcher(self.words, false_friends=self.false_friends))

    def matches(self, text: str, categories: list[str], negative: float, tokens: Sequence[Token] | Spans | None = None,
                norm: str | None = None) -> bool:
        if negative >= self.words_min_negative and self.matcher.matches(text, tokens, norm):
            return True
        return negative >= self.min_negative and len(categories) >= self.min_categories


@dataclass(frozen=True)
class UrgencyRule:
    """An urgency level reached by a cue word (as a word, in a text at least ``words_min_negative``
    negative), or — with ``max_negative`` set — by a text that reports no failure (none of
    ``failure_words``; a text read as positive may name a failure it thanks for): less negative than
    ``max_negative``, or a question (one of ``question_words``) less negative than ``question_max_negative``."""

    level: str
    words: tuple[str, ...] = ()
    words_min_negative: float = 0.0
    max_negative: float | None = None
    failure_words: tuple[str, ...] = ()
    question_words: tuple[str, ...] = ()
    question_max_negative: float = 0.0
    false_friends: tuple[str, ...] = ()
    matcher: CueMatcher = field(init=False, compare=False, repr=False)
    failures: CueMatcher = field(init=False, compare=False, repr=False)
    questions: CueMatcher = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matcher", CueMatcher(self.words, false_friends=self.false_friends))
        object.__setattr__(self, "failures", CueMatcher(self.failure_words))
        object.__setattr__(self, "questions", CueMatcher(self.question_words))

    def needs_tokens(self, normalized: str, scores: dict[str, float]) -> bool:
        """Whether ``matches`` may have to segment this text (most texts are decided without)."""
        negative = float(scores.get("negative", 0.0))
        if self.words and negative >= self.words_min_negative and self.matcher.may_match(normalized):
            return True
        if self.max_negative is None or negative >= max(self.max_negative, self.question_max_negative):
            return False
        return self.failures.may_match(normalized) or self.questions.may_match(normalized)

    def matches(self, text: str, scores: dict[str, float], tokens: Sequence[Token] | Spans | None = None,
                norm: str | None = None) -> bool:
        negative = float(scores.get("negative", 0.0))
        if self.words and negative >= self.words_min_negative and self.matcher.matches(text, tokens, norm):
            return True
        if self.max_negative is None:
            return False
        calm = negative < self.max_negative
        if not calm and not (negative < self.question_max_negative and self.questions.matches(text, tokens, norm)):
            return False
        positive = bool(scores) and max(scores, key=lambda k: scores[k]) == "positive"
        return positive or not self.failures.matches(text, tokens, norm)


@dataclass(frozen=True)
class LedgerRules:
    severity: tuple[SeverityRule, ...]
    due_hours: dict[str, float]
    departments: dict[str, str]
    urgency: tuple[UrgencyRule, ...] = ()
    default_urgency: str = "一般"
    respond_hours: dict[str, float] = field(default_factory=lambda: {"紧急": 1.0, "一般": 4.0, "咨询": 24.0})

    @classmethod
    def load(cls, path: Path | None = None) -> "LedgerRules":
        source = path or Path(str(resources.files("cxnlp") / "data" / "ledger_rules.toml"))
        try:
            tree: dict[str, Any] = tomllib.loads(Path(source).read_text(encoding="utf-8"))
            friends = tuple(str(f) for f in tree.get("false_friends", []))
            rules = tuple(SeverityRule(level=r["level"], words=tuple(r.get("words", [])),
                                       min_negative=float(r["min_negative"]), min_categories=int(r["min_categories"]),
                                       words_min_negative=float(r.get("words_min_negative", 0.0)),
                                       false_friends=friends)
                          for r in tree["severity"])
            due = {k: float(v) for k, v in tree["due_hours"].items()}
            departments = dict(tree["departments"])
            urgency_tree = tree.get("urgency", {})
            urgency = tuple(UrgencyRule(level=r["level"], words=tuple(r.get("words", [])),
                                        words_min_negative=float(r.get("words_min_negative", 0.0)),
                                        max_negative=None if r.get("max_negative") is None else float(r["max_negative"]),
                                        failure_words=tuple(r.get("failure_words", [])),
                                        question_words=tuple(r.get("question_words", [])),
                                        question_max_negative=float(r.get("question_max_negative", 0.0)),
                                        false_friends=friends)
                            for r in urgency_tree.get("rule", []))
            default_urgency = str(urgency_tree.get("default", "一般"))
            respond = {k: float(v) for k, v in tree.get("respond_hours", {"紧急": 1, "一般": 4, "咨询": 24}).items()}
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: invalid ledger rules ({exc})") from exc
        unknown = {r.level for r in rules} - set(SEVERITIES)
        if unknown or set(due) != set(SEVERITIES):
            raise ConfigError(f"{source}: severity levels must be {', '.join(SEVERITIES)}, each with due_hours")
        if ({r.level for r in urgency} | {default_urgency}) - set(URGENCIES) or set(respond) != set(URGENCIES):
            raise ConfigError(f"{source}: urgency levels must be {', '.join(URGENCIES)}, each with respond_hours")
        return cls(rules, due, departments, urgency, default_urgency, respond)

    def severity_of(self, text: str, categories: list[str], sentiment_scores: dict[str, float],
                    tokens: Sequence[Token] | Spans | None = None, norm: str | None = None) -> str:
        negative = float(sentiment_scores.get("negative", 0.0))
        for rule in self.severity:
            if rule.matches(text, categories, negative, tokens, norm):
                return rule.level
        return SEVERITIES[0]

    def severities(self, texts: Sequence[str] | CueTexts, categories: Sequence[list[str]],
                   sentiment_scores: Sequence[dict[str, float]]) -> list[str]:
        """``severity_of`` for many texts: the texts holding a cue word are segmented in one call (none
        again that ``texts``, a ``CueTexts`` shared with other rules, already holds the tokens of)."""
        cue = CueTexts.of(texts)
        matchers = [r.matcher for r in self.severity]
        cue.segment(i for i, n in enumerate(cue.norms) if any(m.may_match(n) for m in matchers))
        return [self.severity_of(t, c, s, cue.tokens(i), cue.norms[i]) for i, (t, c, s)
                in enumerate(zip(cue.texts, categories, sentiment_scores))]

    def urgency_of(self, text: str, sentiment_scores: dict[str, float], tokens: Sequence[Token] | Spans | None = None,
                   norm: str | None = None) -> str:
        """紧急 / 一般 / 咨询 by the rules, first match wins (see the rules file)."""
        for rule in self.urgency:
            if rule.matches(text, sentiment_scores, tokens, norm):
                return rule.level
        return self.default_urgency

    def urgencies(self, texts: Sequence[str] | CueTexts, sentiment_scores: Sequence[dict[str, float]]) -> list[str]:
        """``urgency_of`` for many texts (the one function the CLI, the HTTP service and the ledger use):
        the texts holding a cue word are segmented in one call."""
        cue = CueTexts.of(texts)
        cue.segment(i for i, (n, s) in enumerate(zip(cue.norms, sentiment_scores))
                    if any(r.needs_tokens(n, s) for r in self.urgency))
        return [self.urgency_of(t, s, cue.tokens(i), cue.norms[i])
                for i, (t, s) in enumerate(zip(cue.texts, sentiment_scores))]

    @staticmethod
    def kind_of(sentiment: str | None, urgency: str, categories: Sequence[str]) -> str:
        """complaint / praise / inquiry (documented in the rules file): only complaints get a resolution
        deadline, an overdue alarm and a follow-up."""
        if urgency == URGENCIES[0] or (sentiment == "negative" and urgency != URGENCIES[2]) or (
                urgency == URGENCIES[1] and categories and sentiment != "positive"):
            return KINDS[0]
        return KINDS[1] if sentiment == "positive" else KINDS[2]

    def respond_by(self, urgency: str, received_at: datetime) -> datetime:
        return received_at + timedelta(hours=self.respond_hours[urgency])

    def department_of(self, categories: list[str]) -> str | None:
        for category in self.departments:
            if category in categories:
                return self.departments[category]
        return self.departments.get(NO_CATEGORY)

    def due_at(self, severity: str, received_at: datetime) -> datetime:
        return received_at + timedelta(hours=self.due_hours[severity])

    def resolve_by(self, kind: str, severity: str, received_at: datetime) -> datetime | None:
        """The resolution deadline of a complaint; praise and inquiries have none."""
        return self.due_at(severity, received_at) if kind == KINDS[0] else None


_DEFAULT: dict[str, LedgerRules] = {}


def configured_rules() -> LedgerRules:
    """The rules named by the settings (``CXNLP_LEDGER_RULES``, else the shipped file), loaded once."""
    from cxnlp.settings import get_settings

    path = get_settings().ledger_rules
    key = str(path or "")
    if key not in _DEFAULT:
        _DEFAULT[key] = LedgerRules.load(path)
    return _DEFAULT[key]
