"""Follow-up calls (回访) of resolved complaints: the list to call and the scores recorded.

Scheduling happens where a complaint is resolved (``records.update_record``); here a call's result is
recorded, and a score of ``SECOND_FOLLOWUP_MAX_SCORE`` or less schedules the second call.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from cxnlp.errors import LedgerError, NotFoundError
from cxnlp.ledger.db import lock_for_write
from cxnlp.ledger.models import AuditEntry, FollowUp
from cxnlp.ledger.records import SECOND_FOLLOWUP_HOURS, SECOND_FOLLOWUP_MAX_SCORE, _naive_utc, utcnow

MIN_SCORE, MAX_SCORE = 1, 5


def list_followups(*, session: Session, pending: bool = True, limit: int = 200) -> list[FollowUp]:
    """Follow-ups to make (``pending``), earliest due first, or all of them; each with its record loaded."""
    query = select(FollowUp).options(joinedload(FollowUp.record))
    if pending:
        query = query.where(FollowUp.done_at.is_(None))
    return list(session.scalars(query.order_by(FollowUp.due_at, FollowUp.id).limit(limit)))


def record_followup(*, session: Session, followup_id: int, score: int, note: str | None = None,
                    actor: str = "analyst", at: datetime | None = None) -> FollowUp:
    """Record a follow-up call: a score 1–5 and a note (audited on the record). A score of 3 or less on
    the first call schedules a second one, due 48 h later. A call already recorded is a ``LedgerError``."""
    if not isinstance(score, int) or isinstance(score, bool) or not MIN_SCORE <= score <= MAX_SCORE:
        raise LedgerError(f"a follow-up score is a whole number from {MIN_SCORE} to {MAX_SCORE}, got {score!r}")
    lock_for_write(session)
    followup = session.scalar(select(FollowUp).where(FollowUp.id == followup_id).with_for_update()
                              .execution_options(populate_existing=True))
    if followup is None:
        raise NotFoundError(f"no follow-up {followup_id}")
    if followup.done_at is not None:
        raise LedgerError(f"follow-up {followup_id} was already recorded ({followup.done_at:%Y-%m-%d %H:%M} UTC)")
    now = _naive_utc(at) or utcnow()
    followup.done_at, followup.score, followup.note, followup.actor = now, score, note or None, actor
    record = followup.record
    record.audit.append(AuditEntry(at=now, actor=actor, field="followup", old=None,
                                   new={"round": followup.round, "score": score, "note": note or None}))
    if followup.round == 1 and score <= SECOND_FOLLOWUP_MAX_SCORE:
        record.followups.append(FollowUp(round=2, scheduled_at=now,
                                         due_at=now + timedelta(hours=SECOND_FOLLOWUP_HOURS)))
    session.flush()
    return followup
