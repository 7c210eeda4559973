"""Recording, reading and changing ledger records. Every function takes the session keyword-only."""
from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cxnlp.errors import ConflictError, LedgerError, NotFoundError
from cxnlp.ledger.cues import CueTexts
from cxnlp.ledger.db import lock_for_write
from cxnlp.ledger.models import KINDS, STATUSES, AuditEntry, FeedbackRecord, FollowUp
from cxnlp.ledger.problems import ProblemCatalogue, configured_catalogue
from cxnlp.ledger.rules import LedgerRules
from cxnlp.prediction import Prediction
from cxnlp.taxonomy import SENTIMENTS
from cxnlp.text import mask_personal_data, personal_data_spans

SYSTEM_ACTOR = "cxnlp"
# The service cycle: open → responded → in_progress → resolved → closed. A fix that did not hold goes
# back to in_progress (from resolved or closed); a question or praise answered may be closed at once
# (responded → closed, not for complaints). Any other move is refused (HTTP 409).
TRANSITIONS = {
    "open": {"responded"},
    "responded": {"in_progress", "resolved", "closed"},
    "in_progress": {"resolved"},
    "resolved": {"closed", "in_progress"},
    "closed": {"in_progress"},
}
# The time stamp set when a status is reached (the first response is kept; the rest follow the latest move).
STATUS_STAMPS = {"responded": "first_response_at", "resolved": "resolved_at", "closed": "closed_at"}
FOLLOWUP_DAYS = 7            # a resolved complaint is followed up within a week
SECOND_FOLLOWUP_HOURS = 48   # a follow-up scored at most SECOND_FOLLOWUP_MAX_SCORE is repeated within 48 h
SECOND_FOLLOWUP_MAX_SCORE = 3
_IN_CLAUSE = 500  # source ids per "IN (…)" look-up


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class FeedbackIn:
    text: str
    source_id: str
    channel: str | None = None
    received_at: datetime | None = None
    customer: str | None = None


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
                now: datetime, catalogue: ProblemCatalogue | None = None) -> list[dict[str, Any]]:
    """The stored columns of many classified feedbacks. Everything kept comes from the masked text: the
    text, the evidence terms and offsets, and the severity, urgency and problem cues read in it.
    Only complaints get a resolution deadline and problems."""
    for item, prediction in zip(items, predictions):
        if prediction.error:
            raise LedgerError(f"cannot record {item.source_id!r}: {prediction.error}")
    spans = [personal_data_spans(item.text) for item in items]
    masked = [mask_personal_data(item.text, s) for item, s in zip(items, spans)]
    # severity, urgency and problems read each masked text, segmented once (or not at all where masking
    # changed nothing and the model's tokens came with the prediction)
    cue = CueTexts(masked, same_as=[None if pii else p.tokens_from for p, pii in zip(predictions, spans)])
    severities = rules.severities(cue, [p.categories for p in predictions], [p.sentiment_scores for p in predictions])
    urgencies = _urgencies(cue, spans, predictions, rules)
    kinds = [rules.kind_of(p.sentiment, u, p.categories) for p, u in zip(predictions, urgencies)]
    complaints = [i for i, k in enumerate(kinds) if k == KINDS[0]]
    found = (catalogue or configured_catalogue()).match(cue, complaints)
    problems = dict(zip(complaints, found))
    rows = []
    for i, (item, prediction, text, pii, severity) in enumerate(zip(items, predictions, masked, spans, severities)):
        received = _naive_utc(item.received_at) or now
        rows.append(dict(
            urgency=urgencies[i], kind=kinds[i], problems=problems.get(i, []), customer=item.customer,
            respond_by=rules.respond_by(urgencies[i], received),
            source_id=item.source_id, channel=item.channel, received_at=received, recorded_at=now,
            text=text, categories=prediction.categories,
            category_scores=prediction.category_scores, sentiment=prediction.sentiment or "neutral",
            sentiment_scores=prediction.sentiment_scores, confidence=prediction.confidence,
            evidence=masked_evidence(prediction.evidence, text, pii), model_version=prediction.model_version,
            severity=severity, department=rules.department_of(prediction.categories),
            resolve_by=rules.resolve_by(kinds[i], severity, received), status="open", version=1,
        ))
    return rows


