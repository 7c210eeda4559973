"""Cue words found as words: on jieba token boundaries, never inside a digit run or a longer word, and
not when a negation just before them takes them back ("从来不给差评").

Severity, urgency and problem rules each build their own ``CueMatcher`` from their word lists and call
``find`` or ``matches`` the same way. ``CueTexts`` holds a batch of texts that several matchers read, so
each text is normalized once and segmented at most once, whichever rule needs its tokens first.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cxnlp.text import Token, normalize, tokenize_batch, tokenize_spans

# Words that take back a cue right after them in the same clause ("没有受伤", "我不会投诉", "从来不给差评").
NEGATORS = frozenset({"不", "没", "没有", "从不", "从来不", "从没", "从没有", "从来没", "从来没有", "别", "不会",
                      "不用", "无需", "不必", "不想", "未", "并未", "绝不", "决不", "不再"})
NEGATION_WINDOW = 2                         # tokens before a cue that a negator may stand on
# Words between a negator and its cue that do not use up the window: "我没有说要曝光" takes the cue back
# as "没有曝光" does.
SAYING_WORDS = frozenset({"说", "要", "说要", "想", "想要", "打算", "准备", "会", "去"})
_CLAUSE_END = re.compile(r"[,.;!?]")       # normalized clause punctuation: a negation does not reach past it
_WORD_CHAR = re.compile(r"[0-9a-z]")


@dataclass(frozen=True)
class CueHit:
    cue: str
    start: int
    end: int


class CueMatcher:
    """Finds a fixed list of cue words in texts, as words.

    A cue occurrence counts when it starts where a token starts and ends where a token ends; a
    Chinese cue may also be the head of a longer token ("气死" in "气死我了") but a cue never matches
    inside a run of digits or Latin letters ("12345" in "A123456789"). Matching runs on the normalized
    text, so full-width and traditional forms count too.
    """

    def __init__(self, cues: Iterable[str], *, negators: frozenset[str] = NEGATORS,
                 window: int = NEGATION_WINDOW) -> None:
        self.cues = tuple(dict.fromkeys(normalize(c) for c in cues if c))
        self.negators = negators
        self.window = window
        self._any = re.compile("|".join(map(re.escape, sorted(self.cues, key=len, reverse=True)))) if self.cues else None

    def may_match(self, normalized: str) -> bool:
        """Whether a cue occurs at all (as a substring) in a text already normalized: only then are
        tokens needed."""
        return self._any is not None and self._any.search(normalized) is not None

    def find(self, text: str, tokens: Sequence[Token] | None = None, norm: str | None = None) -> list[CueHit]:
        """Every cue that counts in ``text``, in order (``tokens`` are ``tokenize_spans(text)`` and
        ``norm`` is ``normalize(text)`` when the caller has them, e.g. from a ``CueTexts``)."""
        if self._any is None:
            return []
        norm = normalize(text) if norm is None else norm
        if not self._any.search(norm):  # most texts hold no cue: one pass over them
            return []
        candidates = [(cue, start) for cue in self.cues if cue in norm for start in _occurrences(norm, cue)]
        tokens = list(tokens) if tokens is not None else tokenize_spans(text)
        starts = {t.start: k for k, t in enumerate(tokens)}
        ends = {t.end for t in tokens}
        hits = []
        for cue, start in candidates:
            end = start + len(cue)
            k = starts.get(start)
            if k is None:
                continue
            if end not in ends:
                # the head of a longer word: only for a cue and a continuation that are not digits/Latin
                if end > tokens[k].end or _WORD_CHAR.match(norm[end - 1]) or _WORD_CHAR.match(norm[end]):
                    continue
            if self._negated(norm, tokens, k):
                continue
            hits.append(CueHit(cue, start, end))
        return sorted(hits, key=lambda h: (h.start, h.end))

    def matches(self, text: str, tokens: Sequence[Token] | None = None, norm: str | None = None) -> bool:
        return bool(self.find(text, tokens, norm))

    def _negated(self, norm: str, tokens: Sequence[Token], k: int) -> bool:
        counted, j = 0, k - 1
        while j >= 0 and counted < self.window:
            if _CLAUSE_END.search(norm, tokens[j].end, tokens[j + 1].start):
                return False
            word = norm[tokens[j].start:tokens[j].end]
            if word in self.negators:
                return True
            counted += word not in SAYING_WORDS
            j -= 1
        return False


def _occurrences(text: str, word: str) -> list[int]:
    """Where ``word`` starts in ``text``, left to right without overlaps (as ``re.finditer`` finds it)."""
    found, at = [], text.find(word)
    while at >= 0:
        found.append(at)
        at = text.find(word, at + len(word))
    return found


class CueTexts:
    """A batch of texts read by several cue matchers (severity, urgency and problem rules): each text is
    normalized once, and segmented once, in one ``tokenize_batch`` call for all the texts a rule first
    needs the tokens of; ``tokens`` stays None for a text no matcher may match."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.norms = [normalize(t) for t in self.texts]
        self._tokens: dict[int, list[Token]] = {}

    @classmethod
    def of(cls, texts: "Sequence[str] | CueTexts") -> "CueTexts":
        return texts if isinstance(texts, CueTexts) else cls(texts)

    def __len__(self) -> int:
        return len(self.texts)

    def segment(self, rows: Iterable[int]) -> None:
        """Segment, in one call, the texts of ``rows`` not segmented yet."""
        todo = [i for i in dict.fromkeys(rows) if i not in self._tokens]
        if todo:
            self._tokens.update(zip(todo, tokenize_batch([self.texts[i] for i in todo]).split(len(todo))))

    def tokens(self, row: int) -> list[Token] | None:
        return self._tokens.get(row)
