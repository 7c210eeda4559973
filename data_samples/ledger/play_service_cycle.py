"""Play the service cycle on the sample months recorded in the ledger, through the library's calls.

After the monthly exports are classified into the ledger (see the README), this answers, works on,
resolves and closes the records as a service desk would — most within their tier, some late, some
complaints still open (they show as overdue) — and makes the follow-up calls (回访) with scores, a
second call after a low score. Deterministic: every decision is drawn from the record's ticket number.
Records it already played are left alone, so running it twice changes nothing.

    python3 data_samples/ledger/play_service_cycle.py
"""
from __future__ import annotations

import hashlib
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a source checkout, too

from sqlalchemy import select  # noqa: E402

from cxnlp.ledger.db import describe, session_scope  # noqa: E402
from cxnlp.ledger.followups import record_followup  # noqa: E402
from cxnlp.ledger.models import FeedbackRecord, FollowUp  # noqa: E402
from cxnlp.ledger.records import update_record  # noqa: E402
from cxnlp.ledger.timezone import to_utc  # noqa: E402
from cxnlp.settings import get_settings  # noqa: E402

PLAY_END = to_utc(datetime(2026, 12, 1, 9, 0))   # the desk's clock stops here (local time)
LAST_MONTH = to_utc(datetime(2026, 11, 1))
ACTORS = ["客服-王芳", "客服-李强", "装维-赵师傅", "计费-孙敏", "质检-周婷"]


def draw(source_id: str, what: str) -> random.Random:
    return random.Random(hashlib.sha256(f"{source_id}|{what}".encode()).digest())


def hours_after(start: datetime, tier_hours: float, rnd: random.Random, late_share: float) -> datetime:
    share = rnd.uniform(1.2, 3.0) if rnd.random() < late_share else rnd.uniform(0.1, 0.9)
    return start + timedelta(hours=tier_hours * share)


def play(session, record: FeedbackRecord) -> int:
    rnd = draw(record.source_id, "cycle")
    actor = rnd.choice(ACTORS)
    recent = record.received_at >= LAST_MONTH
    moves = 0

    def move(status: str, at: datetime) -> bool:
        nonlocal moves
        if at > PLAY_END:
            return False
        update_record(session=session, record_id=record.id, changes={"status": status}, actor=actor, at=at)
        moves += 1
        return True

    if rnd.random() < (0.03 if recent else 0.0):
        return moves  # never answered
    respond_tier = (record.respond_by - record.received_at).total_seconds() / 3600
    answered = hours_after(record.received_at, respond_tier, rnd, late_share=0.06)
    if not move("responded", answered):
        return moves
    if record.kind != "complaint":
        move("closed", answered + timedelta(hours=rnd.uniform(0.5, 6)))
        return moves
    if rnd.random() < (0.25 if recent else 0.04):
        move("in_progress", answered + timedelta(hours=1))
        return moves  # still open: overdue once its deadline passes
    resolve_tier = (record.resolve_by - record.received_at).total_seconds() / 3600
    resolved = max(hours_after(record.received_at, resolve_tier, rnd, late_share=0.12), answered + timedelta(hours=1))
    move("in_progress", answered + timedelta(minutes=30))
    if not move("resolved", resolved):
        return moves
    if rnd.random() < 0.85:
        move("closed", resolved + timedelta(hours=rnd.uniform(1, 30)))
    return moves


def call(session, followup: FollowUp) -> bool:
    rnd = draw(followup.record.source_id, f"followup{followup.round}")
    if rnd.random() < 0.1:
        return False  # not reached
    at = followup.scheduled_at + timedelta(hours=rnd.uniform(2, 150 if followup.round == 1 else 40))
    if at > PLAY_END:
        return False
    late = followup.record.resolved_at is not None and followup.record.resolve_by is not None \
        and followup.record.resolved_at > followup.record.resolve_by
    weights = ([10, 15, 25, 30, 20] if late else [3, 5, 12, 35, 45]) if followup.round == 1 else [5, 5, 15, 35, 40]
    score = rnd.choices([1, 2, 3, 4, 5], weights)[0]
    notes = {1: "客户仍很不满意，要求升级处理", 2: "问题解决了但过程太慢", 3: "一般，希望下次快一点",
             4: "比较满意", 5: "非常满意，感谢回访"}
    record_followup(session=session, followup_id=followup.id, score=score, note=notes[score], actor="回访-陈静", at=at)
    return True


def main() -> None:
    url = get_settings().ledger_url
    print(f"ledger: {describe(url)}", file=sys.stderr)
    with session_scope(url) as session:
        records = list(session.scalars(select(FeedbackRecord).where(FeedbackRecord.status == "open",
                                                                    FeedbackRecord.first_response_at.is_(None))
                                       .order_by(FeedbackRecord.received_at, FeedbackRecord.id)))
        moves = sum(play(session, r) for r in records)
        calls = 0
        for _ in range(2):  # first calls, then the second calls their low scores scheduled
            pending = session.scalars(select(FollowUp).where(FollowUp.done_at.is_(None)).order_by(FollowUp.id)).all()
            calls += sum(call(session, f) for f in pending)
    print(f"played {len(records)} records: {moves} status changes, {calls} follow-up calls")


if __name__ == "__main__":
    main()
