"""Dependencies: the loaded model, the settings, a ledger session and the API key check, as
Annotated aliases that routes declare."""
from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

import anyio
from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from cxnlp.ledger.db import session_scope
from cxnlp.ledger.rules import LedgerRules
from cxnlp.settings import Settings
from cxnlp.store import LoadedModel


# Dependencies that do no I/O are coroutines: FastAPI runs a plain function in a worker thread, and
# that hop costs more per request than the classification itself.
async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_model(request: Request) -> LoadedModel:
    model = getattr(request.app.state, "model", None)
    if model is None:
        raise HTTPException(status_code=503, detail="model is not loaded yet")
    return model


def get_session(request: Request) -> Iterator[Session]:
    """One ledger session per request, committed before the response is sent (so an acknowledged
    write is on disk)."""
    with session_scope(request.app.state.settings.ledger_url) as session:
        yield session


async def get_classify_limiter(request: Request) -> anyio.CapacityLimiter:
    """The threads big batches are classified on (made on first use, so each forked worker has its own):
    big batches queue among themselves, not in front of health checks and small requests."""
    limiter = getattr(request.app.state, "classify_limiter", None)
    if limiter is None:
        limiter = request.app.state.classify_limiter = anyio.CapacityLimiter(
            request.app.state.settings.classify_threads)
    return limiter


def get_rules(request: Request) -> LedgerRules:
    rules = getattr(request.app.state, "ledger_rules", None)
    if rules is None:
        rules = request.app.state.ledger_rules = LedgerRules.load(request.app.state.settings.ledger_rules)
    return rules


# Declared as a security scheme, so the OpenAPI document (and /docs) shows which operations need it.
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="Needed when the service runs with CXNLP_API_KEY set")


async def require_api_key(request: Request, x_api_key: Annotated[str | None, Depends(_api_key_header)]) -> None:
    """401 unless the configured key (if any) came in ``X-API-Key``.

    Compared as bytes in constant time: header values arrive decoded as latin-1, so encoding them back
    gives the bytes sent, and a non-ASCII key can neither crash ``compare_digest`` nor leak timing.
    The key is never put in a message or a log line.
    """
    expected = request.app.state.settings.api_key
    if not expected:
        return
    sent = (x_api_key or "").encode("latin-1", errors="replace")
    if not (x_api_key and hmac.compare_digest(sent, expected.encode("utf-8"))):
        raise HTTPException(status_code=401, detail="missing or wrong X-API-Key",
                            headers={"WWW-Authenticate": "ApiKey"})


ModelDep = Annotated[LoadedModel, Depends(get_model)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
ClassifyLimiterDep = Annotated[anyio.CapacityLimiter, Depends(get_classify_limiter)]
RulesDep = Annotated[LedgerRules, Depends(get_rules)]
# Writes, and reads that return customers' words (records, review lists, summaries, metrics), need the key.
KeyRequired = Depends(require_api_key)
WriteAccess = KeyRequired
