"""CompiledClassifier: what a trained FeedbackClassifier needs at prediction time, and nothing more.

Training uses scikit-learn; prediction does not: the hashed TF-IDF features are recomputed here with
numpy and MurmurHash3 (``mmh3`` gives the same hashes as scikit-learn's HashingVectorizer), and the
heads are sparse weight matrices. Loading a model therefore skips scikit-learn's import (over a
second), and one process serves thousands of texts a second. ``FeedbackClassifier`` builds one of
these at the end of ``fit`` and predicts through it, so there is one prediction path.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain

import mmh3
import numpy as np
from scipy import sparse

from cxnlp.analyzers import CharAnalyzer, WordAnalyzer, word_ngrams
from cxnlp.taxonomy import SENTIMENTS
from cxnlp.text import Token, mask_personal_data, normalize

_INT32_MIN = -(2 ** 31)


def hashed_columns(hashes: np.ndarray, n_features: int) -> np.ndarray:
    """Columns for signed 32-bit MurmurHash3 values, exactly as scikit-learn's HashingVectorizer."""
    h = hashes.astype(np.int64)
    cols = np.abs(h) % n_features
    return np.where(h == _INT32_MIN, (2 ** 31 - 1 - (n_features - 1)) % n_features, cols)


@dataclass
class HashedTfidfBlock:
    """One feature block: analyzer → hashed counts → (1 + log) tf × idf → l2-normalized rows."""

    analyzer: WordAnalyzer | CharAnalyzer
    n_features: int
    idf: np.ndarray  # float32, one per column
    sublinear_tf: bool

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return self.transform_features([self.analyzer(t) for t in texts])

    def transform_features(self, feats: list[list[str]]) -> sparse.csr_matrix:
        """Rows from each text's feature strings (the analyzer's output)."""
        n_docs = len(feats)
        indptr = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, feats), dtype=np.int64, count=n_docs), out=indptr[1:])
        hashes = np.fromiter(chain.from_iterable(map(mmh3.hash, f) for f in feats), dtype=np.int64,
                             count=int(indptr[-1]))
        counts = sparse.csr_matrix((np.ones(len(hashes), dtype=np.float32), hashed_columns(hashes, self.n_features),
                                    indptr), shape=(n_docs, self.n_features))
        counts.sum_duplicates()  # sorts each row's columns and adds up repeats, in compiled code
        data = counts.data
        if self.sublinear_tf:
            data = np.log(data) + np.float32(1.0)
        data *= self.idf[counts.indices]
        rows = np.repeat(np.arange(n_docs), np.diff(counts.indptr))
        norms = np.sqrt(np.bincount(rows, weights=np.square(data, dtype=np.float64), minlength=n_docs))
        norms[norms == 0] = 1.0
        data /= norms[rows].astype(np.float32)
        return sparse.csr_matrix((data, counts.indices, counts.indptr), shape=(n_docs, self.n_features))


@dataclass
class Scores:
    """What one featurization of a batch yields: probabilities, features and tokens (for evidence)."""

    category: np.ndarray
    sentiment: np.ndarray
    features: sparse.csr_matrix
    tokens: list[list[Token]]


