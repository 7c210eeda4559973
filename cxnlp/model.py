"""FeedbackClassifier: multi-label service categories plus three-way sentiment, in one estimator.

Categories are one logistic regression per label on shared TF-IDF features. Each label's raw scores
are calibrated (Platt scaling on out-of-fold decision values) and get their own decision threshold,
the one that maximizes out-of-fold F1; the same cross-validation yields the model card's metrics.
Rows may lack category labels (texts labeled only for sentiment) or sentiment: each head trains on
the rows that carry its labels.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from cxnlp.errors import ConfigError, DataError
from cxnlp.features import make_features
from cxnlp.taxonomy import SENTIMENTS
from cxnlp.text import Token, tokenize_spans


class FeedbackClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label category classifier with per-label thresholds, and a sentiment classifier.

    Parameters mirror the ``[model]`` table of a training recipe (``training/default.toml``).
    """

    def __init__(
        self,
        *,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] = (1, 3),
        min_df: int = 2,
        max_features: int | None = None,
        sublinear_tf: bool = True,
        hmm: bool = True,
        category_C: float = 4.0,
        sentiment_C: float = 4.0,
        class_weight: str | None = "balanced",
        cv_folds: int = 5,
        min_confidence: float = 0.65,
        evidence_terms: int = 3,
        random_state: int = 0,
    ) -> None:
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.hmm = hmm
        self.category_C = category_C
        self.sentiment_C = sentiment_C
        self.class_weight = class_weight
        self.cv_folds = cv_folds
        self.min_confidence = min_confidence
        self.evidence_terms = evidence_terms
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def _check_params(self) -> None:
        for name in ("category_C", "sentiment_C"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not (isinstance(self.cv_folds, int) and self.cv_folds >= 2):
            raise ConfigError(f"cv_folds must be an integer >= 2, got {self.cv_folds!r}")
        if self.class_weight not in (None, "balanced"):
            raise ConfigError(f"class_weight must be 'balanced' or None, got {self.class_weight!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must be within 0..1, got {self.min_confidence!r}")
        for name in ("word_ngram_range", "char_ngram_range"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise ConfigError(f"{name} must be (min, max) with 1 <= min <= max, got {getattr(self, name)!r}")

    def fit(
        self,
        X: Sequence[str],
        categories: Sequence[Sequence[str] | None],
        sentiments: Sequence[str | None],
        *,
        sample_weight: Sequence[float] | None = None,
        labels: Sequence[str] | None = None,
    ) -> "FeedbackClassifier":
        """Learn features, per-label classifiers, calibrators, thresholds and the sentiment head.

        ``categories[i]`` is None when row i carries no category labels; ``sentiments[i]`` likewise.
        ``labels`` fixes the category set and its order (default: the labels seen, sorted).
        """
        self._check_params()
        texts = list(X)
        if not (len(texts) == len(categories) == len(sentiments)):
            raise DataError("texts, categories and sentiments must have the same length")
        weight = np.ones(len(texts)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        cat_rows = np.array([c is not None for c in categories])
        sent_rows = np.array([s is not None for s in sentiments])
        if cat_rows.sum() < self.cv_folds or sent_rows.sum() < self.cv_folds:
            raise DataError("too few labeled rows to train and cross-validate")
        seen = sorted({label for c in categories if c is not None for label in c})
        self.categories_ = tuple(labels) if labels is not None else tuple(seen)
        self.sentiments_ = SENTIMENTS

        self.features_ = make_features(
            word_ngram_range=self.word_ngram_range, char_ngram_range=self.char_ngram_range,
            min_df=self.min_df, max_features=self.max_features, sublinear_tf=self.sublinear_tf, hmm=self.hmm,
        )
        features = self.features_.fit_transform(texts).tocsr()
        self.n_word_features_ = len(self.features_.transformer_list[0][1].vocabulary_)

        Xc, wc = features[cat_rows], weight[cat_rows]
        Y = np.array([[label in c for label in self.categories_] for c in categories if c is not None], dtype=int)
        self._fit_categories(Xc, Y, wc)
        Xs, ws = features[sent_rows], weight[sent_rows]
        ys = np.array([s for s in sentiments if s is not None])
        self._fit_sentiment(Xs, ys, ws)
        return self

    def _linear(self, C: float) -> LogisticRegression:
        return LogisticRegression(C=C, class_weight=self.class_weight, max_iter=2000, solver="liblinear")

    def _fit_categories(self, X: sparse.csr_matrix, Y: np.ndarray, weight: np.ndarray) -> None:
        estimators, calibrators, thresholds, report = [], [], [], {}
        for j, label in enumerate(self.categories_):
            y = Y[:, j]
            if y.sum() < 2 or y.sum() > len(y) - 2:
                raise DataError(f"category {label!r} needs at least 2 positive and 2 negative examples")
            oof = np.zeros(len(y))
            folds = StratifiedKFold(n_splits=min(self.cv_folds, int(y.sum())), shuffle=True,
                                    random_state=self.random_state)
            for train, test in folds.split(X, y):
                est = self._linear(self.category_C).fit(X[train], y[train], sample_weight=weight[train])
                oof[test] = est.decision_function(X[test])
            calibrator = LogisticRegression(C=1e4).fit(oof.reshape(-1, 1), y)
            proba = calibrator.predict_proba(oof.reshape(-1, 1))[:, 1]
            threshold = _best_f1_threshold(proba, y)
            pred = proba >= threshold
            p, r, f, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
            report[label] = {"precision": round(float(p), 4), "recall": round(float(r), 4),
                             "f1": round(float(f), 4), "support": int(y.sum()), "threshold": round(threshold, 4)}
            estimators.append(self._linear(self.category_C).fit(X, y, sample_weight=weight))
            calibrators.append((float(calibrator.coef_[0, 0]), float(calibrator.intercept_[0])))
            thresholds.append(threshold)
        self.category_estimators_ = estimators
        self.calibrators_ = np.array(calibrators)
        self.thresholds_ = np.array(thresholds)
        f1s = [v["f1"] for v in report.values()]
        self.cv_report_ = {"folds": self.cv_folds, "n_category_rows": int(len(Y)),
                           "categories": report, "macro_f1": round(float(np.mean(f1s)), 4)}

    def _fit_sentiment(self, X: sparse.csr_matrix, y: np.ndarray, weight: np.ndarray) -> None:
        present = [s for s in SENTIMENTS if s in set(y)]
        counts = {s: int((y == s).sum()) for s in present}
        n_splits = min(self.cv_folds, min(counts.values()))
        oof = np.empty(len(y), dtype=object)
        if n_splits >= 2:
            folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
            for train, test in folds.split(X, y):
                est = self._sentiment_estimator().fit(X[train], y[train], sample_weight=weight[train])
                oof[test] = est.predict(X[test])
            cm = confusion_matrix(y, oof.astype(str), labels=present)
            self.cv_report_["sentiment"] = {
                "accuracy": round(float((oof == y).mean()), 4), "labels": present,
                "confusion_matrix": cm.tolist(), "support": counts,
            }
        self.sentiment_estimator_ = self._sentiment_estimator().fit(X, y, sample_weight=weight)

    def _sentiment_estimator(self) -> LogisticRegression:
        return LogisticRegression(C=self.sentiment_C, max_iter=3000, class_weight=self.class_weight)

    # ------------------------------------------------------------- predict
    def transform(self, X: Sequence[str]) -> sparse.csr_matrix:
        check_is_fitted(self, "features_")
        return self.features_.transform(list(X)).tocsr()

    def _category_proba(self, features: sparse.csr_matrix) -> np.ndarray:
        scores = np.column_stack([est.decision_function(features) for est in self.category_estimators_])
        a, b = self.calibrators_[:, 0], self.calibrators_[:, 1]
        return 1.0 / (1.0 + np.exp(-(scores * a + b)))

    def _sentiment_proba(self, features: sparse.csr_matrix) -> np.ndarray:
        proba = self.sentiment_estimator_.predict_proba(features)
        out = np.zeros((features.shape[0], len(SENTIMENTS)))
        for k, cls in enumerate(self.sentiment_estimator_.classes_):
            out[:, SENTIMENTS.index(cls)] = proba[:, k]
        return out

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Calibrated probability of each category (columns in ``categories_`` order)."""
        check_is_fitted(self, "thresholds_")
        return self._category_proba(self.transform(X))

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """Indicator matrix of assigned categories (probability ≥ the label's threshold)."""
        return (self.predict_proba(X) >= self.thresholds_).astype(int)

    def predict_sentiment_proba(self, X: Sequence[str]) -> np.ndarray:
        """Probabilities of negative, neutral, positive (columns in ``sentiments_`` order)."""
        check_is_fitted(self, "sentiment_estimator_")
        return self._sentiment_proba(self.transform(X))

    def predict_sentiment(self, X: Sequence[str]) -> list[str]:
        return [SENTIMENTS[i] for i in self.predict_sentiment_proba(X).argmax(axis=1)]

    def score_texts(self, X: Sequence[str]) -> tuple[np.ndarray, np.ndarray, sparse.csr_matrix]:
        """Category and sentiment probabilities from one featurization, plus the features for ``explain``."""
        check_is_fitted(self, "thresholds_")
        features = self.transform(X)
        return self._category_proba(features), self._sentiment_proba(features), features

    def confidence(self, category_proba: np.ndarray, sentiment_proba: np.ndarray) -> np.ndarray:
        """0.5 at a decision threshold, 1.0 at certainty; the weakest decision of a text counts."""
        check_is_fitted(self, "thresholds_")
        t = self.thresholds_
        distance = np.where(category_proba >= t, (category_proba - t) / np.maximum(1 - t, 1e-9),
                            (t - category_proba) / np.maximum(t, 1e-9))
        category_conf = 0.5 + 0.5 * np.clip(distance, 0, 1)
        return np.minimum(category_conf.min(axis=1), sentiment_proba.max(axis=1))

    def explain(self, text: str, labels: Sequence[str], features: sparse.csr_matrix | None = None
                ) -> dict[str, list[Token]]:
        """For each label, the words of ``text`` that pushed its score up most, with their spans."""
        check_is_fitted(self, "thresholds_")
        if not labels:
            return {}
        row = (features if features is not None else self.transform([text]))[0]
        row = row.tocsr()
        word_vocab = self._word_terms()
        tokens = tokenize_spans(text, hmm=self.hmm)
        out: dict[str, list[Token]] = {}
        for label in labels:
            coef = self.category_estimators_[self.categories_.index(label)].coef_[0]
            idx, val = row.indices, row.data
            in_word = idx < self.n_word_features_
            idx, contrib = idx[in_word], val[in_word] * coef[idx[in_word]]
            order = np.argsort(-contrib)
            spans: list[Token] = []
            for k in order[: self.evidence_terms]:
                if contrib[k] <= 0:
                    break
                spans.extend(_find_term(word_vocab[idx[k]], tokens, text))
            out[label] = sorted(set(spans), key=lambda t: t.start)
        return out

    def _word_terms(self) -> np.ndarray:
        terms = getattr(self, "word_terms_", None)
        if terms is None:
            terms = self.features_.transformer_list[0][1].get_feature_names_out()
            self.word_terms_ = terms
        return terms


def _find_term(feature: str, tokens: list[Token], text: str) -> list[Token]:
    """Spans in ``text`` where the word n-gram ``feature`` ("态度 很差") occurs as consecutive tokens."""
    parts = feature.split(" ")
    n = len(parts)
    found = []
    for i in range(len(tokens) - n + 1):
        if all(tokens[i + k].term == parts[k] for k in range(n)):
            start, end = tokens[i].start, tokens[i + n - 1].end
            found.append(Token(text[start:end], start, end))
    return found


def _best_f1_threshold(proba: np.ndarray, y: np.ndarray) -> float:
    """The probability cut that maximizes F1 on out-of-fold predictions (midpoint between scores)."""
    order = np.argsort(-proba)
    p_sorted, y_sorted = proba[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(1 - y_sorted)
    f1 = 2 * tp / (tp + fp + y.sum())
    best = int(np.argmax(f1))
    nxt = p_sorted[best + 1] if best + 1 < len(p_sorted) else 0.0
    return float(np.clip((p_sorted[best] + nxt) / 2, 0.05, 0.95))
