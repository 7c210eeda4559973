"""Recording, reading and changing ledger records. Every function takes the session keyword-only."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cxnlp.errors import ConflictError, LedgerError, NotFoundError
from cxnlp.ledger.db import lock_for_write
from cxnlp.ledger.models import STATUSES, AuditEntry, FeedbackRecord
from cxnlp.ledger.rules import LedgerRules
from cxnlp.prediction import Prediction
from cxnlp.taxonomy import SENTIMENTS
from cxnlp.text import mask_personal_data, personal_data_spans

SYSTEM_ACTOR = "cxnlp"
# Allowed status moves: forward through the workflow, or back to open when a fix did not hold.
TRANSITIONS = {
    "open": {"in_progress", "resolved", "closed"},
    "in_progress": {"open", "resolved", "closed"},
    "resolved": {"open", "in_progress", "closed"},
    "closed": {"open"},
}
_IN_CLAUSE = 500  # source ids per "IN (…)" look-up


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class FeedbackIn:
    text: str
    source_id: str
    channel: str | None = None
    received_at: datetime | None = None


def masked_evidence(evidence: dict[str, list[dict[str, Any]]], masked: str,
                    spans: Sequence[tuple[int, int, str]]) -> dict[str, list[dict[str, Any]]]:
    """Evidence as the ledger keeps it: spans that touch personal data dropped, every term read from
    the masked text (masks keep the length, so the offsets are the same in both texts)."""
    if not spans:
        return evidence
    return {label: [{**e, "term": masked[e["start"]:e["end"]]} for e in items
                    if not any(e["start"] < end and start < e["end"] for start, end, _ in spans)]
            for label, items in evidence.items()}


def record_rows(*, items: Sequence[FeedbackIn], predictions: Sequence[Prediction], rules: LedgerRules,
                now: datetime) -> list[dict[str, Any]]:
    """The stored columns of many classified feedbacks. Everything kept comes from the masked text: the
    text, the evidence terms and offsets, and the severity cues read in it."""
    for item, prediction in zip(items, predictions):
        if prediction.error:
            raise LedgerError(f"cannot record {item.source_id!r}: {prediction.error}")
    spans = [personal_data_spans(item.text) for item in items]
    masked = [mask_personal_data(item.text, s) for item, s in zip(items, spans)]
    severities = rules.severities(masked, [p.categories for p in predictions],
                                  [p.sentiment_scores for p in predictions])
    rows = []
    for item, prediction, text, pii, severity in zip(items, predictions, masked, spans, severities):
        received = _naive_utc(item.received_at) or now
        rows.append(dict(
            source_id=item.source_id, channel=item.channel, received_at=received, recorded_at=now,
            text=text, categories=prediction.categories,
            category_scores=prediction.category_scores, sentiment=prediction.sentiment or "neutral",
            sentiment_scores=prediction.sentiment_scores, confidence=prediction.confidence,
            evidence=masked_evidence(prediction.evidence, text, pii), model_version=prediction.model_version,
            severity=severity, department=rules.department_of(prediction.categories),
            due_at=rules.due_at(severity, received), status="open", version=1,
        ))
    return rows


def _conflict(source_id: str) -> ConflictError:
    return ConflictError(f"source_id {source_id!r} is already recorded with a different text; "
                         "give the new feedback its own id")


def stored_texts(session: Session, source_ids: Sequence[str]) -> dict[str, str]:
    """The stored (masked) text of each known source id."""
    found: dict[str, str] = {}
    for i in range(0, len(source_ids), _IN_CLAUSE):
        query = select(FeedbackRecord.source_id, FeedbackRecord.text).where(
            FeedbackRecord.source_id.in_(source_ids[i:i + _IN_CLAUSE]))
        found.update((sid, text_) for sid, text_ in session.execute(query))
    return found


def insert_records(*, session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert many ``record_rows`` rows in the session's transaction; returns {source_id: id} of those
    created. Known source ids are skipped by the database (``INSERT … ON CONFLICT DO NOTHING``, so a
    concurrent insert of the same id is no error either); one whose stored text differs is a
    ``ConflictError``. Each created record gets its "created" audit entry."""
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        first = unique.setdefault(row["source_id"], row)
        if first["text"] != row["text"]:
            raise _conflict(row["source_id"])
    if not unique:
        return {}
    table = FeedbackRecord.__table__
    stmt = _dialect_insert(session, table).on_conflict_do_nothing(index_elements=[table.c.source_id])
    result = session.execute(stmt.returning(table.c.source_id, table.c.id), list(unique.values()))
    created = {sid: rid for sid, rid in result}
    skipped = [sid for sid in unique if sid not in created]
    if skipped:
        stored = stored_texts(session, skipped)
        for sid in skipped:
            if stored.get(sid, unique[sid]["text"]) != unique[sid]["text"]:
                raise _conflict(sid)
    if created:
        session.execute(insert(AuditEntry.__table__), [
            {"feedback_id": rid, "at": unique[sid]["recorded_at"], "actor": SYSTEM_ACTOR, "field": "created",
             "old": None, "new": {"categories": unique[sid]["categories"], "sentiment": unique[sid]["sentiment"],
                                  "severity": unique[sid]["severity"]}}
            for sid, rid in created.items()])
    return created


