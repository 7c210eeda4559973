#!/usr/bin/env python3
"""A small HTTP load generator (asyncio + httpx), the fallback when wrk is not installed.

It keeps ``--connections`` requests in flight against one URL on this machine, cycling through the
JSON bodies in ``--bodies`` (a JSON list of strings), and stops at ``--duration`` seconds or
``--max-requests`` requests, whichever comes first. Prints one JSON object: requests, requests/s,
p50/p99 latency in ms, non-2xx responses and transport errors. Being Python, it uses far more CPU
per request than wrk, so on a small machine its figures are lower bounds for the server.

    python benchmarks/loadgen.py --url http://127.0.0.1:8000/v1/classify --bodies bodies.json -c 4 -d 5
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Tally:
    """Shared by all connections of one run."""

    sent: int = 0
    non_2xx: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0-100) of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, round(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def connection(client, url: str, bodies: list[bytes], offset: int, deadline: float,
                     max_requests: int, tally: Tally) -> None:
    """One keep-alive connection sending requests back to back until the time or count bound."""
    i = offset
    while time.perf_counter() < deadline and tally.sent < max_requests:
        tally.sent += 1
        body = bodies[i % len(bodies)]
        i += 1
        start = time.perf_counter()
        try:
            response = await client.post(url, content=body, headers={"Content-Type": "application/json"})
            await response.aread()
        except Exception:  # noqa: BLE001 - any transport failure counts as an error, like wrk's socket errors
            tally.errors += 1
            continue
        tally.latencies_ms.append((time.perf_counter() - start) * 1000)
        if not 200 <= response.status_code < 300:
            tally.non_2xx += 1


async def run(url: str, bodies: list[bytes], connections: int, duration: float, max_requests: int,
              timeout: float) -> dict:
    """Drive the load and summarize it."""
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    tally = Tally()
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        start = time.perf_counter()
        deadline = start + duration
        await asyncio.gather(*(connection(client, url, bodies, k, deadline, max_requests, tally)
                               for k in range(connections)))
        seconds = time.perf_counter() - start
    lat = sorted(tally.latencies_ms)
    done = len(lat)
    return {"tool": "python-httpx", "requests": done, "seconds": seconds, "requests_per_s": done / seconds,
            "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
            "non_2xx": tally.non_2xx, "socket_errors": tally.errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="http://127.0.0.1:PORT/path (loopback only)")
    ap.add_argument("--bodies", type=Path, required=True, help="JSON list of request bodies (strings)")
    ap.add_argument("-c", "--connections", type=int, default=4)
    ap.add_argument("-d", "--duration", type=float, default=15.0, help="seconds (at most 300)")
    ap.add_argument("--max-requests", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    args = ap.parse_args()
    if urlsplit(args.url).hostname not in LOOPBACK:
        raise SystemExit("loadgen only targets this machine (127.0.0.1, localhost, ::1)")
    bodies = [b.encode("utf-8") for b in json.loads(args.bodies.read_text(encoding="utf-8"))]
    result = asyncio.run(run(args.url, bodies, args.connections, min(args.duration, 300.0),
                             args.max_requests, args.timeout))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
