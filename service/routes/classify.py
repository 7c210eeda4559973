"""Real-time classification."""
from __future__ import annotations

from collections.abc import Sequence

import anyio.to_thread
from fastapi import APIRouter, Request, Response

from cxnlp.io import dumps
from cxnlp.prediction import predict_texts
from cxnlp.store import LoadedModel
from service.deps import ClassifyLimiterDep, ModelDep, SettingsDep
from service.schemas import ClassifyRequest, ClassifyResponse

router = APIRouter(prefix="/v1", tags=["classify"])


def _classify(model: LoadedModel, texts: Sequence[str], max_chars: int) -> tuple[bytes, int, int]:
    """The response body, already in the contract's shape (serialized once with orjson rather than
    validated again), and the counts of texts classified and refused."""
    results = predict_texts(model, texts, max_chars=max_chars)
    errors = sum(r.error is not None for r in results)
    payload = {"model_version": model.version, "results": [r.to_dict() for r in results]}
    return dumps(payload), len(results) - errors, errors


@router.post("/classify", response_model=ClassifyResponse, summary="Classify 1 to 1,000 texts")
async def classify(body: ClassifyRequest, model: ModelDep, settings: SettingsDep, limiter: ClassifyLimiterDep,
                   request: Request) -> Response:
    """Results come in input order; an empty or over-long text gets its own ``error``, the rest are classified.

    A small batch is a few milliseconds of CPU and runs on the event loop (a thread hop would cost more);
    a larger one runs on the worker's classify threads, so the event loop keeps answering health checks
    and small requests meanwhile.
    """
    if sum(map(len, body.texts)) <= settings.inline_classify_chars:
        content, done, refused = _classify(model, body.texts, settings.max_text_chars)
    else:
        content, done, refused = await anyio.to_thread.run_sync(
            _classify, model, body.texts, settings.max_text_chars, limiter=limiter)
    metrics = request.app.state.metrics
    metrics.texts.labels("classify").inc(done)
    if refused:
        metrics.text_errors.labels("classify").inc(refused)
    return Response(content=content, media_type="application/json")
