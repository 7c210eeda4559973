"""Real-time classification."""
from __future__ import annotations

from fastapi import APIRouter

from cxnlp.prediction import predict_texts
from service.deps import ModelDep, SettingsDep
from service.schemas import ClassifyRequest, ClassifyResponse

router = APIRouter(prefix="/v1", tags=["classify"])


@router.post("/classify", response_model=ClassifyResponse, summary="Classify 1 to 1,000 texts")
def classify(body: ClassifyRequest, model: ModelDep, settings: SettingsDep) -> dict:
    """Results come in input order; an empty or over-long text gets its own ``error``, the rest are classified."""
    results = predict_texts(model, body.texts, max_chars=settings.max_text_chars)
    return {"model_version": model.version, "results": [r.to_dict() for r in results]}
