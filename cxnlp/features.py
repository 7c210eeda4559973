"""Texts → hashed word and character n-gram TF-IDF features, the same code at training and prediction.

A batch of texts is normalized, masked and segmented in one pass (``cxnlp.text``), and every n-gram is
hashed with numpy over code points, so featurizing costs a few array operations per batch rather than
a few hundred Python operations per text; that is what lets batch classification outrun plain
``jieba.lcut``. Hashing keeps no vocabulary: the model stays small, and evidence needs no reverse
vocabulary, because each word n-gram's column and span are kept while a batch is featurized.

Two blocks, each TF-IDF weighted and l2-normalized on its own:
``word`` (columns 0 … 2**n-1): word n-grams over jieba tokens, n-grams joined across dropped
punctuation, plus one ``cue:<category>`` count per curated cue phrase found (``data/cue_phrases.toml``)
and, with ``clause_features``, one ``clause:staff+<category>`` / ``clause:<category>`` count per clause that
holds a category word with / without a staff word (``data/clause_words.toml``: who did what, per clause);
``char`` (the next 2**n): character n-grams of the normalized, masked text without white space.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from cxnlp.text import (NormalizedBatch, TokenTable, codepoints, mask_spans, masked_text, normalize,
                        normalize_batch, tokenize_batch)

if TYPE_CHECKING:
    from scipy import sparse

CUE_PREFIX = "\x02cue:"
CLAUSE_PREFIX = "\x02clause:"
_CLAUSE_CHARS = ",.!?;\n"  # normalized clause-ending punctuation (and the batch's text separator)

# 64-bit hashing constants (MurmurHash3's finalizer; an odd multiplier for combining units).
_FMIX1, _FMIX2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_COMBINE = np.uint64(0x9E3779B97F4A7C15)
_POLY = np.uint64(0x100000001B3)
_WORD_SEED, _CHAR_SEED = 0x5BD1E995, 0x1B873593


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer on an array (uint64 arithmetic wraps, as the hash needs)."""
    h = h ^ (h >> np.uint64(33))
    h = h * _FMIX1
    h ^= h >> np.uint64(33)
    h *= _FMIX2
    h ^= h >> np.uint64(33)
    return h


def string_hashes(strings: Sequence[str]) -> np.ndarray:
    """A 64-bit polynomial hash of each string's code points, all strings in a few array operations."""
    if not strings:
        return np.zeros(0, dtype=np.uint64)
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
    cps = codepoints("".join(strings)).astype(np.uint64)
    ends = np.cumsum(lengths)
    powers = np.full(int(lengths.max()), _POLY, dtype=np.uint64)
    powers[0] = 1
    np.multiply.accumulate(powers, out=powers)  # _POLY ** k, modulo 2**64
    values = cps * powers[np.repeat(ends, lengths) - 1 - np.arange(len(cps))]
    return np.add.reduceat(values, ends - lengths) + lengths.astype(np.uint64)


