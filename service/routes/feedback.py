"""Feedback into the root-cause ledger: classify + record, read, and analysts' changes."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Header, Response

from cxnlp.ledger.records import FeedbackIn, get_record, update_record
from cxnlp.ledger.recording import classify_and_record
from service.deps import ModelDep, RulesDep, SessionDep, SettingsDep, WriteAccess
from service.schemas import FeedbackCreate, FeedbackOut, FeedbackUpdate

router = APIRouter(prefix="/v1/feedback", tags=["ledger"])


def _source_id(body: FeedbackCreate, idempotency_key: str | None, received_at: datetime) -> str:
    if body.source_id:
        return body.source_id
    if idempotency_key:
        return f"idem:{idempotency_key}"
    # No id given: the same text at the same moment is the same feedback; anything else is new (the
    # moment is now when the client does not say, so two posts of one text are two feedbacks).
    basis = f"{body.text}|{body.channel}|{received_at.isoformat()}"
    return "auto:" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:24]


@router.post("", response_model=FeedbackOut, status_code=201, dependencies=[WriteAccess],
             summary="Classify one feedback and record it in the ledger")
def create_feedback(body: FeedbackCreate, model: ModelDep, session: SessionDep, rules: RulesDep,
                    settings: SettingsDep, response: Response,
                    idempotency_key: Annotated[str | None, Header()] = None):
    """A ``source_id`` (or an ``Idempotency-Key`` header) makes retries safe: a repeat returns the first
    record with status 200 instead of 201."""
    received_at = body.received_at or datetime.now(timezone.utc)
    item = FeedbackIn(text=body.text, source_id=_source_id(body, idempotency_key, received_at),
                      channel=body.channel, received_at=received_at)
    record, created = classify_and_record(session=session, model=model, item=item, rules=rules,
                                          max_chars=settings.max_text_chars)
    if not created:
        response.status_code = 200
    session.commit()
    return record


@router.get("/{record_id}", response_model=FeedbackOut, summary="One ledger record with its audit trail")
def read_feedback(record_id: int, session: SessionDep):
    return get_record(session=session, record_id=record_id)


@router.patch("/{record_id}", response_model=FeedbackOut, dependencies=[WriteAccess],
              summary="Change status, root cause or corrected labels")
def patch_feedback(record_id: int, body: FeedbackUpdate, session: SessionDep, model: ModelDep):
    changes = body.model_dump(exclude_unset=True, exclude={"actor"})
    record = update_record(session=session, record_id=record_id, changes=changes, actor=body.actor,
                           known_categories=tuple(model.estimator.categories_))
    session.commit()
    return record
