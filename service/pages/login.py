"""Sign in (the API key once, when the service has one) and out; the name an analyst's changes carry."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from service.pages.auth import (CsrfChecked, clean_actor, csrf_token, is_logged_in, key_matches, login_required,
                                safe_next)
from service.pages.render import page

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_form(request: Request, next: str = "/"):
    return page(request, "login.html", {"next": safe_next(next), "error": None, "logged_in": is_logged_in(request)})


@router.post("/login", dependencies=[CsrfChecked])
def login(request: Request, name: Annotated[str, Form(max_length=200)] = "",
          key: Annotated[str, Form(max_length=4096)] = "", next: Annotated[str, Form(max_length=2000)] = "/"):
    if login_required(request) and not key_matches(request, key):
        return page(request, "login.html", {"next": safe_next(next), "error": "密钥不正确", "logged_in": False},
                    status_code=401)
    request.session.clear()  # a fresh session (and CSRF token) at every sign-in
    request.session["auth"] = True
    request.session["actor"] = clean_actor(name)
    csrf_token(request)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request):
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
