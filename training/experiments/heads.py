"""Which category heads to stack: writer-held-out comparisons, and the learning curve.

Reproduces the figures quoted in ``training/default.toml`` and the model card. The recipe's data is featurized
once; each head's out-of-fold scores come from ``cxnlp.model._fit_scores`` on the folds training uses
(``cxnlp.folds``: whole writers held out, reviews spread at random), and each combination of heads is then
calibrated and thresholded the way ``FeedbackClassifier`` does it (stacked logistic regression with the
domain head, F1-best threshold capped at 1.5x), cross-fitted over the same folds so no row sets its own
decision. Figures are macro-F1 over the four labels, on written service feedback and on real reviews apart.

This is cheaper than ``cxnlp evaluate --cross-validate`` (one level of folds instead of two), so it ranks
choices; the model card's figures come from the full cross-validation.

    python training/experiments/heads.py                      # the table of head combinations
    python training/experiments/heads.py --learning-curve     # F1 against the number of labeled texts
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.metrics import f1_score

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cxnlp.dataset import LabeledData  # noqa: E402
from cxnlp.features import TextFeaturizer  # noqa: E402
from cxnlp.folds import fold_ids  # noqa: E402
from cxnlp.model import _fit_scores, _head_rows, fit_decisions  # noqa: E402
from cxnlp.runtime import calibrated, decision_thresholds  # noqa: E402
from cxnlp.training import load_training_data, resolve_recipe  # noqa: E402

HEADS = {  # name -> (C, naive_bayes, rows)
    "C4": (4.0, False, "all"), "C16": (16.0, False, "all"), "C1": (1.0, False, "all"),
    "NB4": (4.0, True, "all"), "NB1": (1.0, True, "all"), "reviews4": (4.0, False, "ungrouped"),
    "service4": (4.0, False, "grouped"), "reviewsNB4": (4.0, True, "ungrouped"),
}
COMBINATIONS = [["C4"], ["C16"], ["NB4"], ["C4", "reviews4"], ["C4", "C1"], ["C16", "NB4"], ["C16", "C1", "NB4"],
                ["C16", "C1", "NB4", "reviews4"], ["C16", "C1", "NB4", "reviews4", "service4"],
                ["C16", "C1", "NB4", "reviews4", "service4", "reviewsNB4"]]  # the last: the shipped recipe's heads


def featurize_recipe(recipe_path: Path) -> tuple[LabeledData, dict, sparse.csr_matrix, np.ndarray]:
    """The recipe's data, its estimator settings, every row's features over the kept columns (as
    ``FeedbackClassifier.fit`` keeps them: seen in at least ``min_df`` texts), and those columns."""
    recipe, _ = resolve_recipe(recipe_path, [], [])
    data = load_training_data(recipe, ROOT)
    p = recipe.estimator_params()
    feat = TextFeaturizer(**{k: p[k] for k in ("word_ngram_range", "char_ngram_range", "n_features_log2", "sublinear_tf",
                                               "hmm", "tokenizer", "cue_phrases", "clause_features")})
    full = feat.fit_transform(data.texts)
    keep = np.flatnonzero(np.bincount(full.indices, minlength=full.shape[1]) >= p["min_df"])
    return data, p, full[:, keep].tocsr(), keep


def featurize(recipe_path: Path) -> dict:
    data, p, X, _ = featurize_recipe(recipe_path)
    rows = np.array([c is not None for c in data.categories])
    labels = sorted({label for c in data.categories if c for label in c})
    return {"X": X[rows], "labels": labels, "w": np.asarray(data.weights)[rows],
            "Y": np.array([[label in c for label in labels] for c in data.categories if c is not None], dtype=int),
            "groups": [i.get("writer") or None for i, r in zip(data.info, rows) if r], "C_domain": p["sentiment_C"],
            "class_weight": p["class_weight"], "tol": p["tol"], "folds": p["cv_folds"], "seed": p["random_state"],
            "ratio": p["max_predicted_ratio"], "domain_thresholds": p["domain_thresholds"]}


def out_of_fold(d: dict, fold: np.ndarray, C: float, nb: bool, rows: np.ndarray, Y: np.ndarray,
                train_mask: np.ndarray) -> np.ndarray:
    """Scores of every row from fits that did not see its fold, one column per label of ``Y``."""
    tasks = [(j, k) for j in range(Y.shape[1]) for k in range(fold.max() + 1)]
    out = np.zeros(Y.shape)
    results = Parallel(n_jobs=-1, prefer="threads")(
        delayed(_fit_scores)(C, d["class_weight"], d["tol"], d["X"], Y[:, j], d["w"],
                             np.flatnonzero((fold != k) & rows & train_mask), np.flatnonzero(fold == k), nb)
        for j, k in tasks)
    for (j, k), scores in zip(tasks, results):
        out[fold == k, j] = scores
    return out


def evaluate(d: dict, fold: np.ndarray, scores: list[np.ndarray], domain: np.ndarray, fit_mask: np.ndarray,
             domain_thresholds: bool = False) -> dict[str, float]:
    """Stacked calibration and capped thresholds fitted on the other folds' ``fit_mask`` rows, applied to each
    fold in turn (every row of it)."""
    Y, written = d["Y"], np.array([bool(g) for g in d["groups"]])
    S = np.column_stack([*scores, domain])
    n_scores = S.shape[1] - 1
    pred = np.zeros_like(Y)
    for k in range(fold.max() + 1):
        tr, te = (fold != k) & fit_mask, fold == k
        calibrators, thresholds = fit_decisions(S[tr], Y[tr], written[tr], n_scores=n_scores, domain=True,
                                                stack_labels=True, max_predicted_ratio=d["ratio"],
                                                domain_thresholds=domain_thresholds)
        pred[te] = calibrated(S[te], calibrators, n_scores) >= decision_thresholds(thresholds, S[te])
    out = {}
    for name, m in (("service", written), ("reviews", ~written)):
        f1 = [f1_score(Y[m, j], pred[m, j], zero_division=0) for j in range(Y.shape[1])]
        out[name] = float(np.mean(f1))
        out[name + "_per_label"] = dict(zip(d["labels"], (round(float(v), 3) for v in f1)))
        if name == "service":
            out["service_exact"] = float((pred[m] == Y[m]).all(axis=1).mean())
    return out


def heads_table(d: dict, combinations: list[list[str]]) -> None:
    """Each combination with one threshold per label, and the last also with thresholds per domain."""
    fold = fold_ids(d["groups"], d["folds"], d["seed"])
    written = np.array([bool(g) for g in d["groups"]])
    everything = np.ones(len(fold), dtype=bool)
    domain = out_of_fold(d, fold, d["C_domain"], False, everything, written[:, None].astype(int), everything)[:, 0]
    cache = {name: out_of_fold(d, fold, C, nb, _head_rows(rows, written), d["Y"], everything)
             for name, (C, nb, rows) in HEADS.items() if any(name in combo for combo in combinations)}
    print("| heads | service macro-F1 | service exact | expertise (service) | reviews macro-F1 | expertise (reviews) |")
    print("|---|---|---|---|---|---|")
    for combo, per_domain in [(c, False) for c in combinations] + [(combinations[-1], True)]:
        r = evaluate(d, fold, [cache[h] for h in combo], domain, everything, per_domain)
        print(f"| {' + '.join(combo)}{' (thresholds per domain)' if per_domain else ''} | {r['service']:.3f} | {r['service_exact']:.3f} | "
              f"{r['service_per_label'].get('expertise', 0):.3f} | {r['reviews']:.3f} | "
              f"{r['reviews_per_label'].get('expertise', 0):.3f} |", flush=True)


def learning_curve(d: dict, combo: list[str], shares: list[float]) -> None:
    """Train on a share of the writers (and the same share of the reviews) of each fold's training part;
    score the held-out fold in full."""
    fold = fold_ids(d["groups"], d["folds"], d["seed"])
    written = np.array([bool(g) for g in d["groups"]])
    rng = np.random.RandomState(0)
    writers = sorted({g for g in d["groups"] if g})
    writer_rank = dict(zip(writers, rng.permutation(len(writers)) / len(writers)))
    row_rank = np.where(written, [writer_rank.get(g, 0.0) for g in d["groups"]], rng.rand(len(fold)))
    everything = np.ones(len(fold), dtype=bool)
    print("| share of the training part | labeled texts used (per fold, mean) | service macro-F1 | reviews macro-F1 |")
    print("|---|---|---|---|")
    for share in shares:
        use = row_rank < share + 1e-9
        domain = out_of_fold(d, fold, d["C_domain"], False, everything, written[:, None].astype(int), use)[:, 0]
        scores = [out_of_fold(d, fold, HEADS[h][0], HEADS[h][1], _head_rows(HEADS[h][2], written), d["Y"], use)
                  for h in combo]
        r = evaluate(d, fold, scores, domain, use, d["domain_thresholds"])
        n = np.mean([(use & (fold != k)).sum() for k in range(fold.max() + 1)])
        print(f"| {share:.0%} | {n:,.0f} | {r['service']:.3f} | {r['reviews']:.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=ROOT / "training" / "default.toml")
    ap.add_argument("--learning-curve", action="store_true")
    ap.add_argument("--heads", default="C16,C1,NB4,reviews4,service4,reviewsNB4",
                    help="the combination the learning curve uses")
    ap.add_argument("--combinations", nargs="*", help="head combinations to compare, e.g. C16,NB4 C16,C1,NB4,reviews4 "
                    "(default: the table in the model card; the last is also shown with thresholds per domain)")
    ap.add_argument("--shares", default="0.125,0.25,0.5,0.75,1.0")
    args = ap.parse_args()
    d = featurize(args.config)
    if args.learning_curve:
        learning_curve(d, args.heads.split(","), [float(s) for s in args.shares.split(",")])
    else:
        heads_table(d, [c.split(",") for c in args.combinations] if args.combinations else COMBINATIONS)


if __name__ == "__main__":
    main()
