"""Who may see the pages: with ``CXNLP_API_KEY`` set, the key once on a login form, then a signed
session cookie (HttpOnly, SameSite=Strict); without a key the pages are open (``cxnlp serve`` then
listens on loopback only). Every form and state-changing fetch carries a CSRF token bound to the
session. The key is only ever read from a POST body, compared in constant time, never stored, put in
a URL or logged."""
from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp

SESSION_COOKIE = "cxnlp_session"
SESSION_HOURS = 12
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
DEFAULT_ACTOR = "analyst"
MAX_ACTOR = 100


class LoginRequired(Exception):
    """Raised by ``require_login``; answered with a redirect to the login form."""


def session_middleware(app: ASGIApp, secret: str) -> SessionMiddleware:
    return SessionMiddleware(app, secret_key=secret, session_cookie=SESSION_COOKIE,
                             max_age=SESSION_HOURS * 3600, same_site="strict", https_only=False)


def login_required(request: Request) -> bool:
    return bool(request.app.state.settings.api_key)


def is_logged_in(request: Request) -> bool:
    return not login_required(request) or request.session.get("auth") is True


def key_matches(request: Request, sent: str) -> bool:
    expected = request.app.state.settings.api_key or ""
    return bool(sent) and hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8"))


def csrf_token(request: Request) -> str:
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = request.session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def current_actor(request: Request) -> str:
    return request.session.get("actor") or DEFAULT_ACTOR


def clean_actor(name: str | None) -> str:
    name = " ".join((name or "").split())[:MAX_ACTOR]
    return name or DEFAULT_ACTOR


def safe_next(target: str | None) -> str:
    """Only a path on this site (no //host, no scheme): the login form must not redirect elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def require_login(request: Request) -> str:
    """The signed-in analyst's name (the actor of their changes); a redirect to /login otherwise."""
    if not is_logged_in(request):
        raise LoginRequired()
    return current_actor(request)


async def require_csrf(request: Request) -> None:
    """403 unless the request carries the session's CSRF token (form field or header)."""
    expected = request.session.get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not (expected and sent and hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8"))):
        raise HTTPException(status_code=403, detail="CSRF token missing or wrong: reload the page and try again")


def login_redirect_target(request: Request) -> str:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(path, safe="")


Actor = Annotated[str, Depends(require_login)]
CsrfChecked = Depends(require_csrf)
