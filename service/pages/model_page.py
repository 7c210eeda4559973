"""模型: the loaded model's card, the corrections made since it was trained, retraining in the background
(``service.pages.retrain``) and promoting a candidate through the API's own reload path, which reaches
every worker."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse

from cxnlp.errors import CxnlpError
from cxnlp.ledger.dashboard import corrections_since
from service.deps import ModelDep, SessionDep
from service.pages import retrain
from service.pages.auth import Actor, CsrfChecked
from service.pages.render import page
from service.routes.model import reload_model
from service.schemas import ReloadRequest

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> Path:
    return retrain.candidates_root(request.app.state.settings.model_root)


def trained_at(card: dict) -> datetime | None:
    try:
        return datetime.fromisoformat(card["created"]).astimezone(timezone.utc).replace(tzinfo=None)
    except (KeyError, TypeError, ValueError):
        return None


def figures(cv: dict | None) -> dict:
    """The cross-validated figures shown side by side (macro F1, per-category F1, sentiment accuracy)."""
    cv = cv or {}
    return {"macro_f1": cv.get("macro_f1"),
            "categories": {c: v.get("f1") for c, v in (cv.get("categories") or {}).items()},
            "sentiment_accuracy": (cv.get("sentiment") or {}).get("accuracy"),
            "rows": cv.get("n_category_rows")}


@router.get("/model")
def model_view(request: Request, actor: Actor, session: SessionDep, model: ModelDep):
    card = model.card
    since = trained_at(card)
    jobs = retrain.list_jobs(_root(request))
    return page(request, "model.html", {
        "title": "模型", "card": card, "version": model.version, "model_dir": str(model.path),
        "corrections": corrections_since(session, since), "current": figures(card.get("metrics", {}).get("cross_validation")),
        "jobs": [{"job": j, "figures": figures(j.report)} for j in jobs],
        "message": request.query_params.get("message"), "running": any(j.state == "running" for j in jobs)})


@router.post("/model/retrain", dependencies=[CsrfChecked])
def model_retrain(request: Request, actor: Actor):
    if any(j.state == "running" for j in retrain.list_jobs(_root(request))):
        raise HTTPException(status_code=409, detail="已有训练任务在运行")
    try:
        retrain.start_job(ledger_url=request.app.state.settings.ledger_url, root=_root(request))
    except (CxnlpError, OSError) as exc:
        raise HTTPException(status_code=500, detail=f"无法开始训练：{exc}") from exc
    return RedirectResponse("/model", status_code=303)


@router.get("/model/jobs")
def model_jobs(request: Request, actor: Actor):
    return JSONResponse([j.to_dict() for j in retrain.list_jobs(_root(request))])


@router.post("/model/promote", dependencies=[CsrfChecked])
async def model_promote(request: Request, actor: Actor, job: Annotated[str, Form(max_length=100)]):
    """The candidate goes through ``POST /v1/model/reload``'s own code: checked against the model roots,
    loaded, then swapped in every worker."""
    found = retrain.find_job(job, _root(request))
    if found is None or found.state != "done":
        raise HTTPException(status_code=404, detail="没有这个已完成的候选模型")
    result = await reload_model(request, ReloadRequest(model_dir=str(found.model_dir.resolve())))
    if isinstance(result, JSONResponse):
        return page(request, "message.html", {"title": "模型", "message": result.body.decode("utf-8")},
                    status_code=result.status_code)
    workers = len(result["workers"])
    message = f"已启用 {result['name']}-{result['version']}（{workers} 个进程）"
    return RedirectResponse("/model?" + urlencode({"message": message}), status_code=303)
