"""The ledger on SQLite (always) and PostgreSQL (where one is reachable on 127.0.0.1:5432)."""
from __future__ import annotations

import csv
import dataclasses
import io
import uuid
from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from cxnlp.errors import ConflictError, DataError, LedgerError
from cxnlp.ledger.db import get_engine, head_revision
from cxnlp.ledger.models import FeedbackRecord
from cxnlp.ledger.records import FeedbackIn, record_feedback, record_rows, review_queue, update_record
from cxnlp.ledger.register import REGISTER_COLUMNS, export_register, export_review, import_review
from cxnlp.ledger.rules import LedgerRules
from cxnlp.ledger.summary import month_summary
from cxnlp.ledger.training_data import corrected_training_rows
from cxnlp.prediction import Prediction

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CATS = ("attitude", "expertise", "process", "speed")


def _pg_available() -> str | None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    try:
        with create_engine(PG_URL).connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001
        return f"no PostgreSQL at 127.0.0.1:5432 ({type(exc).__name__})"
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    reason = _pg_available()
    if reason:
        pytest.skip(f"PostgreSQL ledger tests skipped: {reason}")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"create schema {schema}"))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"drop schema {schema} cascade"))


def pred(categories, negative=0.9, confidence=0.9, evidence=None) -> Prediction:
    return Prediction(categories=list(categories), category_scores={c: 0.9 if c in categories else 0.1 for c in CATS},
                      sentiment="negative" if negative > 0.5 else "positive",
                      sentiment_scores={"negative": negative, "neutral": 0.0, "positive": 1 - negative},
                      confidence=confidence, needs_review=confidence < 0.65,
                      evidence=evidence or {c: [{"term": "慢", "start": 0, "end": 1}] for c in categories},
                      model_version="test-1")


RULES = LedgerRules.load()


def add(session, source_id, text_, categories, when, **kw):
    return record_feedback(session=session, item=FeedbackIn(text=text_, source_id=source_id, channel=kw.pop("channel", "电话"),
                                                            received_at=when), prediction=pred(categories, **kw), rules=RULES)


def test_schema_carries_its_alembic_revision(ledger_url):
    engine = get_engine(ledger_url)
    with engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == head_revision()


def test_sqlite_sessions_reuse_the_connection_returned_last(tmp_path):
    """Only the connections in use at once warm a page cache (a service worker kept five warm)."""
    engine = get_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    first, second = engine.connect(), engine.connect()
    last = second.connection.dbapi_connection
    first.close()
    second.close()
    with engine.connect() as again:
        assert again.connection.dbapi_connection is last


def test_the_sqlite_heap_limit_reaches_every_ledger_connection(tmp_path):
    from cxnlp.ledger.db import limit_sqlite_heap

    engine = get_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        limit_sqlite_heap(4 * 2**20)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA soft_heap_limit").scalar() == 4 * 2**20
    finally:
        limit_sqlite_heap(0)


def test_record_masks_personal_data_and_sets_severity_department_due(ledger_url):
    with Session(get_engine(ledger_url)) as session:
        now = datetime(2026, 11, 5, 10, 0)
        rec, created = add(session, "T-1", "客服态度差，我的电话13912345678，再不处理我就打12315", ["attitude"], now)
        session.commit()
        assert created and "13912345678" not in rec.text and "139****5678" in rec.text
        assert rec.severity == "重大" and rec.resolve_by == now + timedelta(days=7)  # 重大: closed within 7 days
        assert rec.urgency == "紧急" and rec.respond_by == now + timedelta(hours=1) and rec.kind == "complaint"
        assert rec.department == "客服中心" and rec.status == "open"
        again, created_again = add(session, "T-1", "客服态度差，我的电话13912345678，再不处理我就打12315", ["speed"], now)
        assert not created_again and again.id == rec.id
        with pytest.raises(ConflictError, match="T-1"):
            add(session, "T-1", "whatever", ["speed"], now)


def test_a_chunk_is_segmented_once_for_severity_urgency_and_problems(monkeypatch):
    from cxnlp.text import tokenize_batch

    segmented: list[str] = []

    def counting(texts, **kw):
        segmented.extend(texts)
        return tokenize_batch(texts, **kw)

    for module in ("cxnlp.ledger.cues", "cxnlp.ledger.rules", "cxnlp.ledger.problems"):
        monkeypatch.setattr(f"{module}.tokenize_batch", counting, raising=False)
    texts = ["退款半个月还没到账，再不处理我就打12315投诉", "电话转了好几次，每次都要重新说一遍，我要投诉", "等了很久"]
    rows = record_rows(items=[FeedbackIn(text=t, source_id=f"S-{i}") for i, t in enumerate(texts)],
                       predictions=[pred(["process"]) for _ in texts], rules=RULES, now=datetime(2026, 11, 5))
    assert [r["severity"] for r in rows] == ["重大", "中度", "一般"] and rows[0]["urgency"] == "紧急"
    assert rows[0]["problems"] and rows[1]["problems"]  # severity, urgency and problem cues all read
    assert set(texts[:2]) <= set(segmented) and sorted(segmented) == sorted(set(segmented))  # each at most once