def _dialect_insert(session: Session, table: Any) -> Any:
    name = session.get_bind().dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        raise LedgerError(f"the ledger supports SQLite and PostgreSQL, not {name}")
    return dialect_insert(table)


def find_record(*, session: Session, source_id: str, text: str | None = None) -> FeedbackRecord | None:
    """The record of ``source_id``, or None; with ``text``, a record holding another text is a
    ``ConflictError`` (a reused id must not silently return someone else's feedback)."""
    record = session.scalar(select(FeedbackRecord).where(FeedbackRecord.source_id == source_id))
    if record is not None and text is not None and record.text != mask_personal_data(text):
        raise _conflict(source_id)
    return record


def record_feedback(*, session: Session, item: FeedbackIn, prediction: Prediction, rules: LedgerRules
                    ) -> tuple[FeedbackRecord, bool]:
    """Store one classified feedback; returns (record, created). A known ``source_id`` with the same
    text returns the first record; with another text it is a ``ConflictError``."""
    rows = record_rows(items=[item], predictions=[prediction], rules=rules, now=utcnow())
    lock_for_write(session)
    created = insert_records(session=session, rows=rows)
    record = find_record(session=session, source_id=item.source_id)
    if record is None:  # pragma: no cover - inserted or found above, in this transaction
        raise LedgerError(f"record {item.source_id!r} vanished while it was recorded")
    return record, bool(created)


def get_record(*, session: Session, record_id: int) -> FeedbackRecord:
    record = session.get(FeedbackRecord, record_id)
    if record is None:
        raise NotFoundError(f"no ledger record {record_id}")
    return record


def update_record(*, session: Session, record_id: int, changes: dict[str, Any], actor: str,
                  known_categories: tuple[str, ...] | None = None) -> FeedbackRecord:
    """Apply an analyst's changes (status, root_cause, corrected categories/sentiment), each audited.

    The record is read under a row lock (``SELECT … FOR UPDATE`` on PostgreSQL, the write lock taken at
    BEGIN on SQLite), so a concurrent change waits and then sees this one; the version column is the
    last guard: an update that lost a race anyway is a ``ConflictError``, never a silent overwrite.
    """
    record = _locked_record(session, record_id)
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
    try:
        session.flush()
    except StaleDataError as exc:
        raise ConflictError(f"ledger record {record_id} was changed by someone else meanwhile; try again") from exc
    return record


def _locked_record(session: Session, record_id: int) -> FeedbackRecord:
    lock_for_write(session)
    query = (select(FeedbackRecord).where(FeedbackRecord.id == record_id).with_for_update()
             .execution_options(populate_existing=True))
    record = session.scalar(query)
    if record is None:
        raise NotFoundError(f"no ledger record {record_id}")
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
