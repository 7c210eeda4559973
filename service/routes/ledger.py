"""The ledger's month summary, the review queue and the follow-up list."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from cxnlp.ledger.followups import list_followups, record_followup
from cxnlp.ledger.records import review_queue
from cxnlp.ledger.summary import month_summary
from service.deps import KeyRequired, ModelDep, SessionDep, WriteAccess
from service.schemas import MONTH_PATTERN, FeedbackOut, FollowUpOut, FollowUpRecord, LedgerSummary

# Both hold customers' words (top terms, review texts): behind the key when one is set.
router = APIRouter(prefix="/v1", tags=["ledger"], dependencies=[KeyRequired])


@router.get("/ledger/summary", response_model=LedgerSummary, summary="The month's numbers, as `cxnlp ledger summary`")
def ledger_summary(session: SessionDep, model: ModelDep,
                   month: str = Query(pattern=MONTH_PATTERN, examples=["2026-11"])):
    return month_summary(session=session, month=month, categories=tuple(model.estimator.categories_))


@router.get("/review", response_model=list[FeedbackOut], summary="Records to check, least confident first")
def review(session: SessionDep, limit: int = Query(50, ge=1, le=1000)):
    return review_queue(session=session, limit=limit)


@router.get("/followups", response_model=list[FollowUpOut], summary="Follow-up calls (回访) to make, earliest due first")
def followups(session: SessionDep, pending: bool = True, limit: int = Query(200, ge=1, le=1000)):
    return list_followups(session=session, pending=pending, limit=limit)


@router.post("/followups/{followup_id}", response_model=FollowUpOut, dependencies=[WriteAccess],
             responses={404: {"description": "No such follow-up"}, 409: {"description": "Already recorded"}},
             summary="Record a follow-up call: score 1–5 and a note")
def record_followup_route(followup_id: Annotated[int, Path(ge=1, le=2**31 - 1)], body: FollowUpRecord,
                          session: SessionDep):
    followup = record_followup(session=session, followup_id=followup_id, score=body.score, note=body.note,
                               actor=body.actor)
    session.commit()
    return followup