def test_ledger_rules_read_the_tokens_the_model_made(small_model, monkeypatch):
    """With ``keep_tokens`` (as `classify --ledger` and POST /v1/feedback classify), a text that masking
    leaves as it is is not segmented again for the ledger's rules; the records are the same."""
    from cxnlp.prediction import predict_texts
    from cxnlp.text import tokenize_batch

    texts = ["退款半个月还没到账，再不处理我就打12315投诉", "我的电话13912345678，快递三天没到我要投诉", "前台很热情"]
    items = [FeedbackIn(text=t, source_id=f"K-{i}") for i, t in enumerate(texts)]
    now = datetime(2026, 11, 5)
    plain = record_rows(items=items, predictions=predict_texts(small_model, texts), rules=RULES, now=now)
    kept = predict_texts(small_model, texts, keep_tokens=True)
    segmented: list[str] = []

    def counting(batch, **kw):
        segmented.extend(batch)
        return tokenize_batch(batch, **kw)

    monkeypatch.setattr("cxnlp.ledger.cues.tokenize_batch", counting)
    assert record_rows(items=items, predictions=kept, rules=RULES, now=now) == plain
    assert segmented == [plain[1]["text"]]  # only the text whose phone number was masked
    assert "139****5678" in plain[1]["text"]


def test_ledger_urgency_is_read_again_only_where_masking_changed_the_text():
    """predict_texts reads the urgency in the text as sent, by the configured rules; the ledger keeps what
    the masked text says, so it reads again where masking changed the text or the rules differ."""
    now = datetime(2026, 11, 5)
    items = [FeedbackIn(text="等了很久也没人管", source_id="U-1"),
             FeedbackIn(text="我要打12345投诉，电话13912345678", source_id="U-2")]
    preds = [pred(["speed"]), pred(["attitude"])]
    for p in preds:
        p.urgency = "咨询"  # not what the rules say of either text: shows which reading is kept
    assert [r["urgency"] for r in record_rows(items=items, predictions=preds, rules=RULES, now=now)] == ["咨询", "紧急"]
    other = dataclasses.replace(RULES, respond_hours={**RULES.respond_hours, "咨询": 48.0})
    assert [r["urgency"] for r in record_rows(items=items, predictions=preds, rules=other, now=now)] == ["一般", "紧急"]


def test_status_changes_and_corrections_are_audited(ledger_url):
    with Session(get_engine(ledger_url)) as session:
        rec, _ = add(session, "T-2", "等了很久", ["speed"], datetime(2026, 11, 6))
        update_record(session=session, record_id=rec.id, changes={"status": "responded"}, actor="li")
        update_record(session=session, record_id=rec.id, changes={"status": "in_progress", "root_cause": "排班不足"},
                      actor="li")
        update_record(session=session, record_id=rec.id, changes={"corrected_categories": ["speed", "process"]},
                      actor="wang", known_categories=CATS)
        with pytest.raises(LedgerError):
            update_record(session=session, record_id=rec.id, changes={"corrected_categories": ["price"]},
                          actor="wang", known_categories=CATS)
        session.commit()
        assert rec.effective_categories == ["process", "speed"] and rec.corrected_by == "wang"
        assert [a.field for a in rec.audit] == ["created", "first_response_at", "status", "status", "root_cause",
                                                "corrected_categories"]


def test_month_summary_counts_shares_changes_and_alerts(ledger_url):
    with Session(get_engine(ledger_url)) as session:
        for i in range(5):
            add(session, f"O-{i}", "慢", ["speed"], datetime(2026, 10, 3 + i))
        for i in range(8):
            add(session, f"N-s{i}", "慢", ["speed"], datetime(2026, 11, 3 + i), channel="在线")
        add(session, "N-a", "凶", ["attitude"], datetime(2026, 11, 9))
        add(session, "N-p", "好", [], datetime(2026, 11, 9), negative=0.1)
        session.commit()
        s = month_summary(session=session, month="2026-11", categories=CATS, now=datetime(2026, 12, 30))
    assert s["total"] == 10 and s["negative"] == 9 and s["kinds"] == {"complaint": 9, "praise": 1, "inquiry": 0}
    assert s["by_category"]["speed"] == {"count": 8, "share": 0.8889}
    assert s["change"]["speed"] == {"previous": 5, "current": 8, "change": 0.6}
    kinds = {(a["category"], a["kind"]) for a in s["alerts"]}
    assert ("speed", "share") in kinds and ("speed", "growth") in kinds and ("attitude", "growth") not in kinds
    assert len(s["overdue"]) == 9  # the complaints: the praise has no resolution deadline
    assert s["by_channel"]["在线"]["count"] == 8