@dataclass
class CompiledClassifier:
    """Prediction-time model: two feature blocks, per-label calibrated linear heads with thresholds,
    and the sentiment heads. Attributes mirror FeedbackClassifier's fitted ones."""

    word: HashedTfidfBlock
    char: HashedTfidfBlock
    categories_: tuple[str, ...]
    thresholds_: np.ndarray
    calibrators_: np.ndarray
    category_coef_: sparse.csr_matrix
    category_intercept_: np.ndarray
    sentiment_coef_: sparse.csr_matrix
    sentiment_intercept_: np.ndarray
    word_ngram_range: tuple[int, int]
    min_confidence: float
    evidence_terms: int
    sentiments_: tuple[str, ...] = SENTIMENTS
    # Analysts' corrections (from the ledger): a text they corrected is classified as they said.
    corrections: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    _word_coef: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_word_coef"] = None  # a dense cache, rebuilt on first use; never saved
        return state

    def _analyze(self, texts: Sequence[str]) -> tuple[sparse.csr_matrix, list[list[Token]]]:
        word = self.word.analyzer
        tokens = [word.tokens(t) for t in texts]
        X = sparse.hstack([self.word.transform_features([word.features(t, k) for t, k in zip(texts, tokens)]),
                           self.char.transform(texts)], format="csr")
        return X, tokens

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return self._analyze(texts)[0]

    def correction_for(self, text: str) -> tuple[tuple[str, ...], str] | None:
        """The analyst-corrected (categories, sentiment) of this exact text, if any."""
        corrections = getattr(self, "corrections", None)  # absent in models saved before corrections existed
        return corrections.get(correction_key(text)) if corrections else None

    def word_coef(self) -> np.ndarray:
        """Category weights of the word block as a dense array (for evidence look-ups), built once."""
        if self._word_coef is None:
            self._word_coef = self.category_coef_[: self.word.n_features].toarray()
        return self._word_coef

    def category_proba(self, features: sparse.csr_matrix) -> np.ndarray:
        scores = (features @ self.category_coef_).toarray().astype(np.float64) + self.category_intercept_
        a, b = self.calibrators_[:, 0], self.calibrators_[:, 1]
        return 1.0 / (1.0 + np.exp(-(scores * a + b)))

    def sentiment_proba(self, features: sparse.csr_matrix) -> np.ndarray:
        """Columns in ``SENTIMENTS`` order: negative, neutral, positive."""
        z = (features @ self.sentiment_coef_).toarray().astype(np.float64) + self.sentiment_intercept_
        return sentiment_from_scores(z)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.category_proba(self.transform(texts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return (self.predict_proba(texts) >= self.thresholds_).astype(int)

    def predict_sentiment_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.sentiment_proba(self.transform(texts))

    def score_texts(self, texts: Sequence[str]) -> Scores:
        """Category and sentiment probabilities from one featurization, plus what ``explain`` needs."""
        features, tokens = self._analyze(texts)
        return Scores(self.category_proba(features), self.sentiment_proba(features), features, tokens)

    def confidence(self, category_proba: np.ndarray, sentiment_proba: np.ndarray) -> np.ndarray:
        """0.5 at a decision threshold, 1.0 at certainty; the weakest decision of a text counts."""
        t = self.thresholds_
        distance = np.where(category_proba >= t, (category_proba - t) / np.maximum(1 - t, 1e-9),
                            (t - category_proba) / np.maximum(t, 1e-9))
        category_conf = 0.5 + 0.5 * np.clip(distance, 0, 1)
        return np.minimum(category_conf.min(axis=1), sentiment_proba.max(axis=1))

    def explain(self, text: str, labels: Sequence[str], features: sparse.csr_matrix | None = None,
                tokens: list[Token] | None = None, row: int = 0) -> dict[str, list[Token]]:
        """For each label, the words of ``text`` that pushed its score up most, with their spans.

        A word n-gram's push is its TF-IDF value times the label's weight; the text's own n-grams are
        hashed again to find their columns, so no vocabulary is needed.
        """
        if not labels:
            return {}
        X = features if features is not None else self.transform([text])
        lo, hi = X.indptr[row], X.indptr[row + 1]
        indices, data = X.indices[lo:hi], X.data[lo:hi]  # sorted column ids of this row and their values
        spans_of: dict[str, list[tuple[int, int]]] = {}
        if tokens is None:
            tokens = self.word.analyzer.tokens(text)
        for term, start, end in word_ngrams(tokens, tuple(self.word_ngram_range)):
            spans_of.setdefault(term, []).append((start, end))
        terms = list(spans_of)
        columns = hashed_columns(np.fromiter(map(mmh3.hash, terms), dtype=np.int64, count=len(terms)),
                                 self.word.n_features)
        pos = np.minimum(np.searchsorted(indices, columns), max(len(indices) - 1, 0))
        weights = np.where(indices[pos] == columns, data[pos], 0.0) if len(indices) else np.zeros(len(columns))
        coef = self.word_coef()[columns]
        out: dict[str, list[Token]] = {}
        for label in labels:
            contrib = weights * coef[:, self.categories_.index(label)]
            found: set[Token] = set()
            for k in np.argsort(-contrib)[: self.evidence_terms]:
                if contrib[k] <= 0:
                    break
                found.update(Token(text[a:b], a, b) for a, b in spans_of[terms[k]])
            out[label] = sorted(found, key=lambda t: (t.start, t.end))
        return out


def correction_key(text: str) -> str:
    """How a corrected text is recognized again: personal data masked (as the ledger stores it),
    normalized, white space collapsed."""
    return " ".join(normalize(mask_personal_data(text)).split())


def sentiment_from_scores(z: np.ndarray) -> np.ndarray:
    """Heads' raw scores (polarity-word, polarity-char, neutral) → P(negative, neutral, positive)."""
    sig = 1.0 / (1.0 + np.exp(-z))
    p_pos = (sig[:, 0] + sig[:, 1]) / 2
    q = sig[:, 2]
    return np.column_stack([(1 - q) * (1 - p_pos), q, (1 - q) * p_pos])
