"""Cross-validation that holds out whole writers, and the metrics every evaluation reports.

A model that has seen a writer's style scores that writer's other texts too kindly, so the figures that
decide between recipes come from folds in which each writer of service feedback is either wholly in
training or wholly held out (``cxnlp.folds``); real reviews, each by someone else, go to random folds.
Each fold trains the recipe's estimator from scratch (its own calibration and thresholds included, on
its training rows only) and predicts the held-out rows exactly as a shipped model would. Reported:
per-label precision/recall/F1, macro-F1, exact label-set match and 3-class sentiment accuracy for the
service feedback (overall, per channel, per industry) and for the real reviews, plus the polarity
accuracy of reviews labeled only by their file. ``cxnlp evaluate --cross-validate`` prints it; `cxnlp
train` puts it in the model card.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cxnlp.dataset import LabeledData
from cxnlp.errors import DataError
from cxnlp.folds import fold_ids
from cxnlp.taxonomy import SENTIMENTS

if TYPE_CHECKING:
    from cxnlp.recipe import Recipe

MIN_GROUP_ROWS = 20  # channels and industries with fewer held-out rows are left out of the breakdown


def category_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], labels: Sequence[str]
                     ) -> dict[str, Any]:
    """Per-label precision/recall/F1 (with support and how often predicted), macro-F1 and exact match."""
    per: dict[str, dict[str, Any]] = {}
    for label in labels:
        g = np.array([label in x for x in gold], dtype=bool)
        p = np.array([label in x for x in pred], dtype=bool)
        tp, fp, fn = int((g & p).sum()), int((~g & p).sum()), int((g & ~p).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                      "support": int(g.sum()), "predicted": int(p.sum())}
    exact = float(np.mean([set(g) == set(p) for g, p in zip(gold, pred)])) if len(gold) else 0.0
    return {"n": len(gold), "categories": per,
            "macro_f1": round(float(np.mean([m["f1"] for m in per.values()])), 4) if per else None,
            "exact_match": round(exact, 4)}


def sentiment_metrics(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    """3-class accuracy, the confusion matrix (rows gold, columns predicted) and support."""
    from sklearn.metrics import confusion_matrix

    present = [s for s in SENTIMENTS if s in set(gold) | set(pred)]
    return {"accuracy": round(float(np.mean([g == p for g, p in zip(gold, pred)])), 4), "labels": present,
            "confusion_matrix": confusion_matrix(list(gold), list(pred), labels=present).tolist(),
            "support": {s: list(gold).count(s) for s in present}}


def row_groups(data: LabeledData, group_by: str) -> list[str | None]:
    """Each row's group (its ``group_by`` column, e.g. the writer), None where the row names none."""
    return [info.get(group_by) or None for info in data.info] if data.info else [None] * len(data)


def _subset(data: LabeledData, rows: np.ndarray) -> LabeledData:
    part = LabeledData()
    for name in ("texts", "categories", "sentiments", "weights", "sources", "calibrate", "polarities", "info"):
        values = getattr(data, name)
        setattr(part, name, [values[i] for i in rows] if values else [])
    return part


