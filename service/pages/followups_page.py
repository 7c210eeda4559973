"""回访: the follow-up calls to make, earliest due first (``list_followups``, as ``GET /v1/followups``),
each recorded with a score 1–5 and a note through ``record_followup`` (as ``POST /v1/followups/{id}``),
with the signed-in analyst as the actor; a score of 3 or less schedules the second call there."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse

from cxnlp.errors import LedgerError, NotFoundError
from cxnlp.ledger.followups import MAX_SCORE, MIN_SCORE, list_followups, record_followup
from cxnlp.ledger.records import utcnow
from service.deps import SessionDep
from service.pages.auth import Actor, CsrfChecked
from service.pages.render import page

router = APIRouter(include_in_schema=False)
LIMIT = 200


def _page(request: Request, session, error: str | None = None, status_code: int = 200):
    items = list_followups(session=session, pending=True, limit=LIMIT)
    return page(request, "followups.html", {
        "title": "回访", "items": items, "now": utcnow(), "scores": range(MIN_SCORE, MAX_SCORE + 1),
        "error": error, "saved": request.query_params.get("saved")}, status_code=status_code)


@router.get("/followups")
def followups_view(request: Request, actor: Actor, session: SessionDep):
    return _page(request, session)


@router.post("/followups/{followup_id}", dependencies=[CsrfChecked])
def followups_record(request: Request, actor: Actor, session: SessionDep,
                     followup_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
                     score: Annotated[int, Form(ge=MIN_SCORE, le=MAX_SCORE)],
                     note: Annotated[str, Form(max_length=2000)] = ""):
    try:
        record_followup(session=session, followup_id=followup_id, score=score, note=note.strip() or None,
                        actor=actor)
        session.commit()
    except (LedgerError, NotFoundError) as exc:
        session.rollback()
        return _page(request, session, error=str(exc), status_code=409)
    return RedirectResponse(f"/followups?saved={followup_id}", status_code=303)
