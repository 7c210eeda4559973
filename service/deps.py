"""Dependencies: the loaded model, the settings, a ledger session and the API key check, as
Annotated aliases that routes declare."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
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


def get_rules(request: Request) -> LedgerRules:
    rules = getattr(request.app.state, "ledger_rules", None)
    if rules is None:
        rules = request.app.state.ledger_rules = LedgerRules.load(request.app.state.settings.ledger_rules)
    return rules


async def require_api_key(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> None:
    expected = request.app.state.settings.api_key
    if expected and not (x_api_key and secrets.compare_digest(x_api_key, expected)):
        raise HTTPException(status_code=401, detail="missing or wrong X-API-Key")


ModelDep = Annotated[LoadedModel, Depends(get_model)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
RulesDep = Annotated[LedgerRules, Depends(get_rules)]
WriteAccess = Depends(require_api_key)
