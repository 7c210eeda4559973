"""Figures that say whether labeled data is varied and balanced enough to train on.

Near-duplicates: pairs of texts whose character 5-gram sets have Jaccard similarity ≥ 0.7.
Diversity: distinct character 4-grams over all 4-grams of the first 80 characters of each text,
digits folded to 0; and the share of the most common 4-character opening.
Writers: rows per writer (the `writer` column) and the largest writer's share, since a classifier
trained mostly on one writer learns that writer's style rather than the customers'.
"""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from cxnlp.dataset import LabeledData, read_corpus_labels, read_labeled_file
from cxnlp.io import open_table

LENGTH_BUCKETS = ((1, 10), (11, 50), (51, 150), (151, 300), (301, 10**9))
NEAR_DUPLICATE_JACCARD = 0.7
_DIGITS = re.compile(r"\d")


def _is_corpus_labels(path: Path) -> bool:
    if path.suffix.lower() != ".jsonl":
        return False
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                return "id" in obj and "text" not in obj
    return False


def _extra_columns(path: Path, names: tuple[str, ...]) -> dict[str, list[str]]:
    """Columns the training reader ignores (industry, channel, writer), read for the report only."""
    out: dict[str, list[str]] = {n: [] for n in names}
    with open_table(path, "text") as table:
        for row in table.rows:
            if row.values.get("text") and str(row.values.get("text")).strip():
                for n in names:
                    out[n].append(str(row.values.get(n, "") or "(none)"))
    return out


def near_duplicate_pairs(texts: list[str], threshold: float = NEAR_DUPLICATE_JACCARD) -> list[tuple[int, int, float]]:
    """Pairs (i, j, jaccard) of texts whose character 5-gram sets overlap at least ``threshold``."""
    grams = [{t[k:k + 5] for k in range(max(1, len(t) - 4))} for t in texts]
    index: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(grams):
        for gram in g:
            index[gram].append(i)
    pairs = []
    for i, g in enumerate(grams):
        shared: Counter = Counter()
        for gram in g:
            for j in index[gram]:
                if j > i:
                    shared[j] += 1
        for j, s in shared.items():
            jac = s / (len(g) + len(grams[j]) - s)
            if jac >= threshold:
                pairs.append((i, j, round(jac, 3)))
    return pairs


def diversity(texts: list[str]) -> dict[str, Any]:
    fourgrams: list[str] = []
    for t in texts:
        head = _DIGITS.sub("0", t[:80])
        fourgrams.extend(head[k:k + 4] for k in range(len(head) - 3))
    openings = Counter(_DIGITS.sub("0", t[:4]) for t in texts if len(t) >= 4)
    top = openings.most_common(5)
    return {
        "distinct_4gram_share": round(len(set(fourgrams)) / max(1, len(fourgrams)), 4),
        "top_openings": [{"opening": o, "count": c, "share": round(c / len(texts), 4)} for o, c in top],
        "max_opening_share": round(top[0][1] / len(texts), 4) if top else 0.0,
    }


def build_report(files: list[Path]) -> dict[str, Any]:
    data = LabeledData()
    extras: dict[str, list[str]] = {"industry": [], "channel": [], "writer": []}
    for path in files:
        path = Path(path)
        if _is_corpus_labels(path):
            part = read_corpus_labels(path)
            for n in extras:
                extras[n].extend(["corpus"] * len(part))
        else:
            part = read_labeled_file(path)
            cols = _extra_columns(path, tuple(extras))
            for n in extras:
                extras[n].extend(cols[n][: len(part)])
        data.extend(part)
    n = len(data)
    if n == 0:
        return {"files": [str(f) for f in files], "n": 0, "bad_rows": data.errors}
    cats = [c or [] for c in data.categories]
    lengths = [len(t) for t in data.texts]
    dup_pairs = near_duplicate_pairs(data.texts)
    exact = n - len(set(data.texts))
    return {
        "files": [str(f) for f in files],
        "n": n,
        "bad_rows": data.errors,
        "per_label": dict(sorted(Counter(lb for c in cats for lb in c).items())),
        "no_category": sum(not c for c in cats),
        "multi_label": sum(len(c) > 1 for c in cats),
        "multi_label_share": round(sum(len(c) > 1 for c in cats) / n, 4),
        "per_combination": dict(Counter("|".join(sorted(c)) or "(none)" for c in cats).most_common()),
        "per_sentiment": dict(Counter(s or "(none)" for s in data.sentiments).most_common()),
        "per_industry": dict(Counter(extras["industry"]).most_common()),
        "per_channel": dict(Counter(extras["channel"]).most_common()),
        "per_writer": (per_writer := dict(Counter(extras["writer"]).most_common())),
        "writers": len(per_writer),
        "max_writer_share": round(max(per_writer.values()) / n, 4) if per_writer else 0.0,
        "length_buckets": {f"{lo}-{hi if hi < 10**9 else ''}": sum(lo <= x <= hi for x in lengths)
                           for lo, hi in LENGTH_BUCKETS},
        "length_min_median_max": [min(lengths), sorted(lengths)[n // 2], max(lengths)],
        "exact_duplicates": exact,
        "near_duplicate_pairs": len(dup_pairs),
        "near_duplicate_rate": round(len(dup_pairs) / n, 4),
        "near_duplicate_examples": [[data.texts[i][:60], data.texts[j][:60], s] for i, j, s in dup_pairs[:10]],
        **diversity(data.texts),
    }


def format_data_report(r: dict[str, Any]) -> str:
    if not r["n"]:
        return "no usable rows\n" + "\n".join(r["bad_rows"][:20])
    lines = [f"files: {', '.join(r['files'])}", f"examples: {r['n']}   bad rows: {len(r['bad_rows'])}"]

    def table(title: str, counts: dict[str, int]) -> None:
        lines.append(f"\n{title}")
        for k, v in counts.items():
            lines.append(f"  {k:<28}{v:>7}  {v / r['n']:>6.1%}")

    table("per label (multi-label rows count once per label)", r["per_label"])
    lines.append(f"  {'(no category)':<28}{r['no_category']:>7}  {r['no_category'] / r['n']:>6.1%}")
    lines.append(f"  {'(multi-label)':<28}{r['multi_label']:>7}  {r['multi_label_share']:>6.1%}")
    table("per label combination", dict(list(r["per_combination"].items())[:15]))
    table("per sentiment", r["per_sentiment"])
    table("per industry", r["per_industry"])
    table("per channel", r["per_channel"])
    table("per writer", r["per_writer"])
    lines.append(f"  {r['writers']} writers; the largest writes {r['max_writer_share']:.1%} of the rows")
    table("per length (characters)", r["length_buckets"])
    lo, med, hi = r["length_min_median_max"]
    lines.append(f"  min {lo}, median {med}, max {hi}")
    lines.append(f"\nexact duplicates: {r['exact_duplicates']}")
    lines.append(f"near-duplicate pairs (char 5-gram Jaccard >= {NEAR_DUPLICATE_JACCARD}): "
                 f"{r['near_duplicate_pairs']} ({r['near_duplicate_rate']:.2%} of examples)")
    lines.append(f"distinct character 4-gram share (first 80 chars, digits folded): {r['distinct_4gram_share']:.3f}")
    lines.append("most common 4-character openings: " + ", ".join(
        f"{o['opening']} {o['share']:.1%}" for o in r["top_openings"]))
    for err in r["bad_rows"][:20]:
        lines.append(f"bad row: {err}")
    return "\n".join(lines)
