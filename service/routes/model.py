"""Swapping in a retrained model without dropping requests in flight."""
from __future__ import annotations

import os
import signal

from fastapi import APIRouter, Request

from cxnlp.store import load_model
from service.deps import WriteAccess
from service.schemas import ModelCard, ReloadRequest

router = APIRouter(prefix="/v1/model", tags=["model"])


@router.post("/reload", response_model=ModelCard, dependencies=[WriteAccess],
             summary="Load a model folder and swap it in")
def reload_model(request: Request, body: ReloadRequest | None = None):
    """Requests in flight finish with the model they started with; the next ones get the new one.
    Under ``cxnlp serve --workers N`` the other workers are told to reload too."""
    state = request.app.state
    folder = (body.model_dir if body else None) or str(state.model.path)
    state.model = load_model(folder)
    if getattr(state, "prefork_parent", None):
        os.kill(state.prefork_parent, signal.SIGHUP)
    return state.model.card
