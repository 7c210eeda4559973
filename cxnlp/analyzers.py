"""Text → features: word n-grams over jieba tokens (plus curated cue phrases) and character n-grams.

These analyzers are plain callables with no scikit-learn dependency, so a saved model loads and
runs without importing scikit-learn (whose import alone takes over a second).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from cxnlp.text import Token, mask, normalize, tokenize_spans

WORD_BLOCK, CHAR_BLOCK = "word", "char"
CUE_PREFIX = "\x02cue:"


@lru_cache(maxsize=1)
def load_cue_phrases() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The shipped cue phrases per category (``cxnlp/data/cue_phrases.toml``), normalized."""
    import tomllib
    from importlib import resources

    tree = tomllib.loads((resources.files("cxnlp") / "data" / "cue_phrases.toml").read_text(encoding="utf-8"))
    return tuple((label, tuple(normalize(p) for p in phrases)) for label, phrases in tree.items())


def word_ngrams(tokens: list[Token], ngram_range: tuple[int, int]) -> list[tuple[str, int, int]]:
    """Word n-grams of a token list as (feature, start, end); an n-gram's words are joined by a space."""
    lo, hi = ngram_range
    terms = [t.term for t in tokens]
    out = []
    for n in range(lo, hi + 1):
        for i in range(len(tokens) - n + 1):
            out.append((" ".join(terms[i:i + n]) if n > 1 else terms[i], tokens[i].start, tokens[i + n - 1].end))
    return out


@dataclass
class WordAnalyzer:
    """Text → word n-grams over jieba tokens, plus one ``cue:<category>`` feature per cue phrase found.

    Picklable and stateless: the segmenter is the per-process one from ``cxnlp.text``.
    """

    ngram_range: tuple[int, int] = (1, 2)
    hmm: bool = True
    tokenizer: str = "jieba-rs"
    cues: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def tokens(self, text: str) -> list[Token]:
        return tokenize_spans(text, hmm=self.hmm, backend=self.tokenizer)

    def __call__(self, text: str) -> list[str]:
        return self.features(text, self.tokens(text))

    def features(self, text: str, tokens: list[Token]) -> list[str]:
        """Features of ``text`` from its tokens (so a caller that keeps the tokens segments once)."""
        feats = [f for f, _, _ in word_ngrams(tokens, tuple(self.ngram_range))]
        if self.cues:
            norm = normalize(text)
            for label, phrases in self.cues:
                feats.extend(CUE_PREFIX + label for p in phrases if p in norm)
        return feats


@dataclass
class CharAnalyzer:
    """Text → character n-grams of the normalized, masked text (white space dropped)."""

    ngram_range: tuple[int, int] = (1, 3)

    def __call__(self, text: str) -> list[str]:
        masked = mask(text).replace(" ", "")
        lo, hi = self.ngram_range
        feats: list[str] = []
        for n in range(lo, hi + 1):
            feats.extend(masked[i:i + n] for i in range(len(masked) - n + 1))
        return feats


