"""Recording, reading and changing ledger records. Every function takes the session keyword-only."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cxnlp.errors import LedgerError, NotFoundError
from cxnlp.ledger.models import STATUSES, AuditEntry, FeedbackRecord
from cxnlp.ledger.rules import LedgerRules
from cxnlp.prediction import Prediction
from cxnlp.taxonomy import SENTIMENTS
from cxnlp.text import mask_personal_data

SYSTEM_ACTOR = "cxnlp"
# Allowed status moves: forward through the workflow, or back to open when a fix did not hold.
TRANSITIONS = {
    "open": {"in_progress", "resolved", "closed"},
    "in_progress": {"open", "resolved", "closed"},
    "resolved": {"open", "in_progress", "closed"},
    "closed": {"open"},
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class FeedbackIn:
    text: str
    source_id: str
    channel: str | None = None
    received_at: datetime | None = None


def record_feedback(*, session: Session, item: FeedbackIn, prediction: Prediction, rules: LedgerRules
                    ) -> tuple[FeedbackRecord, bool]:
    """Store one classified feedback; returns (record, created). A known ``source_id`` returns the first record.

    The insert runs in a savepoint, so a concurrent insert of the same source_id (a retry racing its
    original) ends as a lookup, not an error.
    """
    if prediction.error:
        raise LedgerError(f"cannot record {item.source_id!r}: {prediction.error}")
    existing = session.scalar(select(FeedbackRecord).where(FeedbackRecord.source_id == item.source_id))
    if existing is not None:
        return existing, False
    now = utcnow()
    received = _naive_utc(item.received_at) or now
    severity = rules.severity_of(item.text, prediction.categories, prediction.sentiment_scores)
    record = FeedbackRecord(
        source_id=item.source_id, channel=item.channel, received_at=received, recorded_at=now,
        text=mask_personal_data(item.text), categories=prediction.categories,
        category_scores=prediction.category_scores, sentiment=prediction.sentiment or "neutral",
        sentiment_scores=prediction.sentiment_scores, confidence=prediction.confidence,
        evidence=prediction.evidence, model_version=prediction.model_version, severity=severity,
        department=rules.department_of(prediction.categories), due_at=rules.due_at(severity, received),
        status="open",
    )
    record.audit.append(AuditEntry(at=now, actor=SYSTEM_ACTOR, field="created", old=None,
                                   new={"categories": prediction.categories, "sentiment": prediction.sentiment,
                                        "severity": severity}))
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        existing = session.scalar(select(FeedbackRecord).where(FeedbackRecord.source_id == item.source_id))
        if existing is None:
            raise
        return existing, False
    return record, True


def get_record(*, session: Session, record_id: int) -> FeedbackRecord:
    record = session.get(FeedbackRecord, record_id)
    if record is None:
        raise NotFoundError(f"no ledger record {record_id}")
    return record


def update_record(*, session: Session, record_id: int, changes: dict[str, Any], actor: str,
                  known_categories: tuple[str, ...] | None = None) -> FeedbackRecord:
    """Apply an analyst's changes (status, root_cause, corrected categories/sentiment), each audited."""
    record = get_record(session=session, record_id=record_id)
    now = utcnow()
    for name, value in changes.items():
        if name == "status":
            if value not in STATUSES:
                raise LedgerError(f"unknown status {value!r} (expected one of {', '.join(STATUSES)})")
            if value != record.status and value not in TRANSITIONS[record.status]:
                raise LedgerError(f"status cannot go from {record.status} to {value}")
        elif name == "corrected_categories":
            value = sorted(set(value or []))
            if known_categories is not None:
                unknown = set(value) - set(known_categories)
                if unknown:
                    raise LedgerError(f"unknown categories {sorted(unknown)} (known: {', '.join(known_categories)})")
        elif name == "corrected_sentiment":
            if value not in SENTIMENTS:
                raise LedgerError(f"unknown sentiment {value!r}")
        elif name != "root_cause":
            raise LedgerError(f"field {name!r} cannot be changed")
        old = getattr(record, name)
        if old == value:
            continue
        setattr(record, name, value)
        record.audit.append(AuditEntry(at=now, actor=actor, field=name, old=old, new=value))
        if name.startswith("corrected_"):
            record.corrected_by, record.corrected_at = actor, now
    session.flush()
    return record


def review_queue(*, session: Session, limit: int = 50, include_reviewed: bool = False) -> list[FeedbackRecord]:
    """Records to check, least confident first (already corrected ones left out unless asked)."""
    query = select(FeedbackRecord)
    if not include_reviewed:
        query = query.where(FeedbackRecord.corrected_at.is_(None))
    return list(session.scalars(query.order_by(FeedbackRecord.confidence.asc(), FeedbackRecord.id).limit(limit)))


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)
