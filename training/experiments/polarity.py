"""Polarity per domain: does a second polarity pair for text that is not service feedback help real reviews?

The polarity pair (``cxnlp.model.fit_polarity_pair``) learns from every row with a polarity: real reviews (their
file's polarity) and written service feedback (its positive / negative label). Written feedback is half the rows and
reads differently; a review is judged better by a pair that weighs it less. This script fits, on the folds
training uses (``cxnlp.folds``: whole writers held out, reviews at random), the shared pair and pairs in which
written rows count ``w`` (their plain head on the word TF-IDF block, as the shared pair's, or on every column), and
mixes them by the domain head's out-of-fold probability d that a text is service feedback, as the model does
(``other_text_polarity_weight``, ``other_text_polarity_columns``): P(positive) = d · shared + (1 − d) · other-text pair. Figures are polarity accuracy (positive vs
negative, as ``score.py`` counts it) on real reviews and on written service feedback apart.

Decisions are taken on these TRAIN folds; the corpus TEST split is scored only with the shipped model.

    python training/experiments/polarity.py
    python training/experiments/polarity.py --weights 0,0.25 --columns all
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cxnlp.folds import fold_ids  # noqa: E402
from cxnlp.model import _fit_scores, _polarity_scores, fit_polarity_pair  # noqa: E402
from heads import featurize_recipe  # noqa: E402  (this folder: the featurization heads.py uses)


def featurize(recipe_path: Path) -> dict:
    data, p, X, keep = featurize_recipe(recipe_path)
    yp = np.array([pol or s for pol, s in zip(data.polarities, data.sentiments)], dtype=object)
    groups = [i.get("writer") or None for i in data.info]
    return {"X": X, "yp": yp, "groups": groups, "w": np.asarray(data.weights, dtype=float),
            "n_word": int(np.searchsorted(keep, 2 ** p["n_features_log2"])), "C": p["polarity_C"],
            "C_domain": p["sentiment_C"], "class_weight": p["class_weight"], "tol": p["tol"], "folds": p["cv_folds"],
            "seed": p["random_state"]}


def pair_scores(d: dict, train: np.ndarray, test: np.ndarray, written_weight: float, columns: str) -> np.ndarray:
    """P(positive) of the ``test`` rows from a pair fitted on the polar ``train`` rows, written rows weighted."""
    polar = np.isin(d["yp"], ("negative", "positive"))
    written = np.array([bool(g) for g in d["groups"]])
    weight = d["w"] * np.where(written, written_weight, 1.0)
    rows = np.flatnonzero(train & polar & (weight > 0))
    W, b, ratio = fit_polarity_pair(d["X"][rows], (d["yp"][rows] == "positive").astype(int), weight[rows], d["n_word"],
                                    d["C"], d["tol"], plain_columns=columns)
    z = _polarity_scores(d["X"][np.flatnonzero(test)], W, b, ratio)
    return (1 / (1 + np.exp(-z))).mean(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=ROOT / "training" / "default.toml")
    ap.add_argument("--weights", default="0,0.25,0.5", help="weights of written rows in the other-text pair")
    ap.add_argument("--columns", default="word,all", help="columns of the other-text pair's plain head")
    args = ap.parse_args()
    d = featurize(args.config)
    fold = fold_ids(d["groups"], d["folds"], d["seed"])
    written = np.array([bool(g) for g in d["groups"]])
    polar = np.isin(d["yp"], ("negative", "positive"))
    y = d["yp"] == "positive"
    n_folds = fold.max() + 1
    everything = np.ones(len(fold), dtype=bool)
    domain = np.zeros(len(fold))
    results = Parallel(n_jobs=-1, prefer="threads")(
        delayed(_fit_scores)(d["C_domain"], d["class_weight"], d["tol"], d["X"], written.astype(int), d["w"],
                             np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_folds))
    for k, z in enumerate(results):
        domain[fold == k] = 1 / (1 + np.exp(-z))
    print(f"domain head, out of fold: service feedback read as such {np.mean(domain[written] >= 0.5):.4f}, "
          f"reviews read as other text {np.mean(domain[~written] < 0.5):.4f}")
    variants = [(1.0, "word")] + [(float(w), c) for w in args.weights.split(",") for c in args.columns.split(",")]
    tasks = [(v, k) for v in variants for k in range(n_folds)]
    results = Parallel(n_jobs=-1, prefer="threads")(
        delayed(pair_scores)(d, (fold != k) & everything, fold == k, w, c) for (w, c), k in tasks)
    proba = {v: np.zeros(len(fold)) for v in variants}
    for (v, k), p in zip(tasks, results):
        proba[v][fold == k] = p
    shared = proba[variants[0]]

    def accuracy(p: np.ndarray, rows: np.ndarray) -> str:
        m = rows & polar
        return f"{np.mean((p[m] >= 0.5) == y[m]):.4f}"

    print(f"polar rows: reviews {int((~written & polar).sum()):,}, service feedback {int((written & polar).sum()):,}")
    print("| polarity | reviews | service feedback |")
    print("|---|---|---|")
    print(f"| one pair, every row weight 1 (shipped) | {accuracy(shared, ~written)} | {accuracy(shared, written)} |")
    for v in variants[1:]:
        other = proba[v]
        mixed = domain * shared + (1 - domain) * other
        name = f"written weight {v[0]:g}, plain head on {'every column' if v[1] == 'all' else 'words'}"
        gain = [np.mean((mixed[m] >= 0.5) == y[m]) - np.mean((shared[m] >= 0.5) == y[m])
                for m in (~written & polar & (fold == k) for k in range(n_folds))]
        print(f"| other-text pair alone ({name}) | {accuracy(other, ~written)} | {accuracy(other, written)} |")
        print(f"| mixed by P(service) ({name}); per review fold {' '.join(f'{g:+.4f}' for g in gain)} | "
              f"{accuracy(mixed, ~written)} | {accuracy(mixed, written)} |", flush=True)


if __name__ == "__main__":
    main()
