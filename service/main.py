"""The FastAPI application: routers, error mapping, the body-size guard, metrics and access log, and the
model loaded once in ``lifespan`` (or handed in by ``cxnlp serve``, which loads it before forking workers)."""
from __future__ import annotations

import json
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cxnlp.errors import ConfigError, CxnlpError, DataError, LedgerBusyError, LedgerError, ModelError, NotFoundError
from cxnlp.settings import Settings, get_settings
from cxnlp.store import LoadedModel, load_model
from service import pages
from service.deps import require_api_key
from service.hosts import LOOPBACK_NAMES, HostCheck
from service.observability import Metrics, Observability
from service.routes import classify, feedback, health, ledger, metrics, surveys
from service.routes import model as model_routes

# Library errors → HTTP statuses (the library itself knows nothing of HTTP). A ModelError inside a
# request can only come from a model folder the caller named (reload): bad input, so 422.
ERROR_STATUS = ((NotFoundError, 404), (LedgerBusyError, 503), (LedgerError, 409), (DataError, 422), (ConfigError, 500), (ModelError, 422))


# A busy ledger (another writer holds SQLite's lock) is worth trying again after this many seconds.
RETRY_AFTER = {"Retry-After": "30"}

# The rest of a refused body is still on the wire: the connection must close with the answer, or the
# server would read those bytes as the next request's headers (a 431 or garbage for the next caller).
CLOSE = {"Connection": "close"}


class BodyTooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=f"request body is over the limit of {max_bytes} bytes",
                         headers=CLOSE)


class BodySizeLimit:
    """Refuses a body over the limit with 413: at once when its declared length is too long, else as
    soon as the bytes received pass the limit (chunked bodies declare no length).

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs every
    request through extra tasks and streams, which cost more than classifying a text.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await JSONResponse(status_code=413, headers=CLOSE, content={
                "detail": f"request body is {int(length)} bytes; the limit is {self.max_bytes}"})(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI lets an HTTPException from reading the body through, and the exception
                    # middleware answers it; the except below covers anything that reads it elsewhere.
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await JSONResponse(status_code=413, headers=CLOSE, content={"detail": exc.detail})(scope, receive, send)


def _is_json(content_type: bytes) -> bool:
    """application/json or application/*+json, parameters aside (what FastAPI reads as JSON)."""
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))


def wrong_content_type(request: Request, exc: RequestValidationError) -> Response | None:
    """415 for a JSON route's body not declared JSON: FastAPI hands such a body on as bytes, and its
    422 would be about the body's shape rather than its type."""
    content_type = request.headers.get("content-type", "").encode("latin-1", errors="replace")
    if _is_json(content_type) or not any(e["loc"] == ("body",) and isinstance(e.get("input"), bytes)
                                         for e in exc.errors()):
        return None
    accept = {"POST": "Accept-Post", "PATCH": "Accept-Patch"}.get(request.method, "Accept")
    sent = content_type.decode("latin-1")[:100] or "none"
    return JSONResponse(status_code=415, headers={accept: "application/json"}, content={
        "detail": f"the body must be JSON, sent with Content-Type: application/json (got {sent})"})


def unparsable_body(exc: StarletteHTTPException) -> Response | None:
    """FastAPI answers 400 for a JSON body it cannot decode (not UTF-8, nested too deeply) and Starlette
    for a form it cannot parse, but 422 for a JSON syntax error: all are bad input, so all are 422 in
    the shape of every 422. None for any other HTTP error."""
    if exc.status_code != 400:
        return None
    if isinstance(exc.__context__, MultiPartException):
        error = {"type": "form_invalid", "loc": ["body"], "msg": f"the form cannot be read: {exc.detail}"}
    elif exc.__cause__ is not None and exc.detail == "There was an error parsing the body":
        cause = exc.__cause__
        why = ("the body is not UTF-8 text" if isinstance(cause, UnicodeDecodeError) else
               "the JSON is nested too deeply" if isinstance(cause, RecursionError) else "the body cannot be read as JSON")
        error = {"type": "json_invalid", "loc": ["body"], "msg": why}
    else:
        return None
    return JSONResponse(status_code=422, content={"detail": [error]})


def _needs_key(dependant: Dependant) -> bool:
    return any(d.call is require_api_key or _needs_key(d) for d in dependant.dependencies)


def _document_error_statuses(routes: list) -> None:
    """Put the statuses every route can answer into the OpenAPI document, so clients (and the fuzz
    test) know them: 401 where the key is checked, 413 where a body is read, 415 where it must be JSON."""
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        if _needs_key(route.dependant):
            route.responses.setdefault(401, {"description": "Missing or wrong X-API-Key (when the service has one)"})
        if route.body_field is not None:
            route.responses.setdefault(413, {"description": "The body is over the size limit"})
            if _takes_json(route):
                route.responses.setdefault(415, {"description": "The body is not sent as application/json"})


def _takes_json(route: APIRoute) -> bool:
    """A route whose body is JSON (not a form or an upload)."""
    from fastapi.params import Form

    return route.body_field is not None and not isinstance(route.body_field.field_info, Form)


def create_app(model: LoadedModel | None = None, settings: Settings | None = None,
               metrics_dir: str | None = None, listen_host: str | None = None) -> FastAPI:
    """An app serving ``model`` (default: load the configured model at start-up). ``metrics_dir``: the
    prometheus multiprocess directory when several workers serve (see ``service.observability``);
    ``listen_host``: the address ``cxnlp serve`` listens on, a Host the app answers without a key."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if getattr(app.state, "model", None) is None:
            app.state.model = load_model(settings.model_dir)
            app.state.model.warm_up()
        yield

    # /docs and /redoc are served by service.pages with assets from the package (no CDN).
    app = FastAPI(title="cxnlp", version="1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Tags Chinese customer feedback with service dimensions and sentiment, "
                              "and keeps the root-cause ledger (投诉根源台账).")
    app.state.model = model
    app.state.settings = settings

    app.state.metrics = Metrics(metrics_dir)
    pages.install(app)  # the dashboard (数据看板), its session cookie and the offline API docs
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if not settings.api_key or settings.allowed_hosts.strip():
        app.add_middleware(HostCheck, allowed=[*LOOPBACK_NAMES, listen_host or "",
                                               *settings.allowed_hosts.split(",")])
    app.add_middleware(Observability, metrics=app.state.metrics)  # outermost: sees 413s too

    @app.exception_handler(CxnlpError)
    async def library_error(_request: Request, exc: CxnlpError):
        status = next((code for kind, code in ERROR_STATUS if isinstance(exc, kind)), 500)
        if status == 422:  # the shape every 422 of the API has (FastAPI's validation errors)
            return JSONResponse(status_code=422, content={"detail": [{"type": "invalid", "loc": [], "msg": str(exc)}]})
        return JSONResponse(status_code=status, content={"detail": str(exc)},
                            headers=RETRY_AFTER if status == 503 else None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError):
        """422 naming what is wrong, without echoing the input back (it may be 15 MB of customers'
        words, or hold lone surrogates that no UTF-8 response can carry; ASCII-escaped JSON can)."""
        unsupported = wrong_content_type(_request, exc)
        if unsupported is not None:
            return unsupported
        errors = [{k: v for k, v in e.items() if k not in ("input", "url")} for e in exc.errors()]
        body = json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True)
        return Response(content=body, status_code=422, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return unparsable_body(exc) or await http_exception_handler(request, exc)

    for module in (health, classify, model_routes, feedback, ledger, metrics, surveys):
        _document_error_statuses(module.router.routes)
        app.include_router(module.router)
    return app
