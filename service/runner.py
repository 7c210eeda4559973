"""`cxnlp serve`: load the model and jieba once, bind the socket, then fork the worker processes.

Forking after the load lets workers share the model's memory pages and start answering at once;
uvicorn's own ``--workers`` would spawn fresh interpreters that each load everything again.
"""
from __future__ import annotations

import gc
import ipaddress
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path

import uvicorn

from cxnlp.errors import ConfigError
from cxnlp.ledger.db import limit_sqlite_heap
from cxnlp.ledger.db import prepare as prepare_ledger
from cxnlp.settings import get_settings
from cxnlp.store import load_model
from service.model_sync import ModelSync, follow


# The SQLite heap (page caches) a worker keeps: five pooled connections filled 2 MB caches each as the
# ledger grew under a soak, with no query faster for it.
SQLITE_HEAP_BYTES = 4 * 2**20


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only for sockets that say so;
    # with protocol 0 every keep-alive response waited ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def check_listen_address(host: str, *, api_key: str | None, allow_unauthenticated: bool) -> None:
    """Without an API key anyone who reaches the port can reload models and write to the ledger: listen
    only on loopback then, unless the operator says explicitly that this is wanted."""
    if api_key or allow_unauthenticated:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(f"refusing to listen on {host} without an API key: anyone who can reach it could "
                          "reload models and write to the ledger. Set CXNLP_API_KEY, listen on 127.0.0.1, "
                          "or pass --allow-unauthenticated to accept unauthenticated requests from the network")


def serve(*, host: str, port: int, model_dir: Path | None, workers: int = 1,
          allow_unauthenticated: bool = False) -> None:
    from service.lifecycle import die_with_parent, limit_malloc_arenas, trim_malloc_every, uvicorn_options

    settings = get_settings()
    check_listen_address(host, api_key=settings.api_key, allow_unauthenticated=allow_unauthenticated)
    limit_malloc_arenas()  # before the first thread (model loading may start some)
    model = load_model(model_dir or settings.model_dir)
    model.warm_up()
    prepare_ledger(settings.ledger_url)  # schema ready before workers fork (they would race otherwise)
    limit_sqlite_heap(SQLITE_HEAP_BYTES)  # process-wide: every worker inherits it
    metrics_dir = None
    if workers > 1:
        # Metrics summed over workers: prometheus-client reads this before its first import (below).
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cxnlp-metrics-")
    from service.main import create_app
    from service.observability import configure_access_log

    configure_access_log()
    app = create_app(model=model, settings=settings, metrics_dir=metrics_dir, listen_host=host)
    # Everything loaded so far lives as long as the process: keep it out of the garbage collector's
    # scans (shorter pauses, and forked workers do not copy pages just to update GC headers).
    gc.collect()
    gc.freeze()
    sock = _bind(host, port)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=10,
                            loop="auto", **uvicorn_options(settings))  # uvloop when installed
    print(f"cxnlp serving {model.version} on http://{host}:{port} ({workers} worker(s)); docs at /docs", flush=True)
    if workers <= 1:
        trim_malloc_every()
        uvicorn.Server(config).run(sockets=[sock])
        return
    parent = os.getpid()
    sync = ModelSync.create(model.path, workers)  # reloads reach every worker through it
    children = []
    for worker in range(workers):
        pid = os.fork()
        if pid == 0:
            die_with_parent(parent)
            trim_malloc_every()  # threads do not survive fork: each worker starts its own
            follow(app, sync, worker)
            uvicorn.Server(config).run(sockets=[sock])
            os._exit(0)
        children.append(pid)

    def forward(signum, _frame):
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGHUP, lambda *_: sync.publish())  # reload the current folder in every worker
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        for child in children:
            try:
                os.waitpid(child, 0)
            except ChildProcessError:
                pass
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
