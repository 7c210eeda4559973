"""Training and evaluation: data in, a model folder with its card out; a report for any labeled file."""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from cxnlp.crossval import category_metrics, cross_validate, row_groups, sentiment_metrics
from cxnlp.dataset import LabeledData, read_corpus_labels, read_corpus_sentiment, read_labeled_file
from cxnlp.errors import DataError
from cxnlp.model import FeedbackClassifier
from cxnlp.runtime import correction_key
from cxnlp.prediction import predict_texts
from cxnlp.recipe import Recipe
from cxnlp.store import LoadedModel, save_model
from cxnlp.taxonomy import SENTIMENTS
from cxnlp.text import user_dict_sha256

# Where rows recorded in the ledger come from; the ledger module registers itself here when imported,
# so training does not import the database layer unless a recipe asks for it.
LedgerReader = Callable[[float], LabeledData]
LEDGER_SOURCE = "ledger"  # the source name of rows that come from analysts' corrections
SHIPPED_ROOT = Path(__file__).resolve().parent.parent  # where the shipped recipe's data paths point


def model_version(base: str, data_sha256: str, when: datetime | None = None) -> str:
    """The trained model's own version: the recipe's base + the training day + the data's short hash
    (``1.1.0+20261207.ab12cd34``), so two models trained from one recipe on other rows never share a name."""
    day = (when or datetime.now(timezone.utc)).strftime("%Y%m%d")
    return f"{base}+{day}.{data_sha256[:8]}"


def load_training_data(recipe: Recipe, root: Path, *, ledger_reader: LedgerReader | None = None) -> LabeledData:
    """All rows named by the recipe's ``[[data]]`` sources, in recipe order."""
    data = LabeledData()
    labeled_corpus_ids: set[str] = set()
    for source in recipe.data:
        path = (root / source.path) if source.path else None
        if source.kind == "labeled":
            part = read_labeled_file(path, weight=source.weight)
        elif source.kind == "corpus_labels":
            part = read_corpus_labels(path, weight=source.weight)
            from cxnlp.corpus import text_id

            labeled_corpus_ids |= {text_id(t) for t in part.texts}
        elif source.kind == "corpus_sentiment":
            part = read_corpus_sentiment(exclude=labeled_corpus_ids, weight=source.weight, limit=source.limit)
        else:
            if ledger_reader is None:
                raise DataError("the recipe asks for ledger data, but no ledger was given (use --with-ledger)")
            part = ledger_reader(source.weight)
        part.calibrate = [source.calibrate] * len(part)
        if source.path:  # the recipe's own (relative) name, so a card says the same on every machine
            part.sources = [source.path] * len(part)
        data.extend(part)
    return data


def train_model(data: LabeledData, recipe: Recipe, out_dir: Path, *, extra_card: dict[str, Any] | None = None,
                progress: Callable[[str], None] | None = None) -> tuple[LoadedModel, dict[str, Any]]:
    """Fit a FeedbackClassifier on ``data`` and save it with its card; returns the model and the report.

    When the recipe asks for it (``[evaluation]``), the same recipe is first cross-validated with whole
    writers held out, and the card carries those figures."""
    if len(data) == 0:
        raise DataError("no usable training rows: " + ("; ".join(data.errors[:5]) or "the data is empty"))
    evaluation = recipe.evaluation
    group_by = evaluation.group_by if evaluation else "writer"
    held_out = None
    if evaluation and evaluation.cross_validate and any(row_groups(data, group_by)):
        held_out = cross_validate(data, recipe, group_by=group_by, folds=evaluation.folds, progress=progress)
    start = time.perf_counter()
    estimator = FeedbackClassifier(**recipe.estimator_params())
    estimator.fit(data.texts, data.categories, data.sentiments, sample_weight=data.weights,
                  calibration_rows=data.calibrate, polarities=data.polarities, groups=row_groups(data, group_by))
    estimator.compiled_.corrections = {
        correction_key(t): (tuple(c or ()), s)
        for t, c, s, src in zip(data.texts, data.categories, data.sentiments, data.sources)
        if src == LEDGER_SOURCE and s is not None
    }
    seconds = time.perf_counter() - start
    data_sha256 = data.sha256()
    report = {**estimator.cv_report_, "warnings": data.warnings(), "bad_rows": len(data.errors),
              "train_seconds": round(seconds, 1)}
    card = {
        "name": recipe.model.name,
        "version": model_version(recipe.model.version, data_sha256),
        "description": recipe.model.description,
        "categories": list(estimator.categories_),
        "sentiments": list(SENTIMENTS),
        **card_thresholds(estimator.categories_, estimator.thresholds_),
        "metrics": {"cross_validation": report, **({"held_out_writers": held_out} if held_out else {})},
        "training_data": {
            "sha256": data_sha256, "rows": len(data),
            "rows_with_categories": sum(c is not None for c in data.categories),
            "rows_with_sentiment": sum(s is not None for s in data.sentiments),
            "label_counts": dict(sorted(data.label_counts().items())),
            "sources": {s: data.sources.count(s) for s in dict.fromkeys(data.sources)},
        },
        "user_dict_sha256": user_dict_sha256(),
        "recipe": recipe.model_dump(),
        **(extra_card or {}),
    }
    card = save_model(estimator.compiled_, out_dir, card)  # what prediction needs; no scikit-learn inside
    if held_out:
        report = {**report, "held_out_writers": held_out}
    return LoadedModel(estimator=estimator.compiled_, card=card, path=out_dir), report