def cross_validate(data: LabeledData, recipe: "Recipe", *, group_by: str = "writer", folds: int = 5,
                   train_fraction: float = 1.0, random_state: int = 0,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Out-of-fold predictions of the recipe's estimator on every row, summarized (see the module doc).

    ``train_fraction`` < 1 keeps only that share of each fold's training groups (writers; drawn at
    random, the held-out rows unchanged): the learning curve against the amount of written data.
    """
    from cxnlp.model import FeedbackClassifier

    if not 0 < train_fraction <= 1:
        raise DataError(f"train_fraction must be within (0, 1], got {train_fraction}")
    groups = row_groups(data, group_by)
    if not any(groups):
        raise DataError(f"no row names a {group_by!r}: nothing to hold out by (the file needs a {group_by} column)")
    fold = fold_ids(groups, folds, random_state)
    rng = np.random.RandomState(random_state)
    predicted: list[list[str]] = [[] for _ in range(len(data))]
    sentiment: list[str] = [""] * len(data)
    polarity_margin = np.zeros(len(data))
    # every label of the data: a fold whose training part lacks a rare label never predicts it on its test part
    labels = tuple(sorted({label for c in data.categories if c for label in c}))
    start = time.perf_counter()
    train_rows = []
    for k in range(folds):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        if train_fraction < 1:
            names = sorted({groups[i] for i in train if groups[i]})
            kept = set(rng.permutation(names)[: max(1, round(train_fraction * len(names)))].tolist())
            train = np.array([i for i in train if not groups[i] or groups[i] in kept], dtype=np.int64)
        train_rows.append(sum(bool(groups[i]) for i in train))
        part = _subset(data, train)
        est = FeedbackClassifier(**recipe.estimator_params()).fit(
            part.texts, part.categories, part.sentiments, sample_weight=part.weights,
            calibration_rows=part.calibrate, polarities=part.polarities, groups=[groups[i] for i in train])
        scores = est.compiled_.score_texts([data.texts[i] for i in test])
        on = scores.category >= scores.thresholds
        for r, i in enumerate(test):
            predicted[i] = [label for label, yes in zip(est.categories_, on[r]) if yes]
            sentiment[i] = SENTIMENTS[int(scores.sentiment[r].argmax())]
            polarity_margin[i] = scores.sentiment[r, 2] - scores.sentiment[r, 0]
        if progress:
            progress(f"fold {k + 1}/{folds} done ({time.perf_counter() - start:.0f} s)")
    report: dict[str, Any] = {"group_by": group_by, "folds": folds, "train_fraction": train_fraction,
                              "written_rows_per_training_fold": round(float(np.mean(train_rows)), 1),
                              "seconds": round(time.perf_counter() - start, 1)}
    written = [i for i in range(len(data)) if groups[i] and data.categories[i] is not None]
    reviews = [i for i in range(len(data)) if not groups[i] and data.categories[i] is not None]
    if written:
        report["written"] = _summary(data, written, predicted, sentiment, labels, breakdown=True)
    if reviews:
        report["reviews"] = _summary(data, reviews, predicted, sentiment, labels, breakdown=False)
    polar = [i for i in range(len(data)) if data.categories[i] is None and data.polarities[i] in ("negative", "positive")] \
        if data.polarities else []
    polar += [i for i in range(len(data)) if data.categories[i] is None and not (data.polarities and data.polarities[i])
              and data.sentiments[i] in ("negative", "positive")]
    if polar:
        gold = [(data.polarities[i] if data.polarities and data.polarities[i] else data.sentiments[i]) for i in polar]
        report["polarity_only"] = {"n": len(polar), "accuracy": round(float(np.mean(
            [(g == "positive") == (polarity_margin[i] >= 0) for g, i in zip(gold, polar)])), 4)}
    return report


def _summary(data: LabeledData, rows: list[int], predicted: list[list[str]], sentiment: list[str],
             labels: Sequence[str], *, breakdown: bool) -> dict[str, Any]:
    def block(sub: list[int]) -> dict[str, Any]:
        out = category_metrics([data.categories[i] or [] for i in sub], [predicted[i] for i in sub], labels)
        with_s = [i for i in sub if data.sentiments[i] is not None]
        if with_s:
            out["sentiment"] = sentiment_metrics([data.sentiments[i] for i in with_s], [sentiment[i] for i in with_s])
        return out

    summary = {"overall": block(rows)}
    if breakdown:
        for column in ("channel", "industry"):
            by: dict[str, list[int]] = {}
            for i in rows:
                by.setdefault(data.info[i].get(column, "?"), []).append(i)
            summary[f"by_{column}"] = {name: block(sub) for name, sub in sorted(by.items())
                                       if len(sub) >= MIN_GROUP_ROWS}
    return summary


def format_cv_report(report: dict[str, Any]) -> str:
    """The cross-validation report as plain-text tables (what `cxnlp evaluate --cross-validate` prints)."""
    lines = [f"cross-validation: {report['folds']} folds, whole {report['group_by']}s held out"
             + (f", {report['train_fraction']:.0%} of the training {report['group_by']}s" if report["train_fraction"] < 1 else "")
             + f" ({report['seconds']} s)"]
    for key, title in (("written", "service feedback (writers held out)"), ("reviews", "real reviews (random folds)")):
        if key not in report:
            continue
        overall = report[key]["overall"]
        lines += ["", f"{title}: n={overall['n']}  macro-F1 {overall['macro_f1']:.3f}  exact {overall['exact_match']:.3f}"
                  + (f"  sentiment {overall['sentiment']['accuracy']:.3f}" if "sentiment" in overall else "")]
        lines.append(f"  {'label':<12}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}{'predicted':>11}")
        for label, m in overall["categories"].items():
            lines.append(f"  {label:<12}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['support']:>9}"
                         f"{m['predicted']:>11}")
        for column in ("channel", "industry"):
            groups = report[key].get(f"by_{column}")
            if not groups:
                continue
            labels = list(overall["categories"])
            lines.append(f"  by {column}: {'n':>5} {'macro':>6} {'exact':>6} {'sent':>6}  " + " ".join(f"{lb[:6]:>6}" for lb in labels))
            for name, m in groups.items():
                sent = f"{m['sentiment']['accuracy']:.3f}" if "sentiment" in m else "-"
                lines.append(f"    {name[:28]:<28}{m['n']:>5} {m['macro_f1']:>6.3f} {m['exact_match']:>6.3f} {sent:>6}  "
                             + " ".join(f"{m['categories'][lb]['f1']:>6.3f}" for lb in labels))
    if "polarity_only" in report:
        p = report["polarity_only"]
        lines += ["", f"reviews labeled by their file only: n={p['n']}  polarity accuracy {p['accuracy']:.3f}"]
    return "\n".join(lines)
