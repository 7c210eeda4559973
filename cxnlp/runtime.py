"""CompiledClassifier: what a trained FeedbackClassifier needs at prediction time, and nothing more.

Training uses scikit-learn; prediction does not: features come from the same ``TextFeaturizer`` that
training fitted (numpy only), and the heads are one dense weight matrix. Loading a model therefore
skips the imports of scikit-learn (over a second) and scipy. ``FeedbackClassifier`` builds one of these at the end of
``fit`` and predicts through it, so there is one prediction path.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from cxnlp.features import Analysis, FeatureRows, TextFeaturizer, WordOccurrences
from cxnlp.taxonomy import SENTIMENTS
from cxnlp.text import PLACEHOLDERS, Token, mask_personal_data, normalize

_PLACEHOLDER_TERMS = frozenset(PLACEHOLDERS.values())
# The heads' weights are kept in half precision: several category heads fit in half the memory and disk, and
# a text's scores move by about 1e-3 (summed over its few hundred features), far below any decision margin.
WEIGHT_DTYPE = np.float16

if TYPE_CHECKING:
    from scipy import sparse


@dataclass
class Scores:
    """What one featurization of a batch yields: probabilities, and the analysis evidence is drawn from."""

    category: np.ndarray
    sentiment: np.ndarray
    analysis: Analysis
    thresholds: np.ndarray  # each text's cut per label (``decision_thresholds``)
    domain: np.ndarray | None = None  # P(service feedback) per text, from the domain head (None without one)


@dataclass
class CompiledClassifier:
    """Prediction-time model: the fitted featurizer, per-label calibrated linear heads with thresholds,
    and the sentiment heads. Attributes mirror FeedbackClassifier's fitted ones.

    The heads' weights are dense rows for the columns the model kept (``columns_``), then a row of
    zeros for every other column: scoring gathers one weight row per feature, in numpy alone.
    """

    featurizer: TextFeaturizer
    categories_: tuple[str, ...]
    thresholds_: np.ndarray           # per label; or two rows, service feedback then other text (decision_thresholds)
    calibrators_: np.ndarray
    columns_: np.ndarray              # sorted feature columns that carry weights (int32)
    # (len(columns_) + 1) × (categories…, polarity-word, polarity-char, neutral[, domain][, other heads' categories…]
    # [, other-text polarity plain, other-text polarity char])
    coef_: np.ndarray
    # per row of coef_: the naive-Bayes log-count ratio of a character column (0 elsewhere), float32
    nb_ratio_: np.ndarray
    category_intercept_: np.ndarray   # one per head and category, head-major
    sentiment_intercept_: np.ndarray
    min_confidence: float
    evidence_terms: int
    # intercept of the domain head (service feedback vs reviews), when the labels are stacked with it
    domain_intercept_: np.ndarray | None = None
    # the polarity pair for text the domain head does not read as service feedback: its two intercepts, and the
    # naive-Bayes log-count ratio per row of coef_ of its character head (None: one polarity pair for all text)
    other_polarity_intercept_: np.ndarray | None = None
    other_nb_ratio_: np.ndarray | None = None
    sentiments_: tuple[str, ...] = SENTIMENTS
    # Analysts' corrections (from the ledger): a text they corrected is classified as they said.
    corrections: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    _row_of: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_row_of"] = None  # rebuilt on first use; never saved
        return state

    def row_of(self) -> np.ndarray:
        """The row of ``coef_`` for every feature column (the zero row for columns without weights),
        built once per process (``LoadedModel.warm_up`` builds it before workers fork, so they share it)."""
        if self._row_of is None:
            n_kept = len(self.columns_)
            row_of = np.full(self.featurizer.n_features, n_kept, dtype=np.int32)
            row_of[self.columns_] = np.arange(n_kept, dtype=np.int32)
            self._row_of = row_of
        return self._row_of

    def transform(self, texts: Sequence[str]) -> "sparse.csr_matrix":
        """TF-IDF rows as a scipy matrix (for inspection and tests; prediction does not need scipy)."""
        return self.featurizer.transform(texts)

    def raw_scores(self, features: FeatureRows) -> tuple[np.ndarray, np.ndarray]:
        """Linear scores of the category heads (every head's categories, then the domain head's score when
        there is one) and of the sentiment heads, intercepts included (``sentiment_from_scores`` reads them:
        polarity-word, polarity-char, neutral, then, with an other-text polarity pair, its two scores and the
        domain head's score)."""
        rows = self.row_of()[features.indices]
        z = row_sums(self.coef_[rows].astype(np.float32) * features.data[:, None], features.indptr).astype(np.float64)
        n_cat = len(self.categories_)
        z[:, n_cat + 1] = nb_scores(features.indptr, rows, self.nb_ratio_, self.coef_[:, n_cat + 1])
        others = n_cat + 3 + (self.domain_intercept_ is not None)  # where the other heads' columns begin
        n_others = len(self.category_intercept_) - n_cat
        category = np.column_stack([z[:, :n_cat], z[:, others:others + n_others]]) + self.category_intercept_
        sentiment = z[:, n_cat:n_cat + 3] + self.sentiment_intercept_
        if self.domain_intercept_ is not None:  # the domain head's score rides along for the calibration
            domain = z[:, n_cat + 3] + self.domain_intercept_[0]
            category = np.column_stack([category, domain])
            if self.other_polarity_intercept_ is not None:
                other = z[:, -2:].copy()
                other[:, 1] = nb_scores(features.indptr, rows, self.other_nb_ratio_, self.coef_[:, -1])
                sentiment = np.column_stack([sentiment, other + self.other_polarity_intercept_, domain])
        return category, sentiment

    def category_proba(self, features: FeatureRows) -> np.ndarray:
        return self._calibrate(self.raw_scores(features)[0])

    def thresholds_for(self, category_scores: np.ndarray) -> np.ndarray:
        """Each text's threshold per label, from its raw category scores (``raw_scores``)."""
        if self.thresholds_.ndim == 2 and self.domain_intercept_ is None:
            raise ValueError("two rows of thresholds need the domain head")
        return decision_thresholds(self.thresholds_, category_scores)

    def _calibrate(self, scores: np.ndarray) -> np.ndarray:
        return calibrated(scores, self.calibrators_, len(self.category_intercept_))

    def sentiment_proba(self, features: FeatureRows) -> np.ndarray:
        """Columns in ``SENTIMENTS`` order: negative, neutral, positive."""
        return sentiment_from_scores(self.raw_scores(features)[1])

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.category_proba(self.featurizer.analyze(texts).features)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        scores = self.score_texts(texts)
        return (scores.category >= scores.thresholds).astype(int)

    def predict_sentiment_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.sentiment_proba(self.featurizer.analyze(texts).features)

    def score_texts(self, texts: Sequence[str]) -> Scores:
        """Category and sentiment probabilities from one featurization, plus what ``explain`` needs."""
        analysis = self.featurizer.analyze(texts)
        category, sentiment = self.raw_scores(analysis.features)
        return Scores(self._calibrate(category), sentiment_from_scores(sentiment), analysis, self.thresholds_for(category),
                      self.domain_proba(category))

    def domain_proba(self, category_scores: np.ndarray) -> np.ndarray | None:
        """P(service feedback) per text from its raw category scores (``raw_scores``), or None without a domain head."""
        if self.domain_intercept_ is None:
            return None
        return 1.0 / (1.0 + np.exp(-category_scores[:, -1]))

    def correction_for(self, text: str) -> tuple[tuple[str, ...], str] | None:
        """The analyst-corrected (categories, sentiment) of this exact text, if any."""
        corrections = getattr(self, "corrections", None)  # absent in models saved before corrections existed
        return corrections.get(correction_key(text)) if corrections else None

    def confidence(self, category_proba: np.ndarray, sentiment_proba: np.ndarray,
                   thresholds: np.ndarray | None = None) -> np.ndarray:
        """0.5 at a decision threshold, 1.0 at certainty; the weakest decision of a text counts.
        ``thresholds``: each text's cuts (``Scores.thresholds``); needed when the model has two rows of them."""
        if thresholds is None and self.thresholds_.ndim == 2:
            raise ValueError("a model with per-domain thresholds needs each text's thresholds")
        t = self.thresholds_ if thresholds is None else thresholds
        distance = np.where(category_proba >= t, (category_proba - t) / np.maximum(1 - t, 1e-9),
                            (t - category_proba) / np.maximum(t, 1e-9))
        category_conf = 0.5 + 0.5 * np.clip(distance, 0, 1)
        return np.minimum(category_conf.min(axis=1), sentiment_proba.max(axis=1))

    def explain(self, text: str, labels: Sequence[str]) -> dict[str, list[Token]]:
        """For each label, the words of ``text`` that pushed its score up most, with their spans."""
        analysis = self.featurizer.analyze([text])
        return self.evidence([text], [labels], analysis, self.domain_proba(self.raw_scores(analysis.features)[0]))[0]

    def label_weights(self, rows: np.ndarray, domain: np.ndarray | None) -> np.ndarray:
        """How much one unit of each of the given ``coef_`` rows' features moves each label's calibrated score
        (entries × labels): the heads' weights combined as the calibration combines their scores, at each
        entry's P(service feedback) ``domain`` (per entry; None: the model has no domain head)."""
        n_cat, n_scores = len(self.categories_), len(self.category_intercept_)
        others = n_cat + 3 + (self.domain_intercept_ is not None)
        columns = np.r_[0:n_cat, others:others + n_scores - n_cat]
        W = self.coef_[rows][:, columns].astype(np.float32)
        cal = self.calibrators_
        if cal.shape[1] == 2:  # Platt scaling of each label's own score: its weights rank the same
            return W
        weights = W @ cal[:, :n_scores].T.astype(np.float32)
        if cal.shape[1] == 2 * n_scores + 2 and domain is not None:  # the stack's score × domain terms
            weights += domain[:, None].astype(np.float32) * (W @ cal[:, n_scores + 1:2 * n_scores + 1].T.astype(np.float32))
        return weights

    def evidence(self, texts: Sequence[str], labels: Sequence[Sequence[str]], analysis: Analysis,
                 domain: np.ndarray | None = None) -> list[dict[str, list[Token]]]:
        """Per text of an analyzed batch, for each of its ``labels``, the word n-grams that pushed the
        label's score up most (the top ``evidence_terms``, each wherever it occurs), with their spans.

        A word n-gram's push is its TF-IDF value times the label's weight (``label_weights``: what the feature
        does to the calibrated decision, at the text's ``domain`` probability). The analysis says where
        each n-gram was found, so no vocabulary is needed. Only n-grams of content words qualify: none of
        their tokens is a stop word (``data/stopwords.txt``), punctuation, a number or a placeholder of
        masked data, so what an analyst reads is what carried the decision.
        """
        X, words = analysis.features, analysis.words
        content = content_ngrams(words)
        out: list[dict[str, list[Token]]] = [{label: [] for label in ls} for ls in labels]
        index = {label: j for j, label in enumerate(self.categories_)}
        asked = np.zeros((len(texts), len(self.categories_)), dtype=bool)
        for i, ls in enumerate(labels):
            asked[i, [index[label] for label in ls]] = True
        occ = np.flatnonzero(asked.any(axis=1)[words.rows] & content)
        if not len(occ):
            return out
        rows, cols = words.rows[occ], words.columns[occ]
        # one entry per (row, n-gram): its TF-IDF value (found by one search) times each label's weight
        n_cols = np.int64(X.shape[1])
        keys, first, inverse = np.unique(rows * n_cols + cols, return_index=True, return_inverse=True)
        entry_keys = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr)) * n_cols + X.indices
        values = X.data[np.searchsorted(entry_keys, keys)]
        entry_rows = rows[first]
        push = values[:, None] * self.label_weights(self.row_of()[cols[first]],
                                                    None if domain is None else domain[entry_rows])
        # the strongest few n-grams of each (row, label), among those that push it up
        u, j = np.nonzero(asked[entry_rows] & (push > 0))
        order = np.lexsort((-push[u, j], j, entry_rows[u]))
        u, j = u[order], j[order]
        group = entry_rows[u] * len(self.categories_) + j
        rank = np.arange(len(group)) - np.searchsorted(group, group)
        top = np.zeros(push.shape, dtype=bool)
        top[u[rank < self.evidence_terms], j[rank < self.evidence_terms]] = True
        # every occurrence of a top n-gram, once per (row, label, span), in that order
        k, j = np.nonzero(top[inverse])
        r, s, e = rows[k], words.starts[occ[k]], words.ends[occ[k]]
        order = np.lexsort((e, s, j, r))
        r, j, s, e = r[order], j[order], s[order], e[order]
        new = np.ones(len(r), dtype=bool)
        new[1:] = (np.diff(r) != 0) | (np.diff(j) != 0) | (np.diff(s) != 0) | (np.diff(e) != 0)
        for row, label, start, end in zip(r[new].tolist(), j[new].tolist(), s[new].tolist(), e[new].tolist()):
            spans = out[row][self.categories_[label]]
            term = texts[row][start:end]
            # two n-grams may share a hashed column: the terms shown stay within the limit all the same
            if len({t.term for t in spans} | {term}) <= self.evidence_terms:
                spans.append(Token(term, start, end))
        return out


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """The shipped stop list (``cxnlp/data/stopwords.txt``): words that never serve as evidence."""
    from importlib import resources

    lines = (resources.files("cxnlp") / "data" / "stopwords.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(normalize(w.strip()) for w in lines if w.strip() and not w.startswith("#"))


@lru_cache(maxsize=65536)
def is_content_term(term: str) -> bool:
    """A token that can be evidence: not a stop word or placeholder, holds a letter and no digit."""
    return (term not in stop_words() and term not in _PLACEHOLDER_TERMS and any(ch.isalpha() for ch in term)
            and not any(ch.isdigit() for ch in term))


def content_ngrams(words: WordOccurrences) -> np.ndarray:
    """For each word n-gram occurrence: True when every one of its tokens is a content term."""
    if not len(words.rows):
        return np.zeros(0, dtype=bool)
    bad = np.fromiter((not is_content_term(t) for t in words.terms), dtype=np.int64, count=len(words.terms))
    before = np.concatenate([[0], np.cumsum(bad)])
    return before[words.last_token + 1] == before[words.first_token]


def correction_key(text: str) -> str:
    """How a corrected text is recognized again: personal data masked (as the ledger stores it),
    normalized, white space collapsed."""
    return " ".join(normalize(mask_personal_data(text)).split())


def row_sums(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Sum of each CSR row's entries of ``values`` (one entry per stored feature; rows may be empty)."""
    out = np.zeros((len(indptr) - 1,) + values.shape[1:], dtype=values.dtype)
    starts = indptr[:-1]
    filled = starts < indptr[1:]
    if filled.any():
        out[filled] = np.add.reduceat(values, starts[filled], axis=0)
    return out


def nb_scores(indptr: np.ndarray, rows: np.ndarray, ratio: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Scores of the naive-Bayes character head (NB-LR, Wang & Manning 2012): every character n-gram
    present counts once, scaled by its log-count ratio, and each text's vector is l2-normalized.

    ``rows`` gives each stored feature's row in ``ratio`` / ``weights`` (ratio 0 for word columns).
    """
    value = ratio[rows].astype(np.float64)
    norms = np.sqrt(row_sums(value * value, indptr))
    norms[norms == 0] = 1.0
    return row_sums(value * weights[rows], indptr) / norms


def stack_inputs(scores: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """What the stacked calibration reads: every label's score, how much the text reads like service
    feedback (the domain head's probability), and each score times that probability, so that a label's
    threshold can differ between service feedback and reviews without the text saying which it is."""
    p = 1.0 / (1.0 + np.exp(-domain))
    return np.column_stack([scores, p, scores * p[:, None]])


def decision_thresholds(thresholds: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each text's threshold per label (texts × labels), from a model's ``thresholds_`` and the texts' raw
    category scores (``CompiledClassifier.raw_scores``: the domain head's score last, when there is one).

    ``thresholds`` is one row (every text alike) or two: the cuts for text the domain head reads as service
    feedback (its score ≥ 0, i.e. probability ≥ 0.5), then for other text such as product reviews."""
    if thresholds.ndim == 1:
        return np.broadcast_to(thresholds, (len(scores), len(thresholds)))
    return np.where(read_as_service(scores)[:, None], thresholds[0], thresholds[1])


def read_as_service(scores: np.ndarray) -> np.ndarray:
    """Which texts the domain head reads as service feedback, from raw category scores whose last column is
    its score (≥ 0, i.e. probability ≥ 0.5): the side of ``decision_thresholds`` each text is cut on."""
    return scores[:, -1] >= 0


def calibrated(scores: np.ndarray, calibrators: np.ndarray, n_scores: int) -> np.ndarray:
    """Category probabilities from the heads' raw scores (texts × ``n_scores`` category scores, every head's
    labels head-major, then the domain head's score when there is one).

    ``calibrators`` has a row per label: (a, b) for Platt scaling of the label's own score (one head); or,
    when labels are stacked, one weight per input of the stack (every head's score of every label, and with
    a domain head ``stack_inputs``) and then the intercept, so that evidence of one label can move another.
    """
    n_cat, width = calibrators.shape
    if width == 2 * n_scores + 2:
        inputs = stack_inputs(scores[:, :n_scores], scores[:, n_scores])
    elif width == n_scores + 1:
        inputs = scores[:, :n_scores]
    else:
        inputs = None
    if inputs is not None:
        z = inputs @ calibrators[:, :-1].T + calibrators[:, -1]
    else:
        z = scores[:, :n_cat] * calibrators[:, 0] + calibrators[:, 1]
    return 1.0 / (1.0 + np.exp(-z))


def sentiment_from_scores(z: np.ndarray) -> np.ndarray:
    """Heads' raw scores → P(negative, neutral, positive). Columns: polarity-word, polarity-char, neutral; with
    an other-text polarity pair also its two scores and the domain head's score, and then P(positive) mixes the
    two pairs by the domain head's P(service feedback) d: d · (first pair) + (1 − d) · (other-text pair)."""
    sig = 1.0 / (1.0 + np.exp(-z))
    p_pos = (sig[:, 0] + sig[:, 1]) / 2
    if z.shape[1] == 6:
        p_pos = sig[:, 5] * p_pos + (1 - sig[:, 5]) * (sig[:, 3] + sig[:, 4]) / 2
    q = sig[:, 2]
    return np.column_stack([(1 - q) * (1 - p_pos), q, (1 - q) * p_pos])
