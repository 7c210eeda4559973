"""The FastAPI application: routers, error mapping, the body-size guard, and the model loaded once
in ``lifespan`` (or handed in by ``cxnlp serve``, which loads it before forking workers)."""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cxnlp.errors import ConfigError, CxnlpError, DataError, LedgerError, ModelError, NotFoundError
from cxnlp.settings import Settings, get_settings
from cxnlp.store import LoadedModel, load_model
from service.routes import classify, feedback, health, ledger, surveys
from service.routes import model as model_routes

# Library errors → HTTP statuses (the library itself knows nothing of HTTP).
ERROR_STATUS = ((NotFoundError, 404), (LedgerError, 409), (DataError, 422), (ConfigError, 500), (ModelError, 500))


class BodySizeLimit:
    """Refuses a request whose declared body is over the limit (413) before anything reads it.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs every
    request through extra tasks and streams, which cost more than classifying a text.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_bytes:
                response = JSONResponse(status_code=413, content={
                    "detail": f"request body is {int(length)} bytes; the limit is {self.max_bytes}"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(model: LoadedModel | None = None, settings: Settings | None = None) -> FastAPI:
    """An app serving ``model`` (default: load the configured model at start-up)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if getattr(app.state, "model", None) is None:
            app.state.model = load_model(settings.model_dir)
            app.state.model.warm_up()
        yield

    app = FastAPI(title="cxnlp", version="1.0", lifespan=lifespan,
                  description="Tags Chinese customer feedback with service dimensions and sentiment, "
                              "and keeps the root-cause ledger (投诉根源台账).")
    app.state.model = model
    app.state.settings = settings

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    @app.exception_handler(CxnlpError)
    async def library_error(_request: Request, exc: CxnlpError):
        status = next((code for kind, code in ERROR_STATUS if isinstance(exc, kind)), 500)
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    for module in (health, classify, model_routes, feedback, ledger, surveys):
        app.include_router(module.router)
    return app
