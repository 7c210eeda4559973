"""Real-time classification."""
from __future__ import annotations

from fastapi import APIRouter, Response

from cxnlp.io import dumps
from cxnlp.prediction import predict_texts
from service.deps import ModelDep, SettingsDep
from service.schemas import ClassifyRequest, ClassifyResponse

router = APIRouter(prefix="/v1", tags=["classify"])


@router.post("/classify", response_model=ClassifyResponse, summary="Classify 1 to 1,000 texts")
async def classify(body: ClassifyRequest, model: ModelDep, settings: SettingsDep) -> Response:
    """Results come in input order; an empty or over-long text gets its own ``error``, the rest are classified.

    The work is a few milliseconds of CPU, so it runs on the event loop (no thread hop), and the
    results, already in the contract's shape, are serialized once with orjson rather than validated again.
    """
    results = predict_texts(model, body.texts, max_chars=settings.max_text_chars)
    payload = {"model_version": model.version, "results": [r.to_dict() for r in results]}
    return Response(content=dumps(payload), media_type="application/json")