def ngram_columns(units: np.ndarray, rows: np.ndarray, ngram_range: tuple[int, int], seed: int,
                  n_features_log2: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hashed columns of the n-grams of consecutive units (word or character hashes) of the same row.

    Returns (columns, rows, first unit, last unit) of every n-gram, for n within ``ngram_range``.
    """
    shift = np.uint64(64 - n_features_log2)
    out_cols, out_rows, out_first, out_last = [], [], [], []
    for n in range(ngram_range[0], ngram_range[1] + 1):
        k = len(units) - n + 1
        if k <= 0:
            continue
        h = units[:k]
        for j in range(1, n):
            h = _fmix64(h) * _COMBINE + units[j:j + k]
        first = np.flatnonzero(rows[:k] == rows[n - 1:]) if n > 1 else np.arange(k)
        out_cols.append((_fmix64(h[first] ^ np.uint64(seed + n)) >> shift).astype(np.int64))
        out_rows.append(rows[first])
        out_first.append(first)
        out_last.append(first + (n - 1))
    if not out_cols:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    return tuple(np.concatenate(a) for a in (out_cols, out_rows, out_first, out_last))  # type: ignore[return-value]


@lru_cache(maxsize=1)
def load_cue_phrases() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The shipped cue phrases per category (``cxnlp/data/cue_phrases.toml``), normalized."""
    import tomllib
    from importlib import resources

    tree = tomllib.loads((resources.files("cxnlp") / "data" / "cue_phrases.toml").read_text(encoding="utf-8"))
    return tuple((label, tuple(normalize(p) for p in phrases)) for label, phrases in tree.items())


@lru_cache(maxsize=1)
def load_clause_words() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The shipped clause word lists (``cxnlp/data/clause_words.toml``): boundaries, staff, then per category."""
    import tomllib
    from importlib import resources

    tree = tomllib.loads((resources.files("cxnlp") / "data" / "clause_words.toml").read_text(encoding="utf-8"))
    return tuple((role, tuple(normalize(w) for w in words if w)) for role, words in tree.items())


@dataclass
class CueIndex:
    """Cue phrases by their first character: only positions holding some phrase's first character
    (a look-up over the batch's code points) are compared with the phrases that start with it."""

    phrases: tuple[str, ...]                  # distinct phrases
    columns: np.ndarray                       # the cue columns of phrase k: columns[column_ptr[k]:column_ptr[k+1]]
    column_ptr: np.ndarray
    first_char: np.ndarray                    # bool over code points
    by_first: dict[str, list[tuple[int, str]]]

    @classmethod
    def build(cls, phrase_columns: list[tuple[str, int]]) -> "CueIndex":
        phrases = tuple(sorted({p for p, _ in phrase_columns}))
        cols_of: dict[str, list[int]] = {p: [] for p in phrases}
        for p, col in phrase_columns:
            cols_of[p].append(col)
        by_first: dict[str, list[tuple[int, str]]] = {}
        for k, p in enumerate(phrases):
            by_first.setdefault(p[0], []).append((k, p))
        first_char = np.zeros(0x110000, dtype=bool)
        first_char[[ord(ch) for ch in by_first]] = True
        return cls(phrases, np.array([c for p in phrases for c in cols_of[p]], dtype=np.int64),
                   np.concatenate([[0], np.cumsum([len(cols_of[p]) for p in phrases])]).astype(np.int64),
                   first_char, by_first)

    def find(self, batch: NormalizedBatch) -> tuple[np.ndarray, np.ndarray]:
        """(position, phrase id) of every occurrence of every phrase in the joined text."""
        text, by_first = batch.text, self.by_first
        positions, phrase_ids = [], []
        for pos in np.flatnonzero(self.first_char[batch.codepoints]).tolist():
            for k, phrase in by_first[text[pos]]:
                if text.startswith(phrase, pos):
                    positions.append(pos)
                    phrase_ids.append(k)
        return np.array(positions, dtype=np.int64), np.array(phrase_ids, dtype=np.int64)


@dataclass
class WordOccurrences:
    """Where each word n-gram of a batch sits: its row, column, span and tokens (for evidence)."""

    rows: np.ndarray
    columns: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    first_token: np.ndarray  # index into ``terms`` of the n-gram's first and last token
    last_token: np.ndarray
    terms: list[str]


@dataclass
class FeatureRows:
    """Rows of features in CSR layout (``indptr``, sorted ``indices``, ``data``), as plain arrays:
    prediction needs nothing more, and skips scipy's import and its per-matrix checks (which cost
    more than featurizing a single text); ``tocsr`` gives the scipy matrix that training uses."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def concat(cls, parts: list["FeatureRows"], n_columns: int) -> "FeatureRows":
        offsets = np.cumsum([0] + [len(p.data) for p in parts[:-1]])
        indptr = np.concatenate([[0]] + [p.indptr[1:] + off for p, off in zip(parts, offsets)]).astype(np.int64)
        return cls(indptr, np.concatenate([p.indices for p in parts]) if parts else np.zeros(0, np.int32),
                   np.concatenate([p.data for p in parts]) if parts else np.zeros(0, np.float32),
                   (len(indptr) - 1, n_columns))

    def tocsr(self) -> "sparse.csr_matrix":
        from scipy import sparse

        return sparse.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)


@dataclass
class Analysis:
    """One featurization of a batch: the TF-IDF rows and where the word n-grams were found, and the
    batch's tokens when they are what ``tokenize_batch(texts)`` gives (jieba-rs with HMM, as the ledger
    rules segment), so that the rules reuse them instead of segmenting the texts again."""

    features: FeatureRows
    words: WordOccurrences
    tokens: TokenTable | None = None


class TextFeaturizer:
    """Texts → hashed n-gram counts → TF-IDF (sublinear tf, smoothed idf) → l2-normalized blocks.

    A scikit-learn-style transformer (``fit`` learns ``idf_``; parameters in the constructor) with no
    scikit-learn inside, so a saved model predicts without importing scikit-learn.
    """

    def __init__(self, *, word_ngram_range: tuple[int, int] = (1, 2), char_ngram_range: tuple[int, int] = (1, 3),
                 n_features_log2: int = 20, sublinear_tf: bool = True, hmm: bool = True,
                 tokenizer: str = "jieba-rs", cue_phrases: bool = True, clause_features: bool = False) -> None:
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.n_features_log2 = n_features_log2
        self.sublinear_tf = sublinear_tf
        self.hmm = hmm
        self.tokenizer = tokenizer
        self.cue_phrases = cue_phrases
        self.clause_features = clause_features

    @property
    def n_features(self) -> int:
        """Columns of the two blocks together."""
        return 2 << self.n_features_log2

    # ------------------------------------------------------------ counting
    def _cue_index(self) -> "CueIndex":
        index = self.__dict__.get("_cues")
        if index is None:
            pairs = [(label, p) for label, phrases in (load_cue_phrases() if self.cue_phrases else ())
                     for p in phrases if p]
            labels = sorted({label for label, _ in pairs})
            label_cols, _, _, _ = ngram_columns(string_hashes([CUE_PREFIX + label for label in labels]),
                                                np.arange(len(labels)), (1, 1), _WORD_SEED, self.n_features_log2)
            column = dict(zip(labels, label_cols.tolist()))
            index = self.__dict__["_cues"] = CueIndex.build([(p, column[label]) for label, p in pairs])
        return index

    def _cue_counts(self, batch: NormalizedBatch) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns): one ``cue:<label>`` entry per distinct cue phrase of that label in a text."""
        index = self._cue_index()
        positions, phrase_ids = index.find(batch)
        if not len(positions):
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        n_phrases = len(index.phrases)
        rows = np.searchsorted(batch.starts, positions, side="right") - 1
        keys = np.unique(rows * n_phrases + phrase_ids)  # a phrase counts once per text
        rows, phrase_ids = keys // n_phrases, keys % n_phrases
        # each found phrase → each of its columns (a phrase listed under two labels has two)
        first, count = index.column_ptr[phrase_ids], np.diff(index.column_ptr)[phrase_ids]
        within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        return np.repeat(rows, count), index.columns[np.repeat(first, count) + within]

    def _clause_index(self) -> tuple["CueIndex", list[str], np.ndarray]:
        """The clause words as a phrase index whose 'columns' are roles, the role names, and each
        (role, staff in clause) pair's feature column (row 0: without staff, row 1: with)."""
        cached = self.__dict__.get("_clauses")
        if cached is None:
            roles = [role for role, _ in load_clause_words()]
            index = CueIndex.build([(w, k) for k, (_, words) in enumerate(load_clause_words()) for w in words])
            names = [f"{CLAUSE_PREFIX}{r}" for r in roles] + [f"{CLAUSE_PREFIX}staff+{r}" for r in roles]
            cols, _, _, _ = ngram_columns(string_hashes(names), np.arange(len(names)), (1, 1), _WORD_SEED,
                                          self.n_features_log2)
            cached = self.__dict__["_clauses"] = (index, roles, cols.reshape(2, len(roles)))
        return cached

    def _clause_counts(self, batch: NormalizedBatch) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns): per clause, one entry for each category with a word in it, marked by whether a
        staff word is in the same clause."""
        index, roles, columns = self._clause_index()
        positions, phrase_ids = index.find(batch)
        empty = np.zeros(0, dtype=np.int64)
        if not len(positions):
            return empty, empty
        role = index.columns[index.column_ptr[phrase_ids]]  # each word has one role
        boundary = np.isin(batch.codepoints, codepoints(_CLAUSE_CHARS))
        is_boundary_word = role == roles.index("boundaries")
        boundary[positions[is_boundary_word]] = True
        clause = np.cumsum(boundary)[positions]
        staff = np.zeros(int(clause.max()) + 1, dtype=bool)
        staff[clause[role == roles.index("staff")]] = True
        keep = ~is_boundary_word & (role != roles.index("staff"))
        if not keep.any():
            return empty, empty
        pos, clause, role = positions[keep], clause[keep], role[keep]
        _, first = np.unique(clause * len(roles) + role, return_index=True)  # a category counts once per clause
        rows = np.searchsorted(batch.starts, pos[first], side="right") - 1
        return rows, columns[staff[clause[first]].astype(np.int64), role[first]]

    def _char_counts(self, batch: NormalizedBatch, spans: list[tuple[int, int, str]]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the character n-grams of each masked text with white space removed."""
        text = masked_text(batch, spans) if spans else batch.text
        cps = codepoints(text.replace(" ", ""))
        separator = cps == 10
        rows = np.cumsum(separator)
        keep = ~separator
        cols, rows, _, _ = ngram_columns(cps[keep].astype(np.uint64), rows[keep], tuple(self.char_ngram_range),
                                         _CHAR_SEED, self.n_features_log2)
        return rows, cols + (1 << self.n_features_log2)

    def _word_occurrences(self, tokens: TokenTable) -> WordOccurrences:
        cols, rows, first, last = ngram_columns(string_hashes(tokens.terms), tokens.rows,
                                                tuple(self.word_ngram_range), _WORD_SEED, self.n_features_log2)
        order = np.argsort(rows, kind="stable")
        return WordOccurrences(rows[order], cols[order], tokens.starts[first[order]], tokens.ends[last[order]],
                               first[order], last[order], tokens.terms)

    def count(self, texts: Sequence[str]) -> tuple[FeatureRows, WordOccurrences]:
        """Raw n-gram counts of texts (rows) over both blocks (columns), and the word occurrences."""
        counts, words, _ = self._count(texts)
        return counts, words

    def _count(self, texts: Sequence[str]) -> tuple[FeatureRows, WordOccurrences, TokenTable]:
        batch = normalize_batch(texts)
        spans = mask_spans(batch)
        tokens = tokenize_batch(texts, hmm=self.hmm, backend=self.tokenizer, batch=batch, spans=spans)
        words = self._word_occurrences(tokens)
        cue_rows, cue_cols = self._cue_counts(batch)
        if self.clause_features:
            clause_rows, clause_cols = self._clause_counts(batch)
            cue_rows, cue_cols = np.concatenate([cue_rows, clause_rows]), np.concatenate([cue_cols, clause_cols])
        char_rows, char_cols = self._char_counts(batch, spans)
        n_columns = np.int64(self.n_features)
        keys, counts = np.unique(np.concatenate([words.rows * n_columns + words.columns, cue_rows * n_columns + cue_cols,
                                                 char_rows * n_columns + char_cols]), return_counts=True)
        indptr = np.searchsorted(keys, np.arange(len(texts) + 1, dtype=np.int64) * n_columns)
        return (FeatureRows(indptr, (keys % n_columns).astype(np.int32), counts.astype(np.float32),
                            (len(texts), self.n_features)), words, tokens)

    # ------------------------------------------------------------- tf-idf
    def fit(self, texts: Sequence[str], y: object = None) -> "TextFeaturizer":
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Sequence[str], y: object = None, *, chunk: int = 4096) -> "sparse.csr_matrix":
        """Learn ``idf_`` from texts and return their TF-IDF rows."""
        texts = list(texts)
        counts = FeatureRows.concat([self.count(texts[i:i + chunk])[0] for i in range(0, len(texts), chunk)],
                                    self.n_features)
        df = np.bincount(counts.indices, minlength=self.n_features)
        self.idf_ = (np.log((1.0 + len(texts)) / (1.0 + df)) + 1.0).astype(np.float32)
        return self._tfidf(counts).tocsr()

    def transform(self, texts: Sequence[str], *, chunk: int = 4096) -> "sparse.csr_matrix":
        """TF-IDF rows as a scipy matrix (for training and inspection; prediction uses ``analyze``)."""
        texts = list(texts)
        return FeatureRows.concat([self.analyze(texts[i:i + chunk]).features for i in range(0, len(texts), chunk)],
                                  self.n_features).tocsr()

    def analyze(self, texts: Sequence[str]) -> Analysis:
        """TF-IDF rows of a batch, with the word occurrences that evidence is drawn from."""
        counts, words, tokens = self._count(texts)
        as_rules_segment = self.hmm and self.tokenizer == "jieba-rs"  # tokenize_batch's defaults
        return Analysis(self._tfidf(counts), words, tokens if as_rules_segment else None)

    def _tfidf(self, counts: FeatureRows) -> FeatureRows:
        data = counts.data
        if self.sublinear_tf:
            data = np.log(data) + np.float32(1.0)
        data *= self.idf_[counts.indices]
        n_rows = counts.shape[0]
        rows = np.repeat(np.arange(n_rows), np.diff(counts.indptr))
        block = rows * 2 + (counts.indices >> self.n_features_log2)
        norms = np.sqrt(np.bincount(block, weights=np.square(data, dtype=np.float64), minlength=2 * n_rows))
        norms[norms == 0] = 1.0
        data /= norms[block].astype(np.float32)
        return FeatureRows(counts.indptr, counts.indices, data, counts.shape)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_cues", "_clauses")}