def card_thresholds(categories: tuple[str, ...], thresholds: np.ndarray) -> dict[str, dict[str, float]]:
    """The card's ``thresholds`` (on service feedback, or on every text) and, for a model with per-domain
    thresholds, ``thresholds_other_text`` (on text its domain head reads as not service feedback)."""
    rows = np.atleast_2d(thresholds)
    card = {"thresholds": {c: round(float(t), 4) for c, t in zip(categories, rows[0])}}
    if len(rows) == 2:
        card["thresholds_other_text"] = {c: round(float(t), 4) for c, t in zip(categories, rows[1])}
    return card


def evaluate_model(model: LoadedModel, data: LabeledData) -> dict[str, Any]:
    """Per-label precision/recall/F1, exact match, sentiment accuracy and confusion matrix of ``model`` on ``data``."""
    preds = predict_texts(model, data.texts, explain=False)
    report: dict[str, Any] = {"n": len(data), "model_version": model.version}
    cat_rows = [i for i, c in enumerate(data.categories) if c is not None]
    thresholds, other = model.card.get("thresholds", {}), model.card.get("thresholds_other_text") or {}
    metrics = category_metrics([data.categories[i] or [] for i in cat_rows], [preds[i].categories for i in cat_rows],
                               model.estimator.categories_)
    for label, m in metrics["categories"].items():
        m["threshold"] = thresholds.get(label)
        if label in other:  # the cut on text the model reads as not service feedback
            m["threshold_other_text"] = other[label]
    report.update(categories=metrics["categories"], macro_f1=metrics["macro_f1"] if cat_rows else None,
                  exact_match=metrics["exact_match"])
    sent_rows = [i for i, s in enumerate(data.sentiments) if s is not None]
    if sent_rows:
        report["sentiment"] = sentiment_metrics([data.sentiments[i] for i in sent_rows],  # type: ignore[misc]
                                                [preds[i].sentiment for i in sent_rows])
    return report


def format_report(report: dict[str, Any]) -> str:
    """The evaluation report as a plain-text table (what `cxnlp train` and `cxnlp evaluate` print)."""
    lines = [f"{'label':<12}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}{'threshold':>11}"]
    for label, m in report["categories"].items():
        t, o = m.get("threshold"), m.get("threshold_other_text")
        cut = "-" if t is None else f"{t:.3f}" + (f" / {o:.3f} other text" if o is not None else "")
        lines.append(f"{label:<12}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['support']:>9}"
                     f"  {cut:>9}")
    lines.append(f"{'macro F1':<12}{report['macro_f1']:>34.3f}")
    sent = report.get("sentiment")
    if sent:
        lines.append(f"sentiment accuracy {sent['accuracy']:.3f}   confusion (rows gold, columns predicted):")
        width = max(len(s) for s in sent["labels"]) + 2
        lines.append(" " * width + "".join(f"{s:>{width}}" for s in sent["labels"]))
        for s, row in zip(sent["labels"], sent["confusion_matrix"]):
            lines.append(f"{s:<{width}}" + "".join(f"{v:>{width}}" for v in row))
    for warning in report.get("warnings", []):
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def _headline(report: dict[str, Any]) -> dict[str, float | None]:
    """The figures two models are compared on: per-label F1, macro-F1, exact match, sentiment accuracy."""
    figures: dict[str, float | None] = {f"f1:{label}": m["f1"] for label, m in report["categories"].items()}
    figures.update(macro_f1=report["macro_f1"], exact_match=report["exact_match"],
                   sentiment_accuracy=(report.get("sentiment") or {}).get("accuracy"))
    return figures


