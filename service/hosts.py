"""The Host-header check of a service without an API key (DNS rebinding).

A web page can make a browser send requests to 127.0.0.1 under a name the page's owner controls
(``attacker.example`` re-pointed at 127.0.0.1): the browser then lets that page read the answers, so a
keyless service on loopback would hand customers' words to any site its user visits. Such requests
carry the attacker's name in ``Host``; a keyless service answers only the loopback names, the address
it listens on, IP literals (no rebinding goes through them) and ``CXNLP_ALLOWED_HOSTS``.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def host_name(header: str) -> str:
    """The name in a Host header, without port, brackets or trailing dot, lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header[1:]
    if header.count(":") == 1:
        header = header.split(":", 1)[0]
    return header.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheck:
    """400 for a request whose Host is not allowed (plain ASGI, like the body-size guard)."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(host_name(h) for h in allowed if h.strip())

    def permits(self, header: str | None) -> bool:
        if header is None:  # HTTP/1.0 without Host: no browser sends that
            return True
        name = host_name(header)
        return name in self.allowed or _is_ip(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw = dict(scope["headers"]).get(b"host")
        if not self.permits(None if raw is None else raw.decode("latin-1")):
            await JSONResponse(status_code=400, content={
                "detail": "this Host is not served: without an API key the service answers only its loopback "
                          "names, its listen address and CXNLP_ALLOWED_HOSTS"})(scope, receive, send)
            return
        await self.app(scope, receive, send)