def _urgencies(cue: CueTexts, spans: Sequence[Sequence[tuple[int, int, str]]], predictions: Sequence[Prediction],
               rules: LedgerRules) -> list[str]:
    """The urgency of each masked text. ``predict_texts`` read it in the text as sent, by the configured
    rules: where masking changed nothing and ``rules`` are those, it is the same and is not read again."""
    from cxnlp.ledger.rules import configured_rules

    same_rules = rules == configured_rules()
    again = [i for i, (pii, p) in enumerate(zip(spans, predictions)) if pii or not same_rules or p.urgency is None]
    if len(again) == len(predictions):
        return rules.urgencies(cue, [p.sentiment_scores for p in predictions])
    urgencies = [p.urgency for p in predictions]
    if again:
        sub = CueTexts([cue.texts[i] for i in again], same_as=[(cue, i) for i in again])  # tokens made once
        for i, urgency in zip(again, rules.urgencies(sub, [predictions[i].sentiment_scores for i in again])):
            urgencies[i] = urgency
    return urgencies


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
                                  "severity": unique[sid]["severity"], "urgency": unique[sid]["urgency"],
                                  "kind": unique[sid]["kind"]}}
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
                  known_categories: tuple[str, ...] | None = None, at: datetime | None = None) -> FeedbackRecord:
    """Apply an analyst's changes (status, root_cause, corrected categories/sentiment, customer notified),
    each audited, at ``at`` (default now; naive means UTC).

    A status move follows ``TRANSITIONS`` (anything else is a ``LedgerError``: HTTP 409) and sets its
    time stamp (``STATUS_STAMPS``); closing also stamps ``customer_notified_at`` when nobody did; a
    complaint reaching ``resolved`` gets its follow-up scheduled (``FOLLOWUP_DAYS``). A corrected
    sentiment re-reads the record's kind (a complaint corrected to praise leaves the overdue list).

    The record is read under a row lock (``SELECT … FOR UPDATE`` on PostgreSQL, the write lock taken at
    BEGIN on SQLite), so a concurrent change waits and then sees this one; the version column is the
    last guard: an update that lost a race anyway is a ``ConflictError``, never a silent overwrite.
    """
    record = _locked_record(session, record_id)
    now = _naive_utc(at) or utcnow()
    if changes.pop("customer_notified", False):
        if record.status not in ("resolved", "closed") and changes.get("status") not in ("resolved", "closed"):
            raise LedgerError("the customer is told of a fix once the record is resolved")
        changes["customer_notified_at"] = record.customer_notified_at or now
    for name, value in changes.items():
        if name == "status":
            if value not in STATUSES:
                raise LedgerError(f"unknown status {value!r} (expected one of {', '.join(STATUSES)})")
            if value != record.status and value not in TRANSITIONS[record.status]:
                raise LedgerError(f"status cannot go from {record.status} to {value}")
            if (record.status, value) == ("responded", "closed") and record.kind == KINDS[0]:
                raise LedgerError("a complaint is resolved before it is closed")
            if value != record.status:
                _stamp_status(session, record, value, now, actor)
        elif name == "customer_notified_at":
            pass
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
        record.audit.append(AuditEntry(at=now, actor=actor, field=name, old=_jsonable(old), new=_jsonable(value)))
        if name.startswith("corrected_"):
            record.corrected_by, record.corrected_at = actor, now
            _reread_kind(record, now, actor)
    try:
        session.flush()
    except StaleDataError as exc:
        raise ConflictError(f"ledger record {record_id} was changed by someone else meanwhile; try again") from exc
    return record


def _set(record: FeedbackRecord, name: str, value: Any, now: datetime, actor: str) -> None:
    old = getattr(record, name)
    if old != value:
        setattr(record, name, value)
        record.audit.append(AuditEntry(at=now, actor=actor, field=name, old=_jsonable(old), new=_jsonable(value)))


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _stamp_status(session: Session, record: FeedbackRecord, status: str, now: datetime, actor: str) -> None:
    """The time stamps a status move sets (each audited) and the follow-up a resolved complaint gets."""
    if status == "responded" and record.first_response_at is None:
        _set(record, "first_response_at", now, now, actor)
    if status == "in_progress":  # a fix that did not hold: it is no longer resolved
        _set(record, "resolved_at", None, now, actor)
        _set(record, "closed_at", None, now, actor)
    if status == "resolved":
        _set(record, "resolved_at", now, now, actor)
        if record.kind == KINDS[0] and not any(f.done_at is None for f in record.followups):
            record.followups.append(FollowUp(round=1, scheduled_at=now, due_at=now + timedelta(days=FOLLOWUP_DAYS)))
    if status == "closed":
        _set(record, "closed_at", now, now, actor)
        if record.customer_notified_at is None:
            _set(record, "customer_notified_at", now, now, actor)


def _reread_kind(record: FeedbackRecord, now: datetime, actor: str) -> None:
    """A corrected label may make a complaint of an inquiry or the other way round: the resolution
    deadline goes with it."""
    from cxnlp.ledger.rules import configured_rules

    kind = LedgerRules.kind_of(record.effective_sentiment, record.urgency, record.effective_categories)
    if kind != record.kind:
        _set(record, "kind", kind, now, actor)
        deadline = configured_rules().resolve_by(kind, record.severity, record.received_at)
        _set(record, "resolve_by", deadline, now, actor)


def _locked_record(session: Session, record_id: int) -> FeedbackRecord:
    lock_for_write(session)
    query = (select(FeedbackRecord).where(FeedbackRecord.id == record_id).with_for_update()
             .execution_options(populate_existing=True))
    record = session.scalar(query)
    if record is None:
        raise NotFoundError(f"no ledger record {record_id}")
    return record


def list_records(*, session: Session, start: datetime | None = None, end: datetime | None = None,
                 kind: str | None = None, status: str | None = None, urgency: str | None = None,
                 problem: str | None = None, limit: int = 100, offset: int = 0) -> list[FeedbackRecord]:
    """Records received in [start, end) (naive UTC; ``summary.month_bounds`` gives a month's), newest
    first, optionally of one kind, status, urgency or problem: what a record list or dashboard shows."""
    query = select(FeedbackRecord)
    if start is not None:
        query = query.where(FeedbackRecord.received_at >= start)
    if end is not None:
        query = query.where(FeedbackRecord.received_at < end)
    for column, value in ((FeedbackRecord.kind, kind), (FeedbackRecord.status, status),
                          (FeedbackRecord.urgency, urgency)):
        if value is not None:
            query = query.where(column == value)
    query = query.order_by(FeedbackRecord.received_at.desc(), FeedbackRecord.id.desc())
    if problem is None:
        return list(session.scalars(query.offset(offset).limit(limit)))
    # JSON membership differs between SQLite and PostgreSQL: the (few) candidates are filtered here
    matching = (r for r in session.scalars(query.where(FeedbackRecord.kind == KINDS[0]))
                if problem in (r.problems or []))
    return list(islice(matching, offset, offset + limit))


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
