"""Prometheus metrics and the one-JSON-line-per-request access log.

Under ``cxnlp serve --workers N`` a scrape reaches one worker at random, so the figures must be the
sum over all workers: the runner sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory before
``prometheus_client`` is imported, every worker writes its values there, and ``/metrics`` reads them
all (prometheus-client's multiprocess mode). With one process the app keeps its own registry.

The access log holds the method, the route *template*, the status, the duration and a request id:
never a path, a query, a header or a body, so neither customers' words nor the API key reach it.
"""
from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("cxnlp.access")
# A caller's X-Request-ID is kept only when it looks like an id (it goes into logs verbatim).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The service's metrics. ``multiprocess_dir``: the directory every worker writes to (see module doc)."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

        if multiprocess_dir and values.ValueClass.__name__ != "MmapedValue":
            raise RuntimeError("PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is imported")
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("cxnlp_http_requests", "HTTP requests answered", ["method", "route", "status"],
                                registry=r)
        self.latency = Histogram("cxnlp_http_request_duration_seconds", "Time to answer a request",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.exceptions = Counter("cxnlp_http_exceptions", "Requests that ended in an unhandled error (500)",
                                  ["route", "type"], registry=r)
        self.texts = Counter("cxnlp_texts_classified", "Texts classified", ["route"], registry=r)
        self.text_errors = Counter("cxnlp_text_errors", "Texts answered with an error instead of a result",
                                   ["route"], registry=r)
        self.ledger_writes = Counter("cxnlp_ledger_writes", "Feedback sent to the ledger",
                                     ["result"], registry=r)
        self.model = Gauge("cxnlp_model_info", "1 for the model version a worker serves",
                           ["version"], multiprocess_mode="liveall", registry=r)
        self._model_version: str | None = None

    def note_model(self, version: str | None) -> None:
        """Keep ``cxnlp_model_info`` on the version this process serves now (cheap when unchanged)."""
        if version == self._model_version:
            return
        if self._model_version is not None:
            self.model.labels(self._model_version).set(0)
        if version is not None:
            self.model.labels(version).set(1)
        self._model_version = version

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

        if not self.multiprocess_dir:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry), CONTENT_TYPE_LATEST


def request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
            break
    return uuid.uuid4().hex


class Observability:
    """Plain ASGI middleware: counts and times every request, logs one JSON line, echoes ``X-Request-ID``."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.pid = os.getpid()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode("ascii"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            status = 500
            self.metrics.exceptions.labels(_route(scope), type(exc).__name__).inc()
            raise
        finally:
            duration = time.perf_counter() - started
            route = _route(scope)
            method = scope["method"]
            state = getattr(scope.get("app"), "state", None)
            model = getattr(state, "model", None) if state is not None else None
            self.metrics.note_model(getattr(model, "version", None))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(duration)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(_json_line(method=method, route=route, status=status,
                                           duration_ms=round(duration * 1000, 2), request_id=rid, pid=self.pid))


def _route(scope: Scope) -> str:
    """The matched route's template (``/v1/feedback/{record_id}``): bounded label values, no ids or text."""
    route = scope.get("route")
    return getattr(route, "path", None) or "<unmatched>"


def _json_line(**fields: Any) -> str:
    return orjson.dumps({"ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": "request", **fields}).decode()


def configure_access_log() -> None:
    """One JSON object per line on stderr (``cxnlp serve``; tests and embedders configure logging themselves)."""
    if not access_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
