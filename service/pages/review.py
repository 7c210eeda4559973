"""复核: the review queue (``review_queue``, least confident first), each record accepted or corrected
through ``update_record`` with the analyst's name: the correction and its audit entry carry who and when."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import func, select

from cxnlp.errors import ConflictError, LedgerError
from cxnlp.ledger.models import FeedbackRecord
from cxnlp.ledger.records import review_queue, update_record
from cxnlp.taxonomy import SENTIMENTS
from service.deps import ModelDep, SessionDep
from service.pages.auth import Actor, CsrfChecked
from service.pages.records import RecordId
from service.pages.render import highlight, page

router = APIRouter(include_in_schema=False)
QUEUE = 50


def _counts(session) -> dict[str, int]:
    reviewed = session.scalar(select(func.count()).select_from(FeedbackRecord)
                              .where(FeedbackRecord.corrected_at.is_not(None))) or 0
    waiting = session.scalar(select(func.count()).select_from(FeedbackRecord)
                             .where(FeedbackRecord.corrected_at.is_(None))) or 0
    return {"reviewed": reviewed, "waiting": waiting}


@router.get("/review")
def review_page(request: Request, actor: Actor, session: SessionDep, model: ModelDep):
    items = [{"r": r, "text_html": highlight(r.text, r.evidence)} for r in review_queue(session=session, limit=QUEUE)]
    return page(request, "review.html", {"title": "复核", "items": items, "counts": _counts(session),
                                         "categories": list(model.estimator.categories_), "sentiments": SENTIMENTS})


@router.post("/review/{record_id}", dependencies=[CsrfChecked])
def review_submit(request: Request, record_id: RecordId, actor: Actor, session: SessionDep, model: ModelDep,
                  version: Annotated[int, Form()], sentiment: Annotated[str, Form()],
                  categories: Annotated[list[str] | None, Form()] = None):
    """Accepting is recording the labels as they stand (the record leaves the queue, with who and when);
    a fetch gets JSON, a plain form post goes back to the queue."""
    wants_json = "application/json" in request.headers.get("accept", "")
    record = session.get(FeedbackRecord, record_id)
    error, status = None, 200
    if record is None:
        error, status = f"没有记录 {record_id}", 404
    elif record.version != version:
        error, status = "这条记录已被他人修改，请刷新", 409
    else:
        try:
            update_record(session=session, record_id=record_id, actor=actor,
                          changes={"corrected_categories": sorted(set(categories or [])),
                                   "corrected_sentiment": sentiment},
                          known_categories=tuple(model.estimator.categories_))
            session.commit()
        except (LedgerError, ConflictError) as exc:
            session.rollback()
            error, status = str(exc), 409
    if wants_json:
        return JSONResponse(status_code=status, content={"ok": error is None, "error": error, **_counts(session)})
    return RedirectResponse("/review", status_code=303)
