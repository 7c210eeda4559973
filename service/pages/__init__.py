"""The dashboard (数据看板): Chinese pages served by the API's own process, with its settings and auth,
built from the same library calls as the CLI and the HTTP API. Static assets (ECharts, Swagger UI,
ReDoc) are served from the package: nothing is loaded from a CDN."""
from __future__ import annotations

import secrets

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from service.pages import followups_page, login, model_page, overview, records, review, surveys_page
from service.pages.auth import LoginRequired, login_redirect_target, session_middleware
from service.pages.render import STATIC_DIR

VENDOR = "/static/vendor"


def install(app: FastAPI) -> None:
    """Mount the pages, their assets and the offline /docs and /redoc on ``app`` (made with
    ``docs_url=None, redoc_url=None``). The session secret is made here, before ``cxnlp serve`` forks
    its workers, so every worker accepts every session; a restart signs everyone out."""
    app.add_middleware(session_middleware, secret=secrets.token_urlsafe(32))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, _exc: LoginRequired):
        return RedirectResponse(login_redirect_target(request), status_code=303)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="cxnlp API",
                                   swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url, title="cxnlp API",
                              redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
                              redoc_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png", with_google_fonts=False)

    for module in (login, overview, records, review, followups_page, surveys_page, model_page):
        app.include_router(module.router)
