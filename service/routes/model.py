"""Swapping in a retrained model without dropping requests in flight, in every worker."""
from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from cxnlp.errors import ModelError, ModelRootError
from cxnlp.store import LoadedModel, check_model_dir, load_model, model_roots
from service.deps import WriteAccess
from service.schemas import ModelCard, ReloadRequest, ReloadResult

router = APIRouter(prefix="/v1/model", tags=["model"])

# How long the answering worker waits for the others to load the model (each takes about a second).
CONFIRM_SECONDS = 60.0


def _load(folder: Path) -> LoadedModel:
    model = load_model(folder)
    try:
        ModelCard.model_validate(model.card)  # GET /v1/model and this answer must be able to show it
    except ValidationError as exc:
        raise ModelError(f"{folder}: the card does not fit the API's model card: {exc.errors()[0]['msg']} "
                         f"({'.'.join(map(str, exc.errors()[0]['loc']))})") from exc
    model.warm_up()  # the first requests to the new model do not pay for its lazy tables
    return model


@router.post("/reload", response_model=ReloadResult, dependencies=[WriteAccess],
             responses={403: {"description": "The folder is outside CXNLP_MODEL_ROOT"},
                        422: {"description": "The folder is not a loadable model (the reason is in `detail`)"},
                        503: {"description": "Some workers did not confirm the new model (listed in `workers`)"}},
             summary="Load a model folder and swap it in, in every worker")
async def reload_model(request: Request, body: ReloadRequest | None = None):
    """Requests in flight finish with the model they started with; the next ones get the new one. Under
    ``cxnlp serve --workers N`` the answer comes once every worker serves the new model (each worker's
    version is listed), or is a 503 naming the workers that do not."""
    state = request.app.state
    follower = getattr(state, "model_follower", None)
    requested = body.model_dir if body else None
    try:
        if requested:
            folder = check_model_dir(requested, model_roots(state.settings.model_root))
        else:  # the folder being served, again (e.g. retrained in place)
            folder = Path(follower.sync.published()[1]) if follower else state.model.path
        model = await run_in_threadpool(_load, folder)
    except ModelRootError as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from exc
    except ModelError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    if follower is None:  # one process: nothing to coordinate
        state.model = model
        state.model_generation = getattr(state, "model_generation", 0) + 1
        me = {"worker": getattr(state, "worker", 0), "pid": os.getpid(), "generation": state.model_generation,
              "model_version": model.version, "model_dir": str(model.path), "error": None}
        return {**model.card, "workers": [me]}
    generation = await run_in_threadpool(follower.adopt, model)
    statuses = await follower.confirm(generation, CONFIRM_SECONDS)
    missing = []
    for worker, status in enumerate(statuses):
        if status is None or status.generation < generation:
            missing.append(f"worker {worker}: no answer within {CONFIRM_SECONDS:.0f} s")
        elif status.generation > generation:
            missing.append(f"worker {worker}: a later reload (generation {status.generation}) came first")
        elif status.error or status.model_version != model.version:
            missing.append(f"worker {worker}: {status.error or f'loaded {status.model_version}'}; "
                           f"it serves {status.model_version}")
    workers = [vars(s) for s in statuses if s is not None]
    if missing:
        return JSONResponse(status_code=503, content={
            "detail": f"{model.version} is loaded by some workers, not all: " + "; ".join(missing),
            "workers": workers})
    return {**model.card, "workers": workers}
