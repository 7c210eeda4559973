"""The ledger's month summary and the review queue."""
from __future__ import annotations

from fastapi import APIRouter, Query

from cxnlp.ledger.records import review_queue
from cxnlp.ledger.summary import month_summary
from service.deps import KeyRequired, ModelDep, SessionDep
from service.schemas import MONTH_PATTERN, FeedbackOut, LedgerSummary

# Both hold customers' words (top terms, review texts): behind the key when one is set.
router = APIRouter(prefix="/v1", tags=["ledger"], dependencies=[KeyRequired])


@router.get("/ledger/summary", response_model=LedgerSummary, summary="The month's numbers, as `cxnlp ledger summary`")
def ledger_summary(session: SessionDep, model: ModelDep,
                   month: str = Query(pattern=MONTH_PATTERN, examples=["2026-11"])):
    return month_summary(session=session, month=month, categories=tuple(model.estimator.categories_))


@router.get("/review", response_model=list[FeedbackOut], summary="Records to check, least confident first")
def review(session: SessionDep, limit: int = Query(50, ge=1, le=1000)):
    return review_queue(session=session, limit=limit)
