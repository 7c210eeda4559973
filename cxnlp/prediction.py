"""The Prediction record, the output contract shared by the CLI, the HTTP service and the ledger.

One definition of the result fields lives here; ``predict_texts`` turns a loaded model's scores into
records, so every door into the library produces the same fields the same way.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cxnlp.taxonomy import SENTIMENTS

if TYPE_CHECKING:
    from cxnlp.store import LoadedModel

MAX_TEXT_CHARS = 5000
# Order of the contract fields as added to a CLI row or an HTTP result.
RESULT_FIELDS = ("categories", "category_scores", "sentiment", "sentiment_scores", "confidence",
                 "needs_review", "urgency", "evidence", "model_version", "error")


@dataclass
class Prediction:
    """What the classifier says of one text. ``error`` is set (and the rest empty) when it could not say."""

    categories: list[str] = field(default_factory=list)
    category_scores: dict[str, float] = field(default_factory=dict)
    sentiment: str | None = None
    sentiment_scores: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0
    needs_review: bool = False
    urgency: str | None = None  # 紧急 / 一般 / 咨询, by the ledger rules (cxnlp.ledger.rules.LedgerRules.urgencies)
    evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    model_version: str = ""
    error: str | None = None
    # Not part of the contract (never in ``to_dict``): a ``cxnlp.ledger.cues.CueTexts`` holding the text's
    # tokens and the text's row in it, so that the ledger rules reuse what the model segmented
    # (``predict_texts(..., keep_tokens=True)``).
    tokens_from: tuple[Any, int] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The contract fields as a plain dict (shallow: built per row on hot paths, so no deep copy)."""
        return {"categories": self.categories, "category_scores": self.category_scores,
                "sentiment": self.sentiment, "sentiment_scores": self.sentiment_scores,
                "confidence": self.confidence, "needs_review": self.needs_review, "urgency": self.urgency,
                "evidence": self.evidence,
                "model_version": self.model_version, "error": self.error}


def text_problem(text: object, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """Why a value cannot be classified, or None when it can."""
    if text is None or (isinstance(text, float) and text != text):
        return "empty text"
    if not isinstance(text, str):
        return f"text must be a string, got {type(text).__name__}"
    if not text.strip():
        return "empty text"
    if len(text) > max_chars:
        return f"text is {len(text)} characters long; the limit is {max_chars}"
    return None


def predict_texts(model: "LoadedModel", texts: Sequence[object], *, explain: bool = True,
                  max_chars: int = MAX_TEXT_CHARS, keep_tokens: bool = False) -> list[Prediction]:
    """Classify texts in order; unusable texts get a Prediction with ``error`` set, never an exception.

    ``keep_tokens``: each result keeps a reference to the batch's tokens (``Prediction.tokens_from``),
    for the ledger to read its rules in them without segmenting the texts again; they live as long as
    the results do."""
    problems = [text_problem(t, max_chars) for t in texts]
    good = [i for i, p in enumerate(problems) if p is None]
    version = model.version
    results = [Prediction(model_version=version, error=p) for p in problems]
    if not good:
        return results
    est = model.estimator
    good_texts = [str(texts[i]) for i in good]
    scores = est.score_texts(good_texts)
    cat_p, sent_p = scores.category, scores.sentiment
    conf = est.confidence(cat_p, sent_p, scores.thresholds)
    labels, sentiments = est.categories_, est.sentiments_
    # Whole-batch array work, then plain Python values per row.
    assigned = [[label for label, on in zip(labels, row) if on] for row in (cat_p >= scores.thresholds).tolist()]
    corrected = [est.correction_for(t) for t in good_texts]
    evidence = (est.evidence(good_texts, [a if c is None else () for a, c in zip(assigned, corrected)],
                             scores.analysis, scores.domain) if explain else [{}] * len(good))
    cat_r, sent_r, conf_r = np.round(cat_p, 4).tolist(), np.round(sent_p, 4).tolist(), np.round(conf, 4).tolist()
    top_sentiment = sent_p.argmax(axis=1).tolist()
    for k, i in enumerate(good):
        if corrected[k] is not None:  # an analyst corrected this very text: say what they said
            results[i] = _corrected_prediction(est, good_texts[k], corrected[k], version, explain)
            continue
        results[i] = Prediction(
            categories=assigned[k],
            category_scores=dict(zip(labels, cat_r[k])),
            sentiment=sentiments[top_sentiment[k]],
            sentiment_scores=dict(zip(sentiments, sent_r[k])),
            confidence=conf_r[k],
            needs_review=bool(conf[k] < est.min_confidence),
            evidence={label: [t._asdict() for t in spans] for label, spans in evidence[k].items()},
            model_version=version,
        )
    from cxnlp.ledger.cues import CueTexts

    cue = CueTexts(good_texts, scores.analysis.tokens)  # the rules read the model's tokens
    _set_urgency([results[i] for i in good], cue)
    if keep_tokens:
        for k, i in enumerate(good):
            results[i].tokens_from = (cue, k)
    return results


def _set_urgency(results: list[Prediction], texts: Any) -> None:
    """Each result's urgency, by the configured ledger rules (the one function the ledger uses too);
    ``texts`` are strings or a ``CueTexts``."""
    from cxnlp.ledger.rules import configured_rules

    for result, urgency in zip(results, configured_rules().urgencies(texts, [r.sentiment_scores for r in results])):
        result.urgency = urgency


def _corrected_prediction(est: Any, text: str, corrected: tuple[tuple[str, ...], str], version: str,
                          explain: bool) -> Prediction:
    categories, sentiment = list(corrected[0]), corrected[1]
    spans = est.explain(text, categories) if explain and categories else {}
    return Prediction(
        categories=categories,
        category_scores={label: 1.0 if label in categories else 0.0 for label in est.categories_},
        sentiment=sentiment,
        sentiment_scores={s: 1.0 if s == sentiment else 0.0 for s in SENTIMENTS},
        confidence=1.0, needs_review=False,
        evidence={label: [t._asdict() for t in spans.get(label, [])] for label in categories},
        model_version=version,
    )
