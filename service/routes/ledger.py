"""The ledger's month summary and the review queue."""
from __future__ import annotations

from fastapi import APIRouter, Query

from cxnlp.ledger.records import review_queue
from cxnlp.ledger.summary import month_summary
from service.deps import ModelDep, SessionDep
from service.schemas import FeedbackOut, LedgerSummary

router = APIRouter(prefix="/v1", tags=["ledger"])


@router.get("/ledger/summary", response_model=LedgerSummary, summary="The month's numbers, as `cxnlp ledger summary`")
def ledger_summary(session: SessionDep, model: ModelDep,
                   month: str = Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-11"])):
    return month_summary(session=session, month=month, categories=tuple(model.estimator.categories_))


@router.get("/review", response_model=list[FeedbackOut], summary="Records to check, least confident first")
def review(session: SessionDep, limit: int = Query(50, ge=1, le=1000)):
    return review_queue(session=session, limit=limit)
