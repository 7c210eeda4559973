"""Feedback into the root-cause ledger: classify + record, read, and analysts' changes."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.exceptions import RequestValidationError

from cxnlp.ledger.records import FeedbackIn, get_record, update_record
from cxnlp.ledger.recording import classify_and_record
from cxnlp.taxonomy import check_known
from service.deps import KeyRequired, ModelDep, RulesDep, SessionDep, SettingsDep, WriteAccess
from service.schemas import FeedbackCreate, FeedbackOut, FeedbackUpdate

router = APIRouter(prefix="/v1/feedback", tags=["ledger"])
# Record ids are the ledger's integer primary key (32-bit on PostgreSQL): anything else cannot exist.
RecordId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Ledger record id")]


def _source_id(body: FeedbackCreate, idempotency_key: str | None, received_at: datetime) -> str:
    """The record's ledger id: the client's ``source_id``; else ``idem:`` + the Idempotency-Key; else one
    derived from the text, channel and moment. Two ids that disagree are a 422, never one ignored."""
    if body.source_id and idempotency_key and idempotency_key != body.source_id:
        raise RequestValidationError([{
            "type": "value_error", "loc": ("header", "idempotency-key"),
            "msg": "source_id and the Idempotency-Key header both name the feedback and they differ: "
                   "send one of them, or the same value in both"}])
    if body.source_id:
        return body.source_id
    if idempotency_key:
        return f"idem:{idempotency_key}"
    # No id given: the same text at the same moment is the same feedback; anything else is new (the
    # moment is now when the client does not say, so two posts of one text are two feedbacks).
    basis = f"{body.text}|{body.channel}|{received_at.isoformat()}"
    return "auto:" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:24]


@router.post("", response_model=FeedbackOut, status_code=201, dependencies=[WriteAccess],
             responses={200: {"model": FeedbackOut, "description": "Already recorded: the first record"},
                        409: {"description": "This id was recorded with a different text"}},
             summary="Classify one feedback and record it in the ledger")
def create_feedback(body: FeedbackCreate, model: ModelDep, session: SessionDep, rules: RulesDep,
                    settings: SettingsDep, response: Response, request: Request,
                    idempotency_key: Annotated[str | None, Header(max_length=190)] = None):
    """A ``source_id`` (or an ``Idempotency-Key`` header) makes retries safe: a repeat returns the first
    record with status 200 instead of 201. Sent together, they must be the same value (422 otherwise);
    a ``source_id`` starting with ``idem:`` or ``auto:`` (the ids the service derives) is a 422."""
    received_at = body.received_at or datetime.now(timezone.utc)
    item = FeedbackIn(text=body.text, source_id=_source_id(body, idempotency_key, received_at),
                      channel=body.channel, received_at=received_at, customer=body.customer)
    record, created = classify_and_record(session=session, model=model, item=item, rules=rules,
                                          max_chars=settings.max_text_chars)
    if not created:
        response.status_code = 200
    session.commit()
    metrics = request.app.state.metrics
    metrics.ledger_writes.labels("created" if created else "existing").inc()
    if created:
        metrics.texts.labels("feedback").inc()
    return record


@router.get("/{record_id}", response_model=FeedbackOut, dependencies=[KeyRequired],
            responses={404: {"description": "No such record"}}, summary="One ledger record with its audit trail")
def read_feedback(record_id: RecordId, session: SessionDep):
    return get_record(session=session, record_id=record_id)


@router.patch("/{record_id}", response_model=FeedbackOut, dependencies=[WriteAccess],
              responses={404: {"description": "No such record"},
                         409: {"description": "The change conflicts with the record's state (a status move not allowed)"}},
              summary="Change status, root cause or corrected labels")
def patch_feedback(record_id: RecordId, body: FeedbackUpdate, session: SessionDep, model: ModelDep):
    """Labels may be written in English or Chinese; a category the model does not know is a 422."""
    changes = body.model_dump(exclude_unset=True, exclude={"actor"})
    if changes.get("corrected_categories"):
        check_known(changes["corrected_categories"], tuple(model.estimator.categories_))
    record = update_record(session=session, record_id=record_id, changes=changes, actor=body.actor,
                           known_categories=tuple(model.estimator.categories_))
    session.commit()
    return record
