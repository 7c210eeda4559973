"""Every spreadsheet the ledger writes (register export, review sheet) neutralises formulas, gets the
user's file mode, and reads back what it wrote."""
from __future__ import annotations

import os
from datetime import datetime

from openpyxl import load_workbook
from sqlalchemy.orm import Session

from cxnlp.ledger.db import get_engine
from cxnlp.ledger.models import FeedbackRecord
from cxnlp.ledger.records import FeedbackIn, record_feedback, update_record
from cxnlp.ledger.register import export_register, export_review, import_review
from cxnlp.ledger.rules import LedgerRules
from cxnlp.prediction import Prediction

CATS = ("attitude", "expertise", "process", "speed")
ATTACKS = ['=HYPERLINK("http://evil","客服态度差")', "=cmd|' /C calc'!A0", "+1+1 投诉", "-1 退款", "@SUM(A1)"]


def _pred() -> Prediction:
    return Prediction(categories=["attitude"], category_scores={c: 0.9 if c == "attitude" else 0.1 for c in CATS},
                      sentiment="negative", sentiment_scores={"negative": 0.9, "neutral": 0.05, "positive": 0.05},
                      confidence=0.5, needs_review=True, evidence={"attitude": []}, model_version="test-1")


def test_ledger_sheets_neutralise_formulas_and_get_the_users_mode(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    rules = LedgerRules.load()
    old = os.umask(0o022)
    try:
        with Session(get_engine(url)) as session:
            ids = []
            for i, text in enumerate(ATTACKS):
                rec, _ = record_feedback(session=session, item=FeedbackIn(
                    text=text, source_id=f"=X{i}", channel="@渠道", received_at=datetime(2026, 11, 2 + i)),
                    prediction=_pred(), rules=rules)
                ids.append(rec.id)
            session.flush()
            update_record(session=session, record_id=ids[0], changes={"root_cause": "=1+1 排班不足"}, actor="li")
            session.commit()
            export_register(session=session, months=["2026-11"], path=tmp_path / "台账.xlsx", categories=CATS)
            export_review(session=session, path=tmp_path / "review.xlsx", limit=10)
            for name in ("台账.xlsx", "review.xlsx"):
                assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
                wb = load_workbook(tmp_path / name)
                cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
                assert not [c.coordinate for c in cells if c.data_type == "f"], name
                texts = [c.value for c in cells if isinstance(c.value, str)]
                assert not [t for t in texts if t[0] in "=+-@"], (name, texts)
                assert "'" + ATTACKS[0] in texts and "'=X0" in texts
            # the review sheet comes back as it was written: the quote added on export is not imported
            wb = load_workbook(tmp_path / "review.xlsx")
            ws = wb.active
            header = [c.value for c in ws[1]]
            for row in ws.iter_rows(min_row=2):
                if row[header.index("id")].value == ids[0]:
                    row[header.index("corrected_sentiment")].value = "neutral"
            wb.save(tmp_path / "review.xlsx")
            result = import_review(session=session, path=tmp_path / "review.xlsx", categories=CATS)
            session.commit()
            assert result.applied == 1 and not result.errors
            assert session.get(FeedbackRecord, ids[0]).root_cause == "=1+1 排班不足"
    finally:
        os.umask(old)


def test_register_cuts_an_over_long_cell_visibly(tmp_path):
    from cxnlp.io import XLSX_CELL_LIMIT

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    long = "服务太慢" * 10_000
    with Session(get_engine(url)) as session:
        record_feedback(session=session, item=FeedbackIn(text=long, source_id="L-1", channel="电话",
                                                         received_at=datetime(2026, 11, 2)),
                        prediction=_pred(), rules=LedgerRules.load())
        session.commit()
        export_register(session=session, months=["2026-11"], path=tmp_path / "台账.xlsx", categories=CATS)
    cell = load_workbook(tmp_path / "台账.xlsx")["2026-11"]["E2"].value  # 内容
    assert len(cell) == XLSX_CELL_LIMIT and cell.endswith("an XLSX cell holds 32,767]") and cell.startswith("服务太慢")
