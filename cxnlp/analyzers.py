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


def ngram_terms(terms: list[str], ngram_range: tuple[int, int]) -> list[str]:
    """Word n-grams of a term list (what the features are); the same strings as ``word_ngrams``."""
    lo, hi = ngram_range
    out: list[str] = []
    for n in range(lo, hi + 1):
        if n == 1:
            out.extend(terms)
        elif n == 2:
            out.extend([a + " " + b for a, b in zip(terms, terms[1:])])
        else:
            out.extend(" ".join(terms[i:i + n]) for i in range(len(terms) - n + 1))
    return out


def cue_index(cues: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, list[tuple[str, str]]]:
    """Cue phrases by their first character, so a text is checked only against phrases that can occur."""
    index: dict[str, list[tuple[str, str]]] = {}
    for label, phrases in cues:
        for phrase in phrases:
            if phrase:
                index.setdefault(phrase[0], []).append((label, phrase))
    return index


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
        """Features of ``text`` from its tokens (so a caller that keeps the tokens segments once):
        its word n-grams, then ``cue:<label>`` once for every cue phrase of that label found."""
        feats = ngram_terms([t.term for t in tokens], tuple(self.ngram_range))
        if self.cues:
            norm = normalize(text)
            index = self._cue_index()
            feats.extend(CUE_PREFIX + label for ch in set(norm) for label, phrase in index.get(ch, ())
                         if phrase in norm)
        return feats

    def _cue_index(self) -> dict[str, list[tuple[str, str]]]:
        index = self.__dict__.get("_cue_index_cache")
        if index is None:
            index = self.__dict__["_cue_index_cache"] = cue_index(self.cues)
        return index

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_cue_index_cache"}


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


