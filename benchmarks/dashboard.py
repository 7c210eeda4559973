#!/usr/bin/env python3
"""Speed of the dashboard's 总览 on a real-sized ledger.

Fills a SQLite ledger with N records (default 200,000) spread over 12 months, with the project's
feedback texts as the shipped model classifies them (each distinct text classified once, its row
copied with its own id, channel and time), some corrected and some resolved. Then serves the app
in-process and times ``GET /?month=…`` (the overview: month summary, 6-month trend, sentiment by
channel, departments, review share) and ``GET /ledger?…`` (a filtered, sorted page): the median of
--runs requests, and the CPU time each took (on a shared machine the wall time grows with its load;
the load average is printed too). Figures are printed, never checked. Run it from the repository root:

    python benchmarks/dashboard.py                 # 200,000 records
    python benchmarks/dashboard.py --records 20000 --keep ledger.db   # a smaller ledger, kept for a look
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHANNELS = ("电话", "在线客服", "app_review", "邮件", "微信", "")
MONTHS = 12


def sample_texts(limit: int = 3000) -> list[str]:
    with (ROOT / "data_samples" / "feedback_labeled.csv").open(encoding="utf-8-sig", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh) if row["text"].strip()]
    return list(dict.fromkeys(texts))[:limit]


def fill_ledger(url: str, n: int, *, last_month: str, seed: int = 7, model=None) -> None:
    """``n`` records over the ``MONTHS`` months up to ``last_month``; a few corrected and resolved."""
    from sqlalchemy import null

    from cxnlp.ledger.db import session_scope
    from cxnlp.ledger.records import FeedbackIn, insert_records, record_rows
    from cxnlp.ledger.rules import LedgerRules
    from cxnlp.prediction import predict_texts
    from cxnlp.store import load_model

    model = model or load_model()
    rules = LedgerRules.load()
    texts = sample_texts()
    predictions = predict_texts(model, texts)
    now = datetime.utcnow()
    base = record_rows(items=[FeedbackIn(text=t, source_id=f"t{i}") for i, t in enumerate(texts)],
                       predictions=predictions, rules=rules, now=now)
    rng = random.Random(seed)
    year, month = map(int, last_month.split("-"))
    end = datetime(year + (month == 12), 1 if month == 12 else month + 1, 1)
    span = timedelta(days=30.4 * MONTHS)
    batch = []
    with session_scope(url) as session:
        for k in range(n):
            row = dict(base[k % len(base)])
            received = end - span * rng.random()
            due_hours = rules.due_hours[row["severity"]]
            row.update(source_id=f"bench-{k}", channel=rng.choice(CHANNELS) or None, received_at=received,
                       due_at=received + timedelta(hours=due_hours),
                       status=rng.choices(("open", "in_progress", "resolved", "closed"), (3, 1, 3, 3))[0])
            # every row names every column (a batched insert takes its columns from the first row); SQL
            # NULL, not JSON null, where nothing was corrected
            corrected = rng.random() < 0.03
            row.update(corrected_categories=row["categories"] if corrected else null(),
                       corrected_sentiment=row["sentiment"] if corrected else None,
                       corrected_by="bench" if corrected else None, corrected_at=now if corrected else None)
            batch.append(row)
            if len(batch) == 5000:
                insert_records(session=session, rows=batch)
                batch = []
        if batch:
            insert_records(session=session, rows=batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--month", default=None, help="The last month filled and shown (default: last month)")
    parser.add_argument("--keep", type=Path, default=None, help="Write the SQLite ledger here and keep it")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from cxnlp.settings import Settings
    from cxnlp.store import load_model
    from service.main import create_app

    today = datetime.utcnow()
    month = args.month or f"{today.year - (today.month == 1)}-{12 if today.month == 1 else today.month - 1:02d}"
    folder = tempfile.mkdtemp(prefix="cxnlp-dashboard-bench-")
    path = args.keep or Path(folder) / "ledger.db"
    url = f"sqlite:///{path}"
    try:
        model = load_model()
        started = time.perf_counter()
        fill_ledger(url, args.records, last_month=month, model=model)
        print(f"filled {args.records:,} records over {MONTHS} months in {time.perf_counter() - started:.1f} s ({path})")
        app = create_app(model=model, settings=Settings(ledger_url=url, api_key=None))
        with TestClient(app) as client:
            for name, target in (("总览 GET /", f"/?month={month}"),
                                 ("台账 GET /ledger (negative, sorted by confidence)",
                                  f"/ledger?month={month}&sentiment=negative&sort=confidence&dir=asc")):
                t0 = time.perf_counter()
                client.get(target).raise_for_status()  # the first: engine, templates, planner statistics
                first = time.perf_counter() - t0
                seconds, cpu = [], []
                for _ in range(args.runs):
                    t0, c0 = time.perf_counter(), time.process_time()
                    client.get(target).raise_for_status()
                    seconds.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                load = os.getloadavg()[0]
                print(f"{name}: median {statistics.median(seconds):.3f} s over {args.runs} requests "
                      f"(min {min(seconds):.3f}, max {max(seconds):.3f}; first request {first:.3f} s; "
                      f"CPU {statistics.median(cpu):.3f} s per request; load average {load:.1f} on "
                      f"{os.cpu_count()} cores) on {args.records:,} records")
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the 200 MB ledger, unless --keep put it elsewhere


if __name__ == "__main__":
    main()
