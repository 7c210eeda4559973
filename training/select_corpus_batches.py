"""Pick which corpus TRAIN texts to label by hand, and write them out in batches for the labelers.

The corpus is mostly about products (rooms, books, laptops); service is mentioned in a minority of
texts. To get enough service cases, about two thirds of the sample comes from texts that mention a
service cue (the cue list only *selects* texts to read; labels come from reading them), and one third
is drawn uniformly at random so the labeled set also shows the corpus as it is. Labelers follow the
label guide ``docs/taxonomy.md``.

The batches hold the texts themselves and go to a scratch folder outside the repository: the project
stores only ids and labels (``data_samples/corpus_labels.jsonl``).

    python training/select_corpus_batches.py --out /tmp/batches --n-cued 2200 --n-random 1100 --batches 4
"""
from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from cxnlp.corpus import train_texts

SERVICE_CUES = re.compile(
    "服务|前台|服务员|客服|态度|经理|保安|大堂|门童|礼貌|热情|冷淡|不理|等了|半天|催|慢|及时|很快|速度|"
    "发货|送货|到货|快递|配送|退|换货|投诉|收费|押金|发票|预订|预定|订房|入住|退房|结账|办理|手续|"
    "解释|答复|回复|电话|售后|维修|修|客户|承诺|说明|工作人员|处理|安排|升级|叫醒|接机|赔|当当|卓越|卖家"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n-cued", type=int, default=2200)
    ap.add_argument("--n-random", type=int, default=1100)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--double", type=int, default=300, help="size of the independent second-labeling sample")
    ap.add_argument("--exclude", type=Path, nargs="*", default=[], help="JSONL files whose ids are labeled already")
    ap.add_argument("--seed", type=int, default=20261123)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    done = {json.loads(l)["id"] for p in args.exclude for l in p.read_text(encoding="utf-8").splitlines() if l.strip()}
    pool = [c for c in train_texts().values() if c.id not in done and len(c.text) <= 600]
    cued = [c for c in pool if SERVICE_CUES.search(c.text)]
    rng.shuffle(cued)
    picked = cued[: args.n_cued]
    chosen = {c.id for c in picked}
    rest = [c for c in pool if c.id not in chosen]
    picked += rng.sample(rest, min(args.n_random, len(rest)))
    rng.shuffle(picked)

    args.out.mkdir(parents=True, exist_ok=True)
    size = -(-len(picked) // args.batches)
    for b in range(args.batches):
        rows = picked[b * size:(b + 1) * size]
        with (args.out / f"batch_{b + 1}.jsonl").open("w", encoding="utf-8") as fh:
            for c in rows:
                fh.write(json.dumps({"id": c.id, "text": c.text}, ensure_ascii=False) + "\n")
    double = rng.sample(picked, min(args.double, len(picked)))
    with (args.out / "double.jsonl").open("w", encoding="utf-8") as fh:
        for c in double:
            fh.write(json.dumps({"id": c.id, "text": c.text}, ensure_ascii=False) + "\n")
    print(f"{len(cued)} cued of {len(pool)} TRAIN texts; picked {len(picked)} in {args.batches} batches of ≤{size}; "
          f"{len(double)} for double labeling")


if __name__ == "__main__":
    main()
