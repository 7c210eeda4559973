"""Cue words found as words: on jieba token boundaries, never inside a digit run or a longer word, not
when a negation just before them takes them back ("从来不给差评", "我不是要投诉"), and not inside a
false friend: a phrase in which the word is no cue ("据媒体报道" cites the media, it threatens nothing).

Severity, urgency and problem rules each build their own ``CueMatcher`` from their word lists and call
``find`` or ``matches`` the same way. ``CueTexts`` holds a batch of texts that several matchers read, so
each text is normalized once and segmented at most once, whichever rule needs its tokens first.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from cxnlp.text import Token, TokenTable, normalize, tokenize_batch, tokenize_spans

# Words that take back a cue right after them in the same clause ("没有受伤", "我不会投诉", "从来不给差评").
NEGATORS = frozenset({"不", "没", "没有", "从不", "从来不", "从没", "从没有", "从来没", "从来没有", "别", "不会",
                      "不用", "无需", "不必", "不想", "未", "并未", "绝不", "决不", "不再"})
NEGATION_WINDOW = 2                         # tokens before a cue that a negator may stand on
# "Is not" takes a cue back only with nothing but saying words between: "我不是要投诉" is no complaint,
# "不是第一次投诉了" is a repeated one.
ADJACENT_NEGATORS = frozenset({"不是", "并不是", "并非"})
# Words between a negator and its cue that do not use up the window: "我没有说要曝光" takes the cue back
# as "没有曝光" does.
SAYING_WORDS = frozenset({"说", "要", "说要", "想", "想要", "打算", "准备", "会", "去"})
# A verb of going to someone, no distance either, but only right after a negator or a saying word: "我不是
# 说要找律师", "没有找媒体" are taken back; in "不退款找律师" the negation is the refund's, the threat stands.
REACHING_WORDS = frozenset({"找"})
_CLAUSE_END = re.compile(r"[,.;!?]")       # normalized clause punctuation: a negation does not reach past it
_WORD_CHAR = re.compile(r"[0-9a-z]")


class Spans(NamedTuple):
    """A text's tokens as a ``CueMatcher`` reads them: where each starts and where it ends, in order
    (one object per text instead of a ``Token`` per token: a batch of texts has a million tokens)."""

    starts: list[int]
    ends: list[int]

    @classmethod
    def of(cls, tokens: "Sequence[Token] | Spans") -> "Spans":
        return tokens if isinstance(tokens, Spans) else cls([t.start for t in tokens], [t.end for t in tokens])


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
                 window: int = NEGATION_WINDOW, false_friends: Iterable[str] = ()) -> None:
        self.cues = tuple(dict.fromkeys(normalize(c) for c in cues if c))
        self.negators = negators
        self.window = window
        friends = sorted({normalize(f) for f in false_friends if f}, key=len, reverse=True)
        self._friends = re.compile("|".join(map(re.escape, friends))) if friends else None
        self._any = re.compile("|".join(map(re.escape, sorted(self.cues, key=len, reverse=True)))) if self.cues else None

    def may_match(self, normalized: str) -> bool:
        """Whether a cue occurs at all (as a substring) in a text already normalized: only then are
        tokens needed."""
        return self._any is not None and self._any.search(normalized) is not None

    def find(self, text: str, tokens: Sequence[Token] | Spans | None = None,
             norm: str | None = None) -> list[CueHit]:
        """Every cue that counts in ``text``, in order (``tokens`` are ``tokenize_spans(text)``, or their
        ``Spans``, and ``norm`` is ``normalize(text)`` when the caller has them, e.g. from a ``CueTexts``)."""
        if self._any is None:
            return []
        norm = normalize(text) if norm is None else norm
        if not self._any.search(norm):  # most texts hold no cue: one pass over them
            return []
        candidates = [(cue, start) for cue in self.cues if cue in norm for start in _occurrences(norm, cue)]
        spans = Spans.of(tokens if tokens is not None else tokenize_spans(text))
        starts = dict(zip(spans.starts, range(len(spans.starts))))
        ends = set(spans.ends)
        friends = [m.span() for m in self._friends.finditer(norm)] if self._friends is not None else []
        hits = []
        for cue, start in candidates:
            end = start + len(cue)
            k = starts.get(start)
            if k is None or any(a <= start and end <= b for a, b in friends):
                continue
            if end not in ends:
                # the head of a longer word: only for a cue and a continuation that are not digits/Latin
                if end > spans.ends[k] or _WORD_CHAR.match(norm[end - 1]) or _WORD_CHAR.match(norm[end]):
                    continue
            if self._negated(norm, spans, k):
                continue
            hits.append(CueHit(cue, start, end))
        return sorted(hits, key=lambda h: (h.start, h.end))

    def matches(self, text: str, tokens: Sequence[Token] | Spans | None = None, norm: str | None = None) -> bool:
        return bool(self.find(text, tokens, norm))

    def _leads_in(self, norm: str, spans: Spans, j: int) -> bool:
        """A negator or a saying word (token ``j``): what a reaching verb (找) right after it belongs to."""
        word = norm[spans.starts[j]:spans.ends[j]]
        return word in SAYING_WORDS or word in self.negators or word in ADJACENT_NEGATORS

    def _negated(self, norm: str, spans: Spans, k: int) -> bool:
        counted, j = 0, k - 1
        while j >= 0 and counted < self.window:
            if _CLAUSE_END.search(norm, spans.ends[j], spans.starts[j + 1]):
                return False
            word = norm[spans.starts[j]:spans.ends[j]]
            if word in self.negators or (counted == 0 and word in ADJACENT_NEGATORS):
                return True
            reaching = word in REACHING_WORDS and j > 0 and self._leads_in(norm, spans, j - 1)
            counted += word not in SAYING_WORDS and not reaching
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
    needs the tokens of; ``tokens`` stays None for a text no matcher may match.

    Tokens already made are reused instead: ``table``, the texts' own ``TokenTable`` (the model's, from
    the same ``tokenize_batch``), or per text ``same_as``, a (``CueTexts``, row) holding the very same
    text (the ledger's masked text where masking changed nothing, and the texts the model read)."""

    def __init__(self, texts: Sequence[str], table: TokenTable | None = None,
                 same_as: Sequence[tuple["CueTexts", int] | None] | None = None) -> None:
        self.texts = list(texts)
        self._same_as = [s if s is not None and s[0].texts[s[1]] == t else None
                         for s, t in zip(same_as, self.texts)] if same_as is not None else None
        self.norms = [normalize(t) if s is None else s[0].norms[s[1]]
                      for t, s in zip(self.texts, self._same_as or [None] * len(self.texts))]
        self._table = _TableSpans(table, len(self.texts)) if table is not None else None
        self._tokens: dict[int, Spans] = {}

    @classmethod
    def of(cls, texts: "Sequence[str] | CueTexts") -> "CueTexts":
        return texts if isinstance(texts, CueTexts) else cls(texts)

    def __len__(self) -> int:
        return len(self.texts)

    def segment(self, rows: Iterable[int]) -> None:
        """Segment, in one call, the texts of ``rows`` that have no tokens yet (or take them where made)."""
        todo = [i for i in dict.fromkeys(rows) if i not in self._tokens]
        if not todo:
            return
        if self._table is not None:
            self._tokens.update((i, self._table.spans(i)) for i in todo)
            return
        own, borrowed = [], {}
        for i in todo:
            source = self._same_as[i] if self._same_as is not None else None
            if source is None:
                own.append(i)
            else:
                borrowed.setdefault(id(source[0]), (source[0], []))[1].append((i, source[1]))
        for other, pairs in borrowed.values():
            other.segment(j for _, j in pairs)
            self._tokens.update((i, other.tokens(j)) for i, j in pairs)
        if own:
            table = _TableSpans(tokenize_batch([self.texts[i] for i in own]), len(own))
            self._tokens.update((i, table.spans(k)) for k, i in enumerate(own))

    def tokens(self, row: int) -> Spans | None:
        return self._tokens.get(row)


class _TableSpans:
    """Each text's ``Spans`` out of a batch's ``TokenTable``: the arrays turned into lists once, then sliced."""

    def __init__(self, table: TokenTable, n: int) -> None:
        self.starts, self.ends = table.starts.tolist(), table.ends.tolist()
        self.bounds = np.searchsorted(table.rows, np.arange(n + 1)).tolist()

    def spans(self, row: int) -> Spans:
        lo, hi = self.bounds[row], self.bounds[row + 1]
        return Spans(self.starts[lo:hi], self.ends[lo:hi])
