"""FeedbackClassifier: multi-label service categories plus three-way sentiment, in one estimator.

Categories are scored by one or more heads (``category_heads``), each one logistic regression per label on
the shared TF-IDF features: heads differ in regularization, in naive-Bayes feature scaling (NB-LR), or in the
rows they learn from (written service feedback, or real text without a writer), so their errors differ and
the stacked calibration gains from reading them all. Their out-of-fold scores
(folds that hold out whole writers, ``cxnlp.folds``) set the calibration: Platt scaling per label, or with
``stack_labels`` one logistic regression per label over all labels' scores (label interactions: strong
attitude evidence lowers expertise), joined, when the data mixes service feedback (rows with a writer)
and other text, by a domain head whose probability and products with each score let the thresholds
differ between the two. Each label's threshold maximizes out-of-fold F1 on the calibration rows, never
predicting the label on more than ``max_predicted_ratio`` times as many service-feedback rows as carry it;
the same cross-validation yields the model card's training report.
Sentiment is two heads: polarity (positive vs negative, the mean of two logistic regressions: one on
the word TF-IDF block, one on the character n-grams present, each scaled by its naive-Bayes log-count
ratio (NB-LR); held-out tests on real reviews found the pair more accurate than either alone, one joint
model, or TF-IDF characters) and neutrality (neutral vs not, optionally class-balanced); P(neutral) = q,
P(positive) = (1 - q) · p, P(negative) = (1 - q) · (1 - p). With a domain head and
``other_text_polarity_weight``, a second polarity pair learns for text that is not service feedback (written
rows count less in it) and p mixes the two pairs by the domain head's P(service feedback): written feedback
is half the polarity rows and reads differently from a product review.
Rows may lack category labels (texts labeled only for sentiment) or sentiment: each head trains on
the rows that carry its labels.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from cxnlp.errors import ConfigError, DataError
from cxnlp.features import TextFeaturizer
from cxnlp.folds import grouped_folds
from cxnlp.runtime import (WEIGHT_DTYPE, CompiledClassifier, calibrated, decision_thresholds, nb_scores,
                           read_as_service, sentiment_from_scores, stack_inputs)
from cxnlp.taxonomy import SENTIMENTS
from cxnlp.text import TOKENIZER_BACKENDS, Token


class FeedbackClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label category classifier with per-label thresholds, and a sentiment classifier.

    Parameters mirror the ``[model]`` table of a training recipe (``training/default.toml``).
    """

    def __init__(
        self,
        *,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] = (1, 3),
        n_features_log2: int = 20,
        min_df: int = 2,
        sublinear_tf: bool = True,
        hmm: bool = True,
        tokenizer: str = "jieba-rs",
        cue_phrases: bool = True,
        clause_features: bool = False,
        category_C: float = 4.0,
        category_heads: Sequence[Mapping[str, Any]] = (),
        polarity_C: float = 16.0,
        sentiment_C: float = 4.0,
        class_weight: str | None = "balanced",
        neutral_class_weight: str | None = None,
        other_text_polarity_weight: float | None = None,
        other_text_polarity_columns: str = "word",
        tol: float = 1e-2,
        cv_folds: int = 5,
        stack_labels: bool = False,
        max_predicted_ratio: float = 0.0,
        domain_thresholds: bool = False,
        min_confidence: float = 0.65,
        evidence_terms: int = 3,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.n_features_log2 = n_features_log2
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.hmm = hmm
        self.tokenizer = tokenizer
        self.cue_phrases = cue_phrases
        self.clause_features = clause_features
        self.category_C = category_C
        self.category_heads = category_heads
        self.polarity_C = polarity_C
        self.sentiment_C = sentiment_C
        self.class_weight = class_weight
        self.neutral_class_weight = neutral_class_weight
        self.other_text_polarity_weight = other_text_polarity_weight
        self.other_text_polarity_columns = other_text_polarity_columns
        self.tol = tol
        self.cv_folds = cv_folds
        self.stack_labels = stack_labels
        self.max_predicted_ratio = max_predicted_ratio
        self.domain_thresholds = domain_thresholds
        self.min_confidence = min_confidence
        self.evidence_terms = evidence_terms
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fit
    def _check_params(self) -> None:
        for name in ("category_C", "polarity_C", "sentiment_C", "tol"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not (isinstance(self.n_features_log2, int) and 10 <= self.n_features_log2 <= 24):
            raise ConfigError(f"n_features_log2 must be an integer within 10..24, got {self.n_features_log2!r}")
        if not (isinstance(self.min_df, int) and self.min_df >= 1):
            raise ConfigError(f"min_df must be an integer >= 1, got {self.min_df!r}")
        if not (isinstance(self.cv_folds, int) and self.cv_folds >= 2):
            raise ConfigError(f"cv_folds must be an integer >= 2, got {self.cv_folds!r}")
        for name in ("class_weight", "neutral_class_weight"):
            if getattr(self, name) not in (None, "balanced"):
                raise ConfigError(f"{name} must be 'balanced' or None, got {getattr(self, name)!r}")
        if self.other_text_polarity_weight is not None and not 0.0 <= self.other_text_polarity_weight <= 1.0:
            raise ConfigError("other_text_polarity_weight must be None (one polarity pair) or within 0..1, "
                              f"got {self.other_text_polarity_weight!r}")
        if self.other_text_polarity_columns not in _POLARITY_COLUMNS:
            raise ConfigError(f"other_text_polarity_columns must be one of {', '.join(_POLARITY_COLUMNS)}, "
                              f"got {self.other_text_polarity_columns!r}")
        if not (isinstance(self.n_jobs, int) and (self.n_jobs >= 1 or self.n_jobs == -1)):
            raise ConfigError(f"n_jobs must be a positive integer or -1, got {self.n_jobs!r}")
        if not (self.max_predicted_ratio == 0 or self.max_predicted_ratio >= 1.0):
            raise ConfigError(f"max_predicted_ratio must be 0 (no cap) or >= 1, got {self.max_predicted_ratio!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must be within 0..1, got {self.min_confidence!r}")
        for head in self._heads():
            if not head["C"] > 0 or head["rows"] not in _HEAD_ROWS or not isinstance(head["naive_bayes"], bool):
                raise ConfigError(f"category head {dict(head)!r}: C must be > 0, rows one of {', '.join(_HEAD_ROWS)}, "
                                  "naive_bayes true or false")
        if self.tokenizer not in TOKENIZER_BACKENDS:
            raise ConfigError(f"tokenizer must be one of {', '.join(TOKENIZER_BACKENDS)}, got {self.tokenizer!r}")
        for name in ("word_ngram_range", "char_ngram_range"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise ConfigError(f"{name} must be (min, max) with 1 <= min <= max, got {getattr(self, name)!r}")

    def _heads(self) -> list[dict[str, Any]]:
        """The category heads with every setting filled in; none given means one head of ``category_C``."""
        heads = list(self.category_heads) or [{"C": self.category_C}]
        return [{"C": float(h.get("C", self.category_C)), "naive_bayes": h.get("naive_bayes", False),
                 "rows": h.get("rows", "all")} for h in heads]

    def fit(
        self,
        X: Sequence[str],
        categories: Sequence[Sequence[str] | None],
        sentiments: Sequence[str | None],
        *,
        sample_weight: Sequence[float] | None = None,
        labels: Sequence[str] | None = None,
        calibration_rows: Sequence[bool] | None = None,
        polarities: Sequence[str | None] | None = None,
        groups: Sequence[str | None] | None = None,
    ) -> "FeedbackClassifier":
        """Learn features, per-label classifiers, calibrators, thresholds and the sentiment head.

        ``categories[i]`` is None when row i carries no category labels; ``sentiments[i]`` likewise.
        ``labels`` fixes the category set and its order (default: the labels seen, sorted).
        ``calibration_rows`` marks the rows whose out-of-fold scores set the calibration and the
        thresholds (default: all): real customer text, when written examples are mixed in, so that the
        decisions fit the text the model will meet. ``polarities[i]`` ("positive"/"negative"), where
        known, is the writer's own rating (a review's stars); the polarity head learns from it rather
        than from the sentiment label, which may say "neutral" for a text its writer rated.
        ``groups[i]`` names row i's writer: the out-of-fold scores behind calibration and thresholds hold
        out whole writers (``cxnlp.folds``), so the decisions are set on styles the fits did not see.
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

        self.features_ = TextFeaturizer(
            word_ngram_range=self.word_ngram_range, char_ngram_range=self.char_ngram_range,
            n_features_log2=self.n_features_log2, sublinear_tf=self.sublinear_tf, hmm=self.hmm,
            tokenizer=self.tokenizer, cue_phrases=self.cue_phrases, clause_features=self.clause_features,
        )
        full = self.features_.fit_transform(texts)
        # Columns seen in fewer than min_df texts are dropped before the linear fits: they carry
        # little signal, and the fits then cost the same whatever the hashing width.
        df = np.bincount(full.indices, minlength=full.shape[1])
        self.columns_ = np.flatnonzero(df >= self.min_df)
        features = full[:, self.columns_]

        Xc, wc = features[cat_rows], weight[cat_rows]
        Y = np.array([[label in c for label in self.categories_] for c in categories if c is not None], dtype=int)
        calib = np.ones(len(texts), dtype=bool) if calibration_rows is None else np.asarray(calibration_rows, bool)
        group = [None] * len(texts) if groups is None else list(groups)
        self._fit_categories(Xc, Y, wc, calib[cat_rows], [g for g, keep in zip(group, cat_rows) if keep])
        Xs, ws = features[sent_rows], weight[sent_rows]
        ys = np.array([s for s in sentiments if s is not None])
        pol = list(polarities) if polarities is not None else [None] * len(texts)
        yp = np.array([p or s for p, s, keep in zip(pol, sentiments, sent_rows) if keep], dtype=object)
        written = np.array([bool(g) for g, keep in zip(group, sent_rows) if keep])
        self._fit_sentiment(Xs, ys, ws, yp, written)
        self._compile()
        return self

    def _parallel(self, tasks: list) -> list:
        """Run independent fits on ``n_jobs`` threads (liblinear releases the GIL while it trains)."""
        return Parallel(n_jobs=self.n_jobs, prefer="threads")(delayed(fn)(*args) for fn, *args in tasks)

    def _fit_categories(self, X: sparse.csr_matrix, Y: np.ndarray, weight: np.ndarray, calib: np.ndarray,
                        groups: list[str | None]) -> None:
        """Per-head, per-label fits on shared writer-held-out folds; their out-of-fold scores set the calibration
        (Platt per label, or, with ``stack_labels``, a logistic regression over every head's score of every
        label, so that one label's evidence can raise or lower another's) and the thresholds."""
        for j, label in enumerate(self.categories_):
            if Y[:, j].sum() < 2 or Y[:, j].sum() > len(Y) - 2:
                raise DataError(f"category {label!r} needs at least 2 positive and 2 negative examples")
        heads = self._heads()
        if len(heads) > 1 and not self.stack_labels:
            raise ConfigError("several category heads need stack_labels = true (the stack is what combines them)")
        folds = grouped_folds(groups, self.cv_folds, self.random_state)
        # With stacked labels and both service feedback (rows with a writer) and other text, a domain head
        # (is this written like service feedback?) joins the stack, so thresholds can differ between them.
        written = np.array([bool(g) for g in groups], dtype=int)
        domain = self.stack_labels and min(written.sum(), len(written) - written.sum()) >= self.cv_folds
        n_cat = len(self.categories_)
        # one scorer per (head, label), head-major, then the domain head: (C, naive_bayes, rows it learns from, y)
        scorers = [(h["C"], h["naive_bayes"], _head_rows(h["rows"], written), Y[:, j]) for h in heads for j in range(n_cat)]
        if domain:
            scorers.append((self.sentiment_C, False, np.ones(len(Y), dtype=bool), written))
        tasks, plan = [], []
        for k, (C, nb, rows, y) in enumerate(scorers):
            for train, test in folds:
                tasks.append((_fit_scores, C, self.class_weight, self.tol, X, y, weight, train[rows[train]], test, nb))
                plan.append((k, test))
            tasks.append((_fit_scores, C, self.class_weight, self.tol, X, y, weight, np.flatnonzero(rows), None, nb))
            plan.append((k, None))
        results = self._parallel(tasks)
        oof = np.zeros((len(Y), len(scorers)), dtype=np.float64)
        finals: dict[int, tuple[np.ndarray, float]] = {}
        for (k, test), result in zip(plan, results):
            if test is None:
                finals[k] = result
            else:
                oof[test, k] = result
        if Y[calib].sum(axis=0).min() < 2:  # too few calibration rows with some label: use all rows
            calib = np.ones(len(Y), dtype=bool)
        n_scores = len(heads) * n_cat
        calibrators, thresholds = fit_decisions(oof[calib], Y[calib], written[calib].astype(bool), n_scores=n_scores,
                                                domain=domain, stack_labels=self.stack_labels,
                                                max_predicted_ratio=self.max_predicted_ratio,
                                                domain_thresholds=self.domain_thresholds)
        proba = calibrated(oof[calib], calibrators, n_scores)
        on = proba >= decision_thresholds(thresholds, oof[calib])
        cuts = np.atleast_2d(thresholds)  # the service-feedback row (or the only one), then the other text's
        report = {}
        for j, label in enumerate(self.categories_):
            y = Y[calib, j]
            p, r, f, _ = precision_recall_fscore_support(y, on[:, j], average="binary", zero_division=0)
            report[label] = {"precision": round(float(p), 4), "recall": round(float(r), 4),
                             "f1": round(float(f), 4), "support": int(y.sum()), "predicted": int(on[:, j].sum()),
                             "threshold": round(float(cuts[0, j]), 4),
                             **({"threshold_other_text": round(float(cuts[1, j]), 4)} if len(cuts) == 2 else {})}
        # Only the weights are kept (float32, a row per kept feature column, a column per head and label).
        self.category_coef_ = np.column_stack([finals[k][0] for k in range(n_scores)]).astype(np.float32)
        self.category_intercept_ = np.array([finals[k][1] for k in range(n_scores)], dtype=np.float32)
        self.calibrators_ = calibrators
        self.domain_coef_ = (finals[n_scores][0].astype(np.float32), np.float32(finals[n_scores][1])) if domain else None
        self.thresholds_ = thresholds
        f1s = [v["f1"] for v in report.values()]
        self.cv_report_ = {"folds": self.cv_folds, "n_category_rows": int(len(Y)),
                           "n_calibration_rows": int(calib.sum()),
                           "grouped_rows": int(sum(bool(g) for g in groups)), "category_heads": len(heads),
                           "categories": report, "macro_f1": round(float(np.mean(f1s)), 4)}

    def _fit_sentiment(self, X: sparse.csr_matrix, y: np.ndarray, weight: np.ndarray, yp: np.ndarray,
                       written: np.ndarray) -> None:
        """Polarity (two block models, averaged; with ``other_text_polarity_weight`` and a domain head, a second
        pair for other text) and neutrality heads; out-of-fold report of the whole."""
        n_word = int(np.searchsorted(self.columns_, 2 ** self.n_features_log2))  # word block first
        polar = np.isin(yp, ("negative", "positive"))
        if polar.sum() < 2 or len(set(yp[polar])) < 2:
            raise DataError("sentiment needs both positive and negative examples")
        # the second pair needs the domain head (to mix the pairs) and both kinds of text among the polar rows
        other = (self.other_text_polarity_weight is not None and self.domain_coef_ is not None
                 and len(set(yp[polar & written])) == 2 and len(set(yp[polar & ~written])) == 2)
        present = [s for s in SENTIMENTS if s in set(y)]
        counts = {s: int((y == s).sum()) for s in present}
        n_splits = min(self.cv_folds, min(counts.values()))
        folds = (list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state).split(X, y))
                 if n_splits >= 2 else [])
        # the final fit runs beside the folds' fits, so both threads stay busy to the end
        tasks = [(self._fit_sentiment_heads, X[train], y[train], weight[train], yp[train], written[train], n_word, other)
                 for train, _ in folds] + [(self._fit_sentiment_heads, X, y, weight, yp, written, n_word, other)]
        if other:  # each fold's own domain head, to mix its held-out rows' pairs
            tasks += [(_fit_scores, self.sentiment_C, self.class_weight, self.tol, X, written.astype(int), weight, train,
                       test) for train, test in folds]
        results = self._parallel(tasks)
        heads, final, domains = results[:len(folds)], results[len(folds)], results[len(folds) + 1:]
        self.sentiment_coef_, self.sentiment_intercept_, self.nb_ratio_, self.other_polarity_ = final
        if folds:
            oof = np.empty(len(y), dtype=object)
            for k, ((_, test), (W, b, ratio, pair)) in enumerate(zip(folds, heads)):
                z = _sentiment_scores(X[test], W, b, ratio)
                if pair is not None:
                    z = np.column_stack([z, _polarity_scores(X[test], *pair), domains[k]])
                oof[test] = [SENTIMENTS[j] for j in sentiment_from_scores(z).argmax(axis=1)]
            cm = confusion_matrix(y, oof.astype(str), labels=present)
            self.cv_report_["sentiment"] = {
                "accuracy": round(float((oof == y).mean()), 4), "labels": present,
                "confusion_matrix": cm.tolist(), "support": counts, "other_text_polarity": bool(other),
            }

    def _fit_sentiment_heads(self, X: sparse.csr_matrix, y: np.ndarray, weight: np.ndarray, yp: np.ndarray,
                             written: np.ndarray, n_word: int, other: bool
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple | None]:
        """Weights (kept columns × 3: polarity-word, polarity-char, neutral), intercepts, the character
        columns' naive-Bayes log-count ratios (0 for word columns), and, with ``other``, the other-text
        polarity pair as (weights × 2, intercepts, ratios), else None."""
        polar = np.isin(yp, ("negative", "positive"))
        y_pos = (yp == "positive").astype(int)
        W, b, ratio = fit_polarity_pair(X[polar], y_pos[polar], weight[polar], n_word, self.polarity_C, self.tol)
        columns, intercepts = [W[:, 0], W[:, 1]], [b[0], b[1]]
        pair = None
        if other:
            w = weight * np.where(written, self.other_text_polarity_weight, 1.0)
            rows = polar & (w > 0)
            if len(set(y_pos[rows].tolist())) == 2:  # a fold may lack one class among the weighted rows
                Wo, bo, ratio_o = fit_polarity_pair(X[rows], y_pos[rows], w[rows], n_word, self.polarity_C, self.tol,
                                                    plain_columns=self.other_text_polarity_columns)
                pair = (Wo.astype(np.float32), bo.astype(np.float64), ratio_o.astype(np.float32))
        y_neu = (y == "neutral").astype(int)
        if 0 < y_neu.sum() < len(y_neu):
            est = LogisticRegression(C=self.sentiment_C, tol=self.tol, solver="liblinear",
                                     class_weight=self.neutral_class_weight).fit(X, y_neu, sample_weight=weight)
            columns.append(est.coef_[0])
            intercepts.append(est.intercept_[0])
        else:  # no neutral examples: the head always says "not neutral"
            columns.append(np.zeros(X.shape[1]))
            intercepts.append(-30.0)
        return (np.column_stack(columns).astype(np.float32), np.array(intercepts, dtype=np.float64),
                ratio.astype(np.float32), pair)

    # ------------------------------------------------------------- predict
    def _compile(self) -> None:
        """Freeze what prediction needs into ``compiled_`` (no scikit-learn objects inside).

        Weight columns: the first head's categories, the three sentiment heads, the domain head (if any),
        then the other heads' categories, so a one-head model keeps the layout models had before heads, and
        last the other-text polarity pair (if any).
        Several heads are first folded into what the stacked calibration makes of them (``fold_heads``)."""
        n_cat = len(self.categories_)
        coef, intercept, calibrators = fold_heads(self.category_coef_, self.category_intercept_, self.calibrators_, n_cat)
        domain = [] if self.domain_coef_ is None else [self.domain_coef_[0][:, None]]
        pair = self.other_polarity_
        weights = np.hstack([coef[:, :n_cat], self.sentiment_coef_, *domain, coef[:, n_cat:], *([pair[0]] if pair else [])])
        self.compiled_ = CompiledClassifier(
            featurizer=self.features_, categories_=self.categories_,
            thresholds_=self.thresholds_, calibrators_=calibrators, columns_=self.columns_.astype(np.int32),
            coef_=np.vstack([weights, np.zeros((1, weights.shape[1]))]).astype(WEIGHT_DTYPE),
            nb_ratio_=np.append(self.nb_ratio_, np.float32(0.0)),
            category_intercept_=intercept,
            sentiment_intercept_=self.sentiment_intercept_,
            min_confidence=self.min_confidence, evidence_terms=self.evidence_terms,
            domain_intercept_=None if self.domain_coef_ is None else np.array([self.domain_coef_[1]], dtype=np.float32),
            other_polarity_intercept_=None if pair is None else pair[1].astype(np.float32),
            other_nb_ratio_=None if pair is None else np.append(pair[2], np.float32(0.0)),
        )

    def transform(self, X: Sequence[str]) -> sparse.csr_matrix:
        check_is_fitted(self, "compiled_")
        return self.compiled_.transform(list(X))

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Calibrated probability of each category (columns in ``categories_`` order)."""
        check_is_fitted(self, "compiled_")
        return self.compiled_.predict_proba(list(X))

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """Indicator matrix of assigned categories (probability ≥ the label's threshold)."""
        check_is_fitted(self, "compiled_")
        return self.compiled_.predict(list(X))

    def predict_sentiment_proba(self, X: Sequence[str]) -> np.ndarray:
        """Probabilities of negative, neutral, positive (columns in ``sentiments_`` order)."""
        check_is_fitted(self, "compiled_")
        return self.compiled_.predict_sentiment_proba(list(X))

    def predict_sentiment(self, X: Sequence[str]) -> list[str]:
        return [SENTIMENTS[i] for i in self.predict_sentiment_proba(X).argmax(axis=1)]

    def explain(self, text: str, labels: Sequence[str]) -> dict[str, list[Token]]:
        """For each label, the words of ``text`` that pushed its score up most, with their spans."""
        check_is_fitted(self, "compiled_")
        return self.compiled_.explain(text, labels)


def fit_decisions(scores: np.ndarray, Y: np.ndarray, written: np.ndarray, *, n_scores: int, domain: bool,
                  stack_labels: bool, max_predicted_ratio: float, domain_thresholds: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Calibrators and thresholds from out-of-fold scores (rows × ``n_scores`` category scores, then the domain
    head's score when ``domain``): Platt per label, or one logistic regression per label over the stack; each
    label's threshold maximizes F1 and predicts it on at most ``max_predicted_ratio`` times as many
    ``written`` rows (service feedback; all rows if none is) as carry it.

    With ``domain`` and ``domain_thresholds`` the thresholds are two rows (``runtime.decision_thresholds``): one
    set on the rows the domain head reads as service feedback, one on the others (real reviews), each capped
    within its own rows, because one cut serves the two kinds of text badly (a label rare in reviews, such as
    ``expertise``, needs a lower one there). A label with too few positives on one side keeps the shared cut."""
    n_cat = Y.shape[1]
    inputs = stack_inputs(scores[:, :n_scores], scores[:, n_scores]) if domain else scores[:, :n_scores]
    calibrators = np.zeros((n_cat, 2 * n_scores + 2 if domain else n_scores + 1 if stack_labels else 2))
    for j in range(n_cat):
        x = inputs if stack_labels else scores[:, j:j + 1]
        fitted = LogisticRegression(C=1.0 if stack_labels else 1e4, max_iter=1000).fit(x, Y[:, j])
        calibrators[j] = np.append(fitted.coef_[0], fitted.intercept_[0])
    proba = calibrated(scores, calibrators, n_scores)
    capped = written if written.any() else np.ones(len(Y), dtype=bool)
    shared = np.array([_best_f1_threshold(proba[:, j], Y[:, j], max_predicted_ratio, capped) for j in range(n_cat)])
    if not (domain and domain_thresholds):
        return calibrators, shared
    thresholds = np.vstack([shared, shared])
    service = read_as_service(scores[:, :n_scores + 1])
    for side, rows in enumerate((service, ~service)):
        for j in range(n_cat):
            if Y[rows, j].sum() >= MIN_DOMAIN_POSITIVES:
                thresholds[side, j] = _best_f1_threshold(proba[rows, j], Y[rows, j], max_predicted_ratio)
    return calibrators, thresholds


def fold_heads(coef: np.ndarray, intercept: np.ndarray, calibrators: np.ndarray, n_cat: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The category heads' weights (features × scores, head-major), intercepts and calibrators, rewritten so
    that prediction computes fewer columns and the same probabilities.

    The stacked calibration is linear in every head's score, and with a domain head also in each score times
    P(service feedback) = p: z_j = sum_m A_jm s_m + b_j p + sum_m G_jm s_m p + d_j, with s_m = x . w_m + i_m.
    So z_j = (x . U_j + u_j) + p (x . V_j + v_j), U = sum_m A_jm w_m, V = sum_m G_jm w_m: two columns per label,
    whatever the number of heads, read by calibrators that pick them out (weight 1, in ``runtime.calibrated``'s
    layout). Without a domain head one column per label. One head, or two with a domain head, stay as they are
    (nothing to gain)."""
    n_scores = len(intercept)
    width = calibrators.shape[1]
    W, i, C = coef.astype(np.float64), intercept.astype(np.float64), calibrators.astype(np.float64)
    rows = np.arange(n_cat)
    if width == 2 * n_scores + 2 and n_scores > 2 * n_cat:  # stacked with the domain head
        A, b, G, d = C[:, :n_scores], C[:, n_scores], C[:, n_scores + 1:2 * n_scores + 1], C[:, -1]
        folded = np.zeros((n_cat, 4 * n_cat + 2))
        folded[rows, rows] = 1.0                             # U_j's score
        folded[rows, 2 * n_cat + 1 + n_cat + rows] = 1.0     # V_j's score times p
        return (np.hstack([W @ A.T, W @ G.T]).astype(np.float32),
                np.concatenate([i @ A.T + d, i @ G.T + b]).astype(np.float32), folded)
    if width == n_scores + 1 and n_scores > n_cat:  # stacked, no domain head
        A, d = C[:, :n_scores], C[:, -1]
        return ((W @ A.T).astype(np.float32), (i @ A.T + d).astype(np.float32),
                np.column_stack([np.eye(n_cat), np.zeros(n_cat)]))
    return coef, intercept, calibrators


# Fewest positives of a label among one domain's calibration rows for it to get a threshold of its own there.
MIN_DOMAIN_POSITIVES = 10


_HEAD_ROWS = ("all", "grouped", "ungrouped")


def _head_rows(rows: str, written: np.ndarray) -> np.ndarray:
    """Which category rows a head learns from: all, those naming a writer, or the others."""
    return {"all": np.ones(len(written), dtype=bool), "grouped": written.astype(bool),
            "ungrouped": ~written.astype(bool)}[rows]


def _fit_scores(C: float, class_weight: str | None, tol: float, X: sparse.csr_matrix, y: np.ndarray, weight: np.ndarray,
                train: np.ndarray, test: np.ndarray | None, naive_bayes: bool = False):
    """One binary logistic regression fitted on rows ``train``: the scores of rows ``test``, or, when
    ``test`` is None (the final fit), (weights, intercept) over the unscaled features. With ``naive_bayes``
    every column is first scaled by its log-count ratio among the training rows (NB-LR, Wang & Manning
    2012); the scale folds into the weights, so prediction stays one dot product."""
    if len(set(y[train].tolist())) < 2:  # rows without one class: no information, a constant score
        constant = 1.0 if len(train) and y[train][0] else -1.0
        return (np.zeros(X.shape[1]), constant) if test is None else np.full(len(test), constant)
    Xt = X[train]
    scale = _nb_ratio(Xt, y[train], np.ones(X.shape[1])) if naive_bayes else None
    if scale is not None:
        Xt = Xt @ sparse.diags(scale)
    est = LogisticRegression(C=C, class_weight=class_weight, tol=tol, max_iter=2000, solver="liblinear")
    est.fit(Xt, y[train], sample_weight=weight[train])
    coef = est.coef_[0] if scale is None else est.coef_[0] * scale
    if test is None:
        return coef, float(est.intercept_[0])
    return X[test] @ coef + est.intercept_[0]


def _nb_ratio(X: sparse.csr_matrix, y: np.ndarray, columns: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Naive-Bayes log-count ratio of each column among ``columns`` (1.0 marks one; others get 0), over
    the texts in which it is present: log(p / |p|) - log(q / |q|) with p, q smoothed counts per class."""
    present = X.copy()
    present.data[:] = 1.0
    p = alpha + np.asarray(present[y == 1].sum(axis=0)).ravel() * columns
    q = alpha + np.asarray(present[y == 0].sum(axis=0)).ravel() * columns
    ratio = np.log(p / p[columns > 0].sum()) - np.log(q / q[columns > 0].sum())
    return ratio * columns


_POLARITY_COLUMNS = ("word", "all")


def fit_polarity_pair(X: sparse.csr_matrix, y_pos: np.ndarray, weight: np.ndarray, n_word: int, C: float,
                      tol: float, plain_columns: str = "word") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The polarity pair on rows labeled positive (1) or negative (0): a logistic regression on TF-IDF (the word
    block, the first ``n_word`` kept columns, or with ``plain_columns="all"`` every column) and one on the
    naive-Bayes-scaled character n-grams present (NB-LR).
    Returns weights (columns × 2), the two intercepts, and the character columns' log-count ratios."""
    word_cols = (np.arange(X.shape[1]) < n_word).astype(np.float32)
    plain_cols = word_cols if plain_columns == "word" else np.ones(X.shape[1], dtype=np.float32)
    plain = LogisticRegression(C=C, tol=tol, solver="liblinear").fit(X @ sparse.diags(plain_cols), y_pos,
                                                                      sample_weight=weight)
    ratio = _nb_ratio(X, y_pos, 1.0 - word_cols)
    char = LogisticRegression(C=C, tol=tol, solver="liblinear").fit(_nb_rows(X, ratio), y_pos, sample_weight=weight)
    return (np.column_stack([plain.coef_[0] * plain_cols, char.coef_[0]]),
            np.array([plain.intercept_[0], char.intercept_[0]]), ratio)


def _nb_rows(X: sparse.csr_matrix, ratio: np.ndarray) -> sparse.csr_matrix:
    """The NB head's inputs: each n-gram present counts once, times its ratio; rows l2-normalized."""
    rows = X.copy()
    rows.data = ratio[rows.indices].astype(np.float64)
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ rows)


def _sentiment_scores(X: sparse.csr_matrix, W: np.ndarray, b: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Raw sentiment scores of rows over the kept columns, exactly as ``CompiledClassifier`` computes them."""
    return np.column_stack([_polarity_scores(X, W[:, :2], b[:2], ratio), np.asarray(X @ W[:, 2], dtype=np.float64) + b[2]])


def _polarity_scores(X: sparse.csr_matrix, W: np.ndarray, b: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Raw scores of a polarity pair (plain TF-IDF head, NB-LR character head), as ``CompiledClassifier`` computes them."""
    return np.column_stack([np.asarray(X @ W[:, 0], dtype=np.float64),
                            nb_scores(X.indptr, X.indices, ratio, W[:, 1])]) + b


def _best_f1_threshold(proba: np.ndarray, y: np.ndarray, max_ratio: float = 0.0,
                       capped: np.ndarray | None = None) -> float:
    """The probability cut that maximizes F1 on out-of-fold predictions (midpoint between scores),
    among the cuts that predict the label on at most ``max_ratio`` times as many rows as carry it (0: any),
    counted among the ``capped`` rows (default: all)."""
    order = np.argsort(-proba, kind="stable")
    p_sorted, y_sorted = proba[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(1 - y_sorted)
    f1 = 2 * tp / (tp + fp + y.sum())
    if max_ratio:
        cap = np.ones(len(y), dtype=bool) if capped is None else np.asarray(capped, dtype=bool)
        f1[np.cumsum(cap[order]) > max(1.0, max_ratio * y[cap].sum())] = -1.0
    best = int(np.argmax(f1))
    nxt = p_sorted[best + 1] if best + 1 < len(p_sorted) else 0.0
    return float(np.clip((p_sorted[best] + nxt) / 2, 0.05, 0.95))
