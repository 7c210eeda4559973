"""Is a small request stuck behind big ones? Latency of a one-text `POST /v1/classify` and of `GET /healthz`
on an idle `cxnlp serve`, then while CLIENTS clients post 1,000-text batches back to back.

Prints a Markdown table (or JSON with --json); asserts nothing. Run it against another checkout with
``--src DIR`` (e.g. a release, for before/after figures): the server is started from that folder.

    python benchmarks/responsiveness.py                    # this checkout, 1 worker, 20 s under load
    python benchmarks/responsiveness.py --src /tmp/old     # the same against another checkout
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_header, machine_info, markdown_table, stop_group  # noqa: E402
from loadgen import percentile  # noqa: E402
from performance import free_port, wait_ready  # noqa: E402

BATCH = 1000
ONE_TEXT = {"texts": ["等了两个小时没人处理，客服态度也很差"]}


def batch_body() -> bytes:
    with (REPO / "data_samples" / "feedback_labeled.csv").open(encoding="utf-8-sig", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    return json.dumps({"texts": (texts * (BATCH // len(texts) + 1))[:BATCH]}, ensure_ascii=False).encode()


def probe(base: str, until: float, min_count: int) -> dict[str, list[float]]:
    """Alternate a one-text classify and /healthz on one keep-alive connection; latencies in ms."""
    found: dict[str, list[float]] = {"classify 1 text": [], "/healthz": []}
    with httpx.Client(base_url=base, timeout=120) as http:
        while time.monotonic() < until or len(found["/healthz"]) < min_count:
            for name, call in (("classify 1 text", lambda: http.post("/v1/classify", json=ONE_TEXT)),
                               ("/healthz", lambda: http.get("/healthz"))):
                start = time.perf_counter()
                r = call()
                if r.status_code == 200:
                    found[name].append((time.perf_counter() - start) * 1000)
            time.sleep(0.02)
    return found


def measure(base: str, clients: int, seconds: float) -> tuple[dict[str, list[float]], float]:
    """Probe latencies while ``clients`` threads post batches; returns them and the texts classified per second."""
    body = batch_body()
    stop = threading.Event()
    answered = [0]

    def big_client() -> None:
        with httpx.Client(base_url=base, timeout=300) as http:
            while not stop.is_set():
                r = http.post("/v1/classify", content=body, headers={"content-type": "application/json"})
                answered[0] += r.status_code == 200

    threads = [threading.Thread(target=big_client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # let every big client have a batch in flight
    start, before = time.perf_counter(), answered[0]
    found = probe(base, time.monotonic() + seconds, 20)
    rate = (answered[0] - before) * BATCH / (time.perf_counter() - start)
    stop.set()
    for t in threads:
        t.join()
    return found, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=REPO, help="checkout to serve from (default: this one)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clients", type=int, default=4, help="clients posting 1,000-text batches")
    parser.add_argument("--seconds", type=float, default=20, help="how long to probe under load")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "serve.log"
        env = {**os.environ, "CXNLP_LEDGER_URL": f"sqlite:///{tmp}/ledger.db", "PYTHONPATH": str(args.src)}
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "cxnlp", "serve", "--port", str(port),
                                     "--workers", str(args.workers)], cwd=args.src, env=env, stdout=out,
                                    stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_ready(proc, port, log)
            idle = probe(base, time.monotonic() + 3, 50)
            loaded, rate = measure(base, args.clients, args.seconds)
        finally:
            stop_group(proc)

    rows, figures = [], {}
    for condition, found in (("idle", idle), (f"{args.clients} clients × {BATCH}-text batches", loaded)):
        for name, values in found.items():
            values = sorted(values)
            stats = {"n": len(values), "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
                     "max_ms": values[-1] if values else None}
            figures[f"{condition} / {name}"] = stats
            rows.append([condition, name, stats["n"], f"{stats['p50_ms']:.1f}", f"{stats['p99_ms']:.1f}",
                         f"{stats['max_ms']:.1f}"])
    figures["texts per second in batches under load"] = round(rate)
    if args.json:
        print(json.dumps({"src": str(args.src), "workers": args.workers, **figures}, ensure_ascii=False, indent=2))
        return
    print(machine_header(machine_info()))
    print(f"\nserved from {args.src}, {args.workers} worker(s); batches classified at {rate:,.0f} texts/s while probing\n")
    print(markdown_table(["condition", "request", "n", "p50 ms", "p99 ms", "max ms"], rows))


if __name__ == "__main__":
    main()
