"""Analyst-corrected ledger records as training rows (`cxnlp train --with-ledger`)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cxnlp.dataset import LabeledData
from cxnlp.ledger.db import get_engine
from cxnlp.ledger.models import FeedbackRecord
from cxnlp.settings import get_settings
from cxnlp.training import LEDGER_SOURCE as SOURCE


def corrected_training_rows(weight: float, url: str | None = None) -> LabeledData:
    """Every record an analyst corrected, with the corrected labels (uncorrected fields as predicted)."""
    data = LabeledData()
    with Session(get_engine(url or get_settings().ledger_url)) as session:
        query = select(FeedbackRecord).where(FeedbackRecord.corrected_at.is_not(None)).order_by(FeedbackRecord.id)
        for r in session.scalars(query):
            data.add(r.text, r.effective_categories, r.effective_sentiment, weight, SOURCE)
    return data
