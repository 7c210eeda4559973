"""The FastAPI application: routers, the body-size guard, and the model loaded once in ``lifespan``."""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cxnlp.settings import Settings, get_settings
from cxnlp.store import LoadedModel, load_model
from cxnlp.text import jieba_tokenizer
from service.routes import classify, health


def create_app(model: LoadedModel | None = None, settings: Settings | None = None) -> FastAPI:
    """An app serving ``model`` (default: load the configured model at start-up)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if getattr(app.state, "model", None) is None:
            app.state.model = load_model(settings.model_dir)
            jieba_tokenizer()
        yield

    app = FastAPI(title="cxnlp", version="1.0", lifespan=lifespan,
                  description="Tags Chinese customer feedback with service dimensions and sentiment.")
    app.state.model = model
    app.state.settings = settings

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_body_bytes:
            return JSONResponse(status_code=413, content={
                "detail": f"request body is {int(length)} bytes; the limit is {settings.max_body_bytes}"})
        return await call_next(request)

    app.include_router(health.router)
    app.include_router(classify.router)
    return app