def compare_models(model: LoadedModel, baseline: LoadedModel, data: LabeledData) -> dict[str, Any]:
    """Both models scored on the same labeled rows, and each headline figure's change (model - baseline)."""
    new, old = evaluate_model(model, data), evaluate_model(baseline, data)
    a, b = _headline(new), _headline(old)
    difference = {k: (round(a[k] - b[k], 4) if a.get(k) is not None and b.get(k) is not None else None)
                  for k in dict.fromkeys([*a, *b])}
    return {"n": len(data), "model": new, "baseline": old, "difference": difference}


def format_comparison(comparison: dict[str, Any]) -> str:
    """The comparison side by side: one line per figure, the two models and the change."""
    new, old, diff = comparison["model"], comparison["baseline"], comparison["difference"]
    a, b = _headline(new), _headline(old)
    width = max(len(new["model_version"]), len(old["model_version"]), 10) + 2
    lines = [f"{comparison['n']} labeled rows", f"{'':<20}{new['model_version']:>{width}}{old['model_version']:>{width}}{'change':>9}"]
    show = (lambda v, w: f"{v:>{w}.3f}" if v is not None else f"{'-':>{w}}")
    for key in diff:
        name = key.replace("f1:", "F1 ").replace("_", " ")
        lines.append(f"{name:<20}{show(a.get(key), width)}{show(b.get(key), width)}"
                     + (f"{diff[key]:>+9.3f}" if diff[key] is not None else f"{'-':>9}"))
    return "\n".join(lines)


def run_training(*, config: Path | None, data: list[Path], out: Path | None, overrides: list[str],
                 with_ledger: bool = False, replace: bool = False,
                 progress: Callable[[str], None] | None = None
                 ) -> tuple[LoadedModel, dict[str, Any], list[str]]:
    """What `cxnlp train` does: resolve the recipe, gather data, train, save.

    Without ``config`` the recipe is the one stored in the shipped model's card, so an analyst's model
    is built exactly like the default one. ``data`` is added to the recipe's sources (a few hundred rows
    alone make a far worse model than the shipped one), or with ``replace`` is all the model sees.
    """
    recipe, root = resolve_recipe(config, data, overrides, with_ledger, replace=replace)
    if not data and config is None:
        raise DataError("nothing to train on: pass --data FILE (your labeled data) or --config RECIPE")
    missing = [s.path for s in recipe.data if s.path and not (root / s.path).exists()]
    if missing and data and not replace:
        raise DataError(f"the recipe's training data is not here ({', '.join(missing)} under {root}); "
                        "use --replace to train on your rows alone")
    ledger_reader = None
    extra: dict[str, Any] = {}
    if data:
        extra["training_mode"] = "replaced" if replace else "added"
    if any(s.kind == "ledger" for s in recipe.data):
        from cxnlp.ledger.training_data import corrected_training_rows

        ledger_reader = corrected_training_rows
    training_data = load_training_data(recipe, root, ledger_reader=ledger_reader)
    if ledger_reader is not None:
        extra["ledger_corrections"] = training_data.sources.count(LEDGER_SOURCE)
    # Without a recipe file the output stays under the working folder, never over the shipped model.
    out_dir = out or ((root if config is not None else Path.cwd()) / recipe.output["dir"])
    model, report = train_model(training_data, recipe, out_dir, extra_card=extra, progress=progress)
    return model, report, training_data.errors


def resolve_recipe(config: Path | None, data: list[Path], overrides: list[str], with_ledger: bool = False,
                   *, replace: bool = False) -> tuple[Recipe, Path]:
    """The recipe `cxnlp train` would use, and the root its paths are relative to. Without ``config``
    it is the shipped model's, rooted at the repository/package root; ``data`` is added to its sources,
    or with ``replace`` takes their place."""
    from cxnlp.recipe import DataSource, Recipe, load_recipe
    from cxnlp.store import default_model_dir, read_card

    if config is not None:
        recipe, root = load_recipe(config, overrides)
    else:
        card_recipe = read_card(default_model_dir())["recipe"]
        recipe, root = Recipe.model_validate(card_recipe), SHIPPED_ROOT
        if overrides:
            from cxnlp.recipe import apply_overrides

            recipe = apply_overrides(recipe, overrides)
    if data:
        user = [DataSource(kind="labeled", path=str(p.resolve()), weight=1.0) for p in data]
        recipe = recipe.model_copy(update={"data": user if replace else [*recipe.data, *user]})
    if with_ledger and not any(s.kind == "ledger" for s in recipe.data):
        recipe = recipe.model_copy(update={"data": [*recipe.data, DataSource(kind="ledger", weight=2.0)]})
    return recipe, root