def test_register_to_csv_is_csv_with_a_bom_and_formulas_neutralised(tmp_path):
    with Session(get_engine(f"sqlite:///{tmp_path / 'ledger.db'}")) as session:
        add(session, "R-1", "=HYPERLINK(1)等了很久", ["speed"], datetime(2026, 10, 3))
        add(session, "R-2", "态度差", ["attitude"], datetime(2026, 11, 3))
        session.commit()
        n = export_register(session=session, months=["2026-10", "2026-11"], path=tmp_path / "台账.csv", categories=CATS)
        raw = (tmp_path / "台账.csv").read_bytes()
        assert n == 2 and raw.startswith(b"\xef\xbb\xbf") and not raw.startswith(b"\xef\xbb\xbfPK")
        header, *rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        assert tuple(header) == REGISTER_COLUMNS and [r[0] for r in rows] == ["R-1", "R-2"]
        assert rows[0][4].startswith("'=HYPERLINK")
        assert export_register(session=session, months=["2026-10", "2026-10"], path=tmp_path / "台账.csv",
                               categories=CATS) == 1  # a month named twice: its records once
        assert export_register(session=session, months=["2026-10", "2026-10"], path=tmp_path / "台账.xlsx",
                               categories=CATS) == 1
        assert load_workbook(tmp_path / "台账.xlsx").sheetnames == ["汇总", "2026-10"]
        (tmp_path / "台账.xlsx").unlink()
        with pytest.raises(DataError, match=r"\.xlsx, \.csv, \.tsv"):
            export_register(session=session, months=["2026-11"], path=tmp_path / "台账.json", categories=CATS)
        assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("ledger.db")] == ["台账.csv"]


def test_review_import_reports_a_formula_without_a_saved_value(tmp_path):
    with Session(get_engine(f"sqlite:///{tmp_path / 'ledger.db'}")) as session:
        rec, _ = add(session, "F-1", "等了很久", ["speed"], datetime(2026, 11, 3), confidence=0.5)
        session.commit()
        export_review(session=session, path=tmp_path / "review.xlsx", limit=10)
        wb = load_workbook(tmp_path / "review.xlsx")
        wb.active["G2"] = '=LOWER("ATTITUDE")'  # openpyxl saves no value beside it: it would read as empty
        wb.save(tmp_path / "review.xlsx")
        result = import_review(session=session, path=tmp_path / "review.xlsx", categories=CATS)
        assert result.applied == 0 and result.unchanged == 0
        assert result.errors == [f"{tmp_path / 'review.xlsx'}: row 2: formula without a saved value in G2 (read as "
                                 "empty): open and save the file in Excel, then run again"]


def test_register_and_review_round_trip(ledger_url, tmp_path):
    with Session(get_engine(ledger_url)) as session:
        ids = [add(session, f"R-{i}", f"第{i}条反馈", ["speed"], datetime(2026, 11, 1 + i), confidence=0.5 + i / 100)[0].id
               for i in range(12)]
        session.commit()
        n = export_register(session=session, months=["2026-11"], path=tmp_path / "台账.xlsx", categories=CATS)
        wb = load_workbook(tmp_path / "台账.xlsx")
        assert n == 12 and wb.sheetnames == ["汇总", "2026-11"]
        assert tuple(c.value for c in wb["2026-11"][1]) == REGISTER_COLUMNS
        assert export_review(session=session, path=tmp_path / "review.xlsx", limit=10) == 10
        wb = load_workbook(tmp_path / "review.xlsx")
        ws = wb.active
        ws["G2"], ws["H2"], ws["J2"] = "attitude|speed", "neutral", "zhao"
        ws["G3"] = "none"
        ws["G4"] = "no-such-label"
        wb.save(tmp_path / "review.xlsx")
        result = import_review(session=session, path=tmp_path / "review.xlsx", categories=CATS)
        session.commit()
        assert result.applied == 2 and len(result.errors) == 1 and "row 4" in result.errors[0]
        first = session.get(FeedbackRecord, ids[0])
        assert first.effective_categories == ["attitude", "speed"] and first.corrected_by == "zhao"
        assert session.get(FeedbackRecord, ids[1]).effective_categories == []
        assert ids[0] not in [r.id for r in review_queue(session=session, limit=50)]
    rows = corrected_training_rows(2.0, url=ledger_url)
    assert len(rows) == 2 and rows.categories[0] == ["attitude", "speed"] and rows.sentiments[0] == "neutral"
