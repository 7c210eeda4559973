"""Liveness, readiness and the model card."""
from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.deps import ModelDep
from service.schemas import Health, ModelCard

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz(request: Request) -> Health:
    model = getattr(request.app.state, "model", None)
    return Health(status="ok" if model else "loading", model_version=model.version if model else None,
                  worker=getattr(request.app.state, "worker", 0), pid=os.getpid())


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}},
            summary="The model is loaded: which one, in which worker")
def readyz(request: Request):
    model = getattr(request.app.state, "model", None)
    worker = getattr(request.app.state, "worker", 0)
    if model is None:
        loading = Health(status="loading", worker=worker, pid=os.getpid())
        return JSONResponse(status_code=503, content=loading.model_dump())
    return Health(status="ok", model_version=model.version, worker=worker, pid=os.getpid())


@router.get("/v1/model", response_model=ModelCard, tags=["model"], summary="The loaded model's card")
def model_card(model: ModelDep) -> ModelCard:
    return ModelCard.model_validate(model.card)
