"""Negative survey answers into the root-cause ledger (`cxnlp survey report --ledger`).

Each answer is recorded with channel 问卷 and a source id made of the export's file name, the row and the
question, so re-running the same export records nothing twice; the run is one transaction (all or nothing).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxnlp.ledger.db import describe, lock_for_write, session_scope
from cxnlp.ledger.records import FeedbackIn, insert_records, record_rows, utcnow
from cxnlp.ledger.rules import LedgerRules
from cxnlp.ledger.timezone import local_zone
from cxnlp.settings import get_settings
from cxnlp.surveys.columns import question_title

if TYPE_CHECKING:
    from cxnlp.surveys.report import ClassifiedAnswers, SurveyData

SURVEY_CHANNEL = "问卷"


def record_negative_answers(data: "SurveyData", classified: "ClassifiedAnswers", *, negative_max: int,
                            url: str) -> dict[str, Any]:
    """Record the open answers rated ≤ ``negative_max``; returns what was recorded and where."""
    source = Path(data.source).name
    zone = local_zone()
    items, preds = [], []
    for (sub, column, text), row, pred in zip(classified.sources, classified.rows, classified.predictions):
        if pred.error or row["rating"] is None or row["rating"] > negative_max:
            continue
        at = sub.submitted_at
        items.append(FeedbackIn(text=text, source_id=f"{source}:{sub.row}:{question_title(column)}"[:200],
                                channel=SURVEY_CHANNEL,
                                received_at=at.replace(tzinfo=zone) if at and at.tzinfo is None else at))
        preds.append(pred)
    rows = record_rows(items=items, predictions=preds, rules=LedgerRules.load(get_settings().ledger_rules),
                       now=utcnow())
    with session_scope(url) as session:
        lock_for_write(session)
        created = len(insert_records(session=session, rows=rows))
    return {"database": describe(url), "recorded": created, "already_there": len(rows) - created}
