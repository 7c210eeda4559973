"""Agreement between two independent labelings of the same texts (the data card's double-labeling figure).

Per category: F1 of one labeling against the other (symmetric); sentiment: accuracy and Cohen's kappa.

    python training/agreement.py data_samples/corpus_labels.jsonl data_samples/corpus_labels_second.jsonl
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from cxnlp.taxonomy import DEFAULT_CATEGORIES, SENTIMENTS


def read(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if r}


def agreement(first: dict[str, dict], second: dict[str, dict]) -> dict:
    ids = sorted(set(first) & set(second))
    per_label = {}
    for label in DEFAULT_CATEGORIES:
        a = [label in first[i]["categories"] for i in ids]
        b = [label in second[i]["categories"] for i in ids]
        both = sum(x and y for x, y in zip(a, b))
        per_label[label] = {"first": sum(a), "second": sum(b), "both": both,
                            "f1": round(2 * both / (sum(a) + sum(b)), 3) if sum(a) + sum(b) else 1.0}
    same_set = sum(set(first[i]["categories"]) == set(second[i]["categories"]) for i in ids)
    s1 = [first[i]["sentiment"] for i in ids]
    s2 = [second[i]["sentiment"] for i in ids]
    observed = sum(x == y for x, y in zip(s1, s2)) / len(ids)
    c1, c2 = Counter(s1), Counter(s2)
    expected = sum(c1[s] * c2[s] for s in SENTIMENTS) / len(ids) ** 2
    return {
        "n": len(ids),
        "categories": per_label,
        "macro_f1": round(sum(v["f1"] for v in per_label.values()) / len(per_label), 3),
        "exact_category_set": round(same_set / len(ids), 3),
        "sentiment_accuracy": round(observed, 3),
        "sentiment_kappa": round((observed - expected) / (1 - expected), 3) if expected < 1 else 1.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    args = ap.parse_args()
    r = agreement(read(args.first), read(args.second))
    print(f"texts labeled twice: {r['n']}")
    print(f"{'label':<12}{'first':>7}{'second':>8}{'both':>6}{'F1':>7}")
    for label, v in r["categories"].items():
        print(f"{label:<12}{v['first']:>7}{v['second']:>8}{v['both']:>6}{v['f1']:>7.3f}")
    print(f"macro F1 {r['macro_f1']:.3f}; identical category sets {r['exact_category_set']:.1%}")
    print(f"sentiment agreement {r['sentiment_accuracy']:.1%}, Cohen's kappa {r['sentiment_kappa']:.3f}")


if __name__ == "__main__":
    main()
