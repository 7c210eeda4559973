"""`cxnlp serve` workers keep their heap small: glibc's malloc arenas capped, free pages handed back."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from service import lifecycle

ROOT = Path(__file__).resolve().parent.parent
glibc_only = pytest.mark.skipif(lifecycle._glibc() is None, reason="malloc tuning is for glibc")

# Twelve threads, all alive at once, each allocating blocks too big for Python's own allocator; then
# glibc's malloc_info says how many heaps (arenas) the process has.
ARENAS_PROBE = textwrap.dedent("""
    import ctypes, sys, tempfile, threading
    sys.path.insert(0, {root!r})
    from service.lifecycle import limit_malloc_arenas
    if {limit}:
        assert limit_malloc_arenas()
    barrier = threading.Barrier(12)
    def work():
        barrier.wait()
        keep = [bytearray(3000 + i % 5000) for i in range(2000)]
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads: t.start()
    for t in threads: t.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    path = tempfile.mktemp()
    fp = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(fp))
    libc.fclose(ctypes.c_void_p(fp))
    print(open(path).read().count("<heap nr="))
""")


def _heaps(limit: bool) -> int:
    code = ARENAS_PROBE.format(root=str(ROOT), limit=limit)
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return int(out.stdout.split()[-1])


@glibc_only
def test_threads_share_two_malloc_arenas_once_capped():
    assert _heaps(limit=False) > lifecycle.MALLOC_ARENAS  # the probe does make arenas of its own
    assert _heaps(limit=True) <= lifecycle.MALLOC_ARENAS


@glibc_only
def test_the_operators_malloc_arena_max_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert lifecycle.limit_malloc_arenas() is False


def test_a_worker_trims_its_heap_periodically(monkeypatch):
    trimmed = threading.Event()

    class FakeLibc:
        def malloc_trim(self, pad: int) -> int:
            assert pad == 0
            trimmed.set()
            return 1

    monkeypatch.setattr(lifecycle, "_glibc", FakeLibc)
    thread = lifecycle.trim_malloc_every(0.01)
    assert thread is not None and thread.daemon
    assert trimmed.wait(5)


def test_without_glibc_nothing_is_tuned(monkeypatch):
    monkeypatch.setattr(lifecycle, "_glibc", lambda: None)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert lifecycle.limit_malloc_arenas() is False
    assert lifecycle.trim_malloc_every(0.01) is None
