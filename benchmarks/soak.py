#!/usr/bin/env python3
"""A bounded soak test: `cxnlp serve --workers 2` on 127.0.0.1 under mixed traffic as users send it.

For ``--seconds`` (default 600) it keeps ``--connections`` requests in flight: one-text classify (60 %),
50-text classify (10 %), POST /v1/feedback with new source ids (15 %), the month summary (5 %), the review
queue (5 %) and /healthz (5 %). Every 5 s it samples each worker's RSS and USS (the pages only that
worker holds: what it really costs beyond the model pages shared with its parent). It prints one JSON
object: per worker RSS at the start (after a 20 s warm-up) and the end with the growth in %, the growth
in each half of the run (a cache filling to its bound grows in the first half and stops; a leak keeps
growing in the second), the curve (RSS and USS every ``--curve-every`` seconds, with the feedback
records written so far), the one-text classify p50 and p99 in the first and the last fifth of the run
and their ratio, and counts of requests, non-2xx and errors. Targets (issue 10): RSS growth per worker
≤ 10 %, end p99 within 2x the start p99.

    python benchmarks/soak.py                 # 10 minutes
    python benchmarks/soak.py --seconds 120   # a shorter look
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ROOT / "data_samples" / "ledger" / "tickets_texts.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))], 2)


async def run(args: argparse.Namespace) -> dict:
    texts = [json.loads(line)["text"] for line in TEXTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="cxnlp-soak-"))
    env = {**os.environ, "CXNLP_LEDGER_URL": f"sqlite:///{tmp / 'ledger.db'}", "PYTHONPATH": str(ROOT)}
    env.pop("CXNLP_API_KEY", None)
    server = subprocess.Popen([sys.executable, "-m", "cxnlp", "serve", "--port", str(port), "--workers", "2"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    rss: dict[int, list[tuple[float, int, int]]] = {}  # pid: (seconds, RSS, USS)
    written: list[tuple[float, int]] = []  # (seconds, feedback posts answered 201 so far)
    one_text: list[tuple[float, float]] = []
    counts = {"requests": 0, "non_2xx": 0, "errors": 0, "feedback_created": 0}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(300):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            workers = psutil.Process(server.pid).children()
            start = time.monotonic()
            deadline = start + args.warmup + args.seconds
            month = time.strftime("%Y-%m")
            serial = 0

            async def one_request(rng: random.Random) -> None:
                nonlocal serial
                roll = rng.random()
                t0 = time.monotonic()
                try:
                    if roll < 0.60:
                        r = await http.post("/v1/classify", json={"texts": [rng.choice(texts)]})
                    elif roll < 0.70:
                        r = await http.post("/v1/classify", json={"texts": rng.sample(texts, 50)})
                    elif roll < 0.85:
                        serial += 1
                        r = await http.post("/v1/feedback", json={"text": rng.choice(texts), "channel": "热线",
                                                                  "source_id": f"soak-{serial}"})
                    elif roll < 0.90:
                        r = await http.get("/v1/ledger/summary", params={"month": month})
                    elif roll < 0.95:
                        r = await http.get("/v1/review", params={"limit": 50})
                    else:
                        r = await http.get("/healthz")
                    counts["non_2xx"] += not 200 <= r.status_code < 300
                    counts["feedback_created"] += r.status_code == 201
                except httpx.HTTPError:
                    counts["errors"] += 1
                    return
                counts["requests"] += 1
                if roll < 0.60:
                    one_text.append((t0 - start, (time.monotonic() - t0) * 1000))

            async def connection(seed: int) -> None:
                rng = random.Random(seed)
                while time.monotonic() < deadline:
                    await one_request(rng)

            async def sampler() -> None:
                while time.monotonic() < deadline:
                    now = time.monotonic() - start
                    written.append((now, counts["feedback_created"]))
                    for w in workers:
                        try:
                            mem = w.memory_full_info()
                            rss.setdefault(w.pid, []).append((now, mem.rss, mem.uss))
                        except psutil.Error:
                            pass
                    await asyncio.sleep(5)

            await asyncio.gather(sampler(), *(connection(k) for k in range(args.connections)))
    finally:
        server.terminate()
        server.wait(timeout=30)
    begin, end = args.warmup, args.warmup + args.seconds
    fifth = args.seconds / 5
    first = [ms for t, ms in one_text if begin <= t < begin + fifth]
    last = [ms for t, ms in one_text if t >= end - fifth]
    per_worker = {}
    mb = lambda b: round(b / 2**20, 1)  # noqa: E731
    pct = lambda a, b: round(100 * (b - a) / a, 1)  # noqa: E731
    for pid, samples in rss.items():
        after = [(t, r, u) for t, r, u in samples if t >= begin]
        if not after:
            continue
        middle = min(after, key=lambda s: abs(s[0] - (begin + end) / 2))
        (_, r0, u0), (_, r1, u1), (_, r2, u2) = after[0], middle, after[-1]
        per_worker[pid] = {"rss_start_mb": mb(r0), "rss_end_mb": mb(r2), "growth_pct": pct(r0, r2),
                           "growth_pct_first_half": pct(r0, r1), "growth_pct_second_half": pct(r1, r2),
                           "uss_start_mb": mb(u0), "uss_end_mb": mb(u2), "uss_growth_pct": pct(u0, u2)}
    curve = []
    next_t = 0.0
    for k, (t, feedback) in enumerate(written):
        if t + 2.5 >= next_t or k == len(written) - 1:
            row = {"s": round(t), "feedback": feedback}
            for w, (pid, samples) in enumerate(rss.items()):
                near = min(samples, key=lambda s: abs(s[0] - t))
                row[f"rss_mb_{w}"], row[f"uss_mb_{w}"] = mb(near[1]), mb(near[2])
            curve.append(row)
            next_t = t + args.curve_every
    p99_start, p99_end = percentile(first, 99), percentile(last, 99)
    return {"seconds": args.seconds, "connections": args.connections, **counts,
            "requests_per_s": round(counts["requests"] / (args.warmup + args.seconds), 1),
            "workers": per_worker, "curve": curve,
            "classify_1_text_ms": {"p50_start": percentile(first, 50), "p99_start": p99_start,
                                   "p50_end": percentile(last, 50), "p99_end": p99_end,
                                   "p99_end_over_start": round(p99_end / p99_start, 2) if p99_start and p99_end else None},
            "load_average": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--warmup", type=float, default=20)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--curve-every", type=float, default=60, help="seconds between the points of the RSS curve")
    print(json.dumps(asyncio.run(run(ap.parse_args())), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
