#!/usr/bin/env python3
"""Run both benchmarks, one after the other, and print their tables.

    python benchmarks/run_all.py            # full: whole TEST split; 100k batch, 1M stream, 15 s loads
    python benchmarks/run_all.py --quick    # smoke run: accuracy --limit 500, performance --quick

Each script runs in its own process with this Python; their tables go to stdout, progress to stderr.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK_LIMIT = 500


def run(script: str, args: list[str]) -> int:
    """Run one benchmark script, streaming its output; returns its exit code."""
    argv = [sys.executable, str(HERE / script), *args]
    print(f"\n# {script} {' '.join(args)}\n", flush=True)
    start = time.perf_counter()
    code = subprocess.run(argv).returncode
    print(f"({script} finished in {time.perf_counter() - start:.0f} s, exit {code})", file=sys.stderr, flush=True)
    return code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"accuracy --limit {QUICK_LIMIT} and performance --quick")
    ap.add_argument("--cxnlp", default=None, metavar="CMD", help="passed to both scripts")
    args = ap.parse_args()
    extra = ["--cxnlp", args.cxnlp] if args.cxnlp else []
    codes = [run("accuracy.py", [*(["--limit", str(QUICK_LIMIT)] if args.quick else []), *extra]),
             run("performance.py", [*(["--quick"] if args.quick else []), *extra])]
    sys.exit(max(codes))


if __name__ == "__main__":
    main()
