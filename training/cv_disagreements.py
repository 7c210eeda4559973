"""List the labeled examples whose cross-validated prediction disagrees with their label, for review.

Each example is predicted by a model that never saw it (k-fold over the recipe's whole training data);
the rows of FILE where the predicted categories or sentiment differ from the label are written as
JSONL for a person to check against the label guide ``docs/taxonomy.md``: fix the label, or keep it on
purpose.

    python training/cv_disagreements.py --config training/default.toml \\
        --file data_samples/feedback_labeled.csv --out review/disagreements.jsonl
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold

from cxnlp.model import FeedbackClassifier
from cxnlp.recipe import load_recipe
from cxnlp.taxonomy import SENTIMENTS
from cxnlp.training import load_training_data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=Path("training/default.toml"))
    ap.add_argument("--file", type=Path, required=True, help="the labeled file (a source of the recipe) to review")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=4)
    args = ap.parse_args()

    recipe, root = load_recipe(args.config, ["classifier.cv_folds=3"])
    data = load_training_data(recipe, root)
    target = str((root / args.file).resolve()) if not args.file.is_absolute() else str(args.file)
    rows = np.array([str(Path(s).resolve()) == target if not s.startswith("corpus:") else False for s in data.sources])
    if not rows.any():
        raise SystemExit(f"{args.file} is not a data source of {args.config}")
    idx = np.flatnonzero(rows)
    predicted: dict[int, tuple[list[str], str]] = {}
    for k, (_, held) in enumerate(KFold(args.folds, shuffle=True, random_state=0).split(idx)):
        held_rows = set(idx[held].tolist())
        keep = [i for i in range(len(data)) if i not in held_rows]
        est = FeedbackClassifier(**recipe.estimator_params()).fit(
            [data.texts[i] for i in keep], [data.categories[i] for i in keep], [data.sentiments[i] for i in keep],
            sample_weight=[data.weights[i] for i in keep], calibration_rows=[data.calibrate[i] for i in keep],
            polarities=[data.polarities[i] for i in keep])
        held_list = sorted(held_rows)
        scores = est.compiled_.score_texts([data.texts[i] for i in held_list])
        cat_p, sent_p = scores.category, scores.sentiment
        for r, i in enumerate(held_list):
            cats = [c for j, c in enumerate(est.categories_) if cat_p[r, j] >= scores.thresholds[r, j]]
            predicted[i] = (cats, SENTIMENTS[int(sent_p[r].argmax())])
        print(f"fold {k + 1}/{args.folds} done", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with args.out.open("w", encoding="utf-8") as fh:
        for position, i in enumerate(idx):
            cats, sent = predicted[i]
            if sorted(cats) != sorted(data.categories[i] or []) or sent != data.sentiments[i]:
                n += 1
                fh.write(json.dumps({"row": position + 2, "text": data.texts[i], "categories": data.categories[i],
                                     "sentiment": data.sentiments[i], "predicted_categories": cats,
                                     "predicted_sentiment": sent}, ensure_ascii=False) + "\n")
    print(f"{n} of {len(idx)} examples disagree with their cross-validated prediction → {args.out}")


if __name__ == "__main__":
    main()
