"""Lay the written ticket texts out as six monthly ticket exports (tickets_2026-06.csv … tickets_2026-11.csv).

Deterministic: the same tickets_texts.jsonl always gives the same files. Each export has the columns a
ticket system writes — 工单号, 受理时间 (local time), 渠道, 客户ID, 投诉内容 — and some customers write
again and again (about a fifth of the tickets come from 150 returning customers).

    python3 data_samples/ledger/make_sample_months.py
"""
from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
MONTHS = ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
WEIGHTS = [0.14, 0.15, 0.16, 0.17, 0.18, 0.20]  # the volume grows a little month by month
RETURNING, RETURNING_SHARE = 150, 0.2
COLUMNS = ["工单号", "受理时间", "渠道", "客户ID", "投诉内容"]


def main() -> None:
    rnd = random.Random(20261130)
    tickets = [json.loads(line) for line in (HERE / "tickets_texts.jsonl").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    tickets.sort(key=lambda t: t["id"])
    rnd.shuffle(tickets)
    returning = [f"C{100000 + i}" for i in range(RETURNING)]
    by_month: dict[str, list[list[str]]] = {m: [] for m in MONTHS}
    next_customer = 200000
    for ticket in tickets:
        month = rnd.choices(MONTHS, WEIGHTS)[0]
        year, mon = map(int, month.split("-"))
        days = ((datetime(year + mon // 12, mon % 12 + 1, 1) - datetime(year, mon, 1)).days)
        when = datetime(year, mon, 1) + timedelta(days=rnd.randrange(days), hours=rnd.randint(8, 21),
                                                  minutes=rnd.randrange(60))
        if rnd.random() < RETURNING_SHARE:
            customer = rnd.choice(returning)
        else:
            customer, next_customer = f"C{next_customer}", next_customer + 1
        by_month[month].append([when.strftime("%Y-%m-%d %H:%M"), ticket.get("channel") or "热线", customer,
                                ticket["text"]])
    for month, rows in by_month.items():
        rows.sort()
        with (HERE / f"tickets_{month}.csv").open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            for n, row in enumerate(rows, 1):
                writer.writerow([f"GD{month.replace('-', '')}{n:05d}", *row])
        print(f"tickets_{month}.csv: {len(rows)} tickets")


if __name__ == "__main__":
    main()
