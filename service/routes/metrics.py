"""Prometheus metrics (behind the API key when one is set: route names and volumes are not public)."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service.deps import KeyRequired

router = APIRouter(tags=["health"])


@router.get("/metrics", dependencies=[KeyRequired], response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
            summary="Request counts, latencies, texts classified, ledger writes and the model version")
def metrics(request: Request) -> Response:
    body, content_type = request.app.state.metrics.exposition()
    return Response(content=body, media_type=content_type)
