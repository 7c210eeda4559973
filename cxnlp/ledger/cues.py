"""Cue words found as words: on jieba token boundaries, never inside a digit run or a longer word, not
when a negation just before them takes them back ("从来不给差评", "我不是要投诉"), and not inside a
false friend: a phrase in which the word is no cue ("据媒体报道" cites the media, it threatens nothing).

Severity rules use it today; any other rule family (urgency, …) builds its own ``CueMatcher`` from its
word list and calls ``find`` or ``matches`` the same way.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cxnlp.text import Token, normalize, tokenize_spans

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

    def find(self, text: str, tokens: Sequence[Token] | None = None) -> list[CueHit]:
        """Every cue that counts in ``text``, in order (``tokens`` are ``tokenize_spans(text)`` when the
        caller has them, e.g. from one ``tokenize_batch`` over many texts)."""
        if self._any is None:
            return []
        norm = normalize(text)
        if not self._any.search(norm):  # most texts hold no cue: one pass over them
            return []
        candidates = [(cue, m.start()) for cue in self.cues for m in re.finditer(re.escape(cue), norm)]
        if not candidates:
            return []
        tokens = list(tokens) if tokens is not None else tokenize_spans(text)
        starts = {t.start: k for k, t in enumerate(tokens)}
        ends = {t.end for t in tokens}
        friends = [m.span() for m in self._friends.finditer(norm)] if self._friends is not None else []
        hits = []
        for cue, start in candidates:
            end = start + len(cue)
            k = starts.get(start)
            if k is None or any(a <= start and end <= b for a, b in friends):
                continue
            if end not in ends:
                # the head of a longer word: only for a cue and a continuation that are not digits/Latin
                if end > tokens[k].end or _WORD_CHAR.match(norm[end - 1]) or _WORD_CHAR.match(norm[end]):
                    continue
            if self._negated(norm, tokens, k):
                continue
            hits.append(CueHit(cue, start, end))
        return sorted(hits, key=lambda h: (h.start, h.end))

    def matches(self, text: str, tokens: Sequence[Token] | None = None) -> bool:
        return bool(self.find(text, tokens))

    def _leads_in(self, norm: str, token: Token) -> bool:
        """A negator or a saying word: what a reaching verb (找) right after it belongs to."""
        word = norm[token.start:token.end]
        return word in SAYING_WORDS or word in self.negators or word in ADJACENT_NEGATORS

    def _negated(self, norm: str, tokens: Sequence[Token], k: int) -> bool:
        counted, j = 0, k - 1
        while j >= 0 and counted < self.window:
            if _CLAUSE_END.search(norm, tokens[j].end, tokens[j + 1].start):
                return False
            word = norm[tokens[j].start:tokens[j].end]
            if word in self.negators or (counted == 0 and word in ADJACENT_NEGATORS):
                return True
            reaching = word in REACHING_WORDS and j > 0 and self._leads_in(norm, tokens[j - 1])
            counted += word not in SAYING_WORDS and not reaching
            j -= 1
        return False
