"""The ledger keeps no personal data anywhere, records a run all or nothing (interrupts included),
refuses reused ids with other texts, serializes concurrent changes, and sums months in SQL."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from openpyxl import load_workbook
from sqlalchemy import create_engine, delete, event, func, select, text
from sqlalchemy.orm import Session

from cxnlp.errors import ConflictError, LedgerError
from cxnlp.ledger.db import get_engine
from cxnlp.ledger.models import AuditEntry, FeedbackRecord
from cxnlp.ledger.records import FeedbackIn, record_feedback, update_record
from cxnlp.ledger.register import export_register
from cxnlp.ledger.summary import ALERT_GROWTH, ALERT_MIN_PREVIOUS, ALERT_SHARE, OPEN_STATUSES, month_records, month_summary, previous_month
from cxnlp.text import normalize, tokenize_spans
from test_ledger import CATS, RULES, ledger_url, pred  # noqa: F401 - the fixture is used by name
from test_masking import texts_with_pii

ROOT = Path(__file__).resolve().parent.parent


def _alnum(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", normalize(s))


def _token_evidence(text_: str, labels=("speed", "attitude")) -> dict:
    """Evidence as the model gives it: words of the original text, personal data included."""
    spans = [{"term": t.term if t.term.isascii() and t.term.endswith("x") else text_[t.start:t.end],
              "start": t.start, "end": t.end} for t in tokenize_spans(text_)]
    return {label: spans for label in labels}


# --- item 2: evidence and everything stored come from the masked text ---------------------------

def test_evidence_of_a_record_holds_no_personal_data(ledger_url):
    text_ = "我的手机号13812345678，身份证110101199003071234，客服态度很差一直不回复"
    evidence = {"speed": [{"term": "110101199003071234", "start": 20, "end": 38},
                          {"term": "客服", "start": 39, "end": 41}],
                "attitude": [{"term": "13812345678", "start": 5, "end": 16}, {"term": "态度", "start": 41, "end": 43}]}
    with Session(get_engine(ledger_url)) as session:
        rec, _ = record_feedback(session=session, item=FeedbackIn(text=text_, source_id="P-1",
                                                                  received_at=datetime(2026, 11, 3)),
                                 prediction=pred(["speed", "attitude"], evidence=evidence), rules=RULES)
        session.commit()
        stored = json.dumps({"text": rec.text, "evidence": rec.evidence}, ensure_ascii=False)
    assert "110101199003071234" not in stored and "13812345678" not in stored
    assert len(rec.text) == len(text_)
    terms = [e["term"] for spans in rec.evidence.values() for e in spans]
    assert terms == ["客服", "态度"]
    assert all(rec.text[e["start"]:e["end"]] == e["term"] for spans in rec.evidence.values() for e in spans)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts_with_pii())
def test_generated_personal_data_is_in_no_record_summary_or_export(case):
    text_, placed = case
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/l.db"
        with Session(get_engine(url)) as session:
            rec, _ = record_feedback(session=session, item=FeedbackIn(text=text_, source_id="H-1", channel="电话",
                                                                      received_at=datetime(2026, 11, 5)),
                                     prediction=pred(["speed", "attitude"], evidence=_token_evidence(text_)),
                                     rules=RULES)
            session.commit()
            fields = [rec.text, json.dumps(rec.evidence, ensure_ascii=False)]
            summary = month_summary(session=session, month="2026-11", categories=CATS)
            fields += [e for p in summary["problems"] for e in p["examples"]]
            export_register(session=session, months=["2026-11"], path=Path(tmp) / "r.xlsx", categories=CATS)
            wb = load_workbook(Path(tmp) / "r.xlsx")
            fields += [str(c.value) for ws in wb for row in ws.iter_rows() for c in row if c.value is not None]
        get_engine(url).dispose()
    assert fields[0].replace("*", "") != text_.replace("*", "")
    for start, end, secret in placed:
        for value in fields:
            assert text_[start:end] not in value, (text_, value)
            if len(secret) >= 11:
                assert _alnum(secret) not in _alnum(value), (text_, value)


# --- item 3 / 4: ids -----------------------------------------------------------------------------

def test_reused_id_with_another_text_is_a_conflict_and_the_first_text_stays(ledger_url):
    with Session(get_engine(ledger_url)) as session:
        item = FeedbackIn(text="物流太慢了", source_id="C-1", received_at=datetime(2026, 11, 1))
        first, created = record_feedback(session=session, item=item, prediction=pred(["speed"]), rules=RULES)
        session.commit()
        same, again = record_feedback(session=session, item=item, prediction=pred(["speed"]), rules=RULES)
        assert created and not again and same.id == first.id
        with pytest.raises(ConflictError):
            record_feedback(session=session, item=FeedbackIn(text="客服态度很差", source_id="C-1"),
                            prediction=pred(["attitude"]), rules=RULES)
        session.rollback()
        assert session.scalar(select(FeedbackRecord.text).where(FeedbackRecord.source_id == "C-1")) == "物流太慢了"


def test_service_posts_without_ids_are_separate_and_reused_ids_conflict(small_model, tmp_path):
    from fastapi.testclient import TestClient

    from cxnlp.settings import Settings
    from service.main import create_app

    settings_ = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}")
    with TestClient(create_app(model=small_model, settings=settings_), base_url="http://localhost") as client:
        body = {"text": "客服态度很差，等了很久"}
        a, b = client.post("/v1/feedback", json=body), client.post("/v1/feedback", json=body)
        assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
        key = {"Idempotency-Key": "k-1"}
        c, d = client.post("/v1/feedback", json=body, headers=key), client.post("/v1/feedback", json=body, headers=key)
        assert c.status_code == 201 and d.status_code == 200 and c.json()["id"] == d.json()["id"]
        clash = client.post("/v1/feedback", json={"text": "物流太慢"}, headers=key)
        assert clash.status_code == 409 and "different text" in clash.json()["detail"]
        first = client.post("/v1/feedback", json={"text": "物流太慢", "source_id": "S-9"})
        clash = client.post("/v1/feedback", json={"text": "态度差", "source_id": "S-9"})
        assert first.status_code == 201 and clash.status_code == 409
        assert client.get(f"/v1/feedback/{first.json()['id']}").json()["text"] == "物流太慢"


def test_service_ids_disagreeing_or_in_the_services_own_form_are_refused(small_model, tmp_path):
    from fastapi.testclient import TestClient

    from cxnlp.settings import Settings
    from service.main import create_app

    settings_ = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}")
    with TestClient(create_app(model=small_model, settings=settings_), base_url="http://localhost") as client:
        body = {"text": "客服态度很差，等了很久", "source_id": "S-1"}
        clash = client.post("/v1/feedback", json=body, headers={"Idempotency-Key": "k-2"})
        assert clash.status_code == 422
        assert clash.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
        assert "differ" in clash.json()["detail"][0]["msg"]
        same = [client.post("/v1/feedback", json=body, headers={"Idempotency-Key": "S-1"}) for _ in range(2)]
        assert [r.status_code for r in same] == [201, 200] and same[0].json()["source_id"] == "S-1"
        keyed = client.post("/v1/feedback", json={"text": "物流太慢"}, headers={"Idempotency-Key": "k-3"}).json()
        for taken in (keyed["source_id"], "auto:0123456789abcdef01234567"):
            r = client.post("/v1/feedback", json={"text": "物流太慢", "source_id": taken})
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "source_id"]
            assert "idem: or auto:" in r.json()["detail"][0]["msg"]
        doc = client.get("/openapi.json").json()
        assert "same value" in doc["paths"]["/v1/feedback"]["post"]["description"]


# --- item 3: a classify --ledger run records all or nothing ---------------------------------------

def _ledger_rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("select count(*) from feedback")).scalar()
    finally:
        engine.dispose()


def _big_csv(path: Path, rows: int) -> Path:
    texts = ["客服态度很差，电话13812345678打了三次都没人接", "物流太慢了，等了一个星期", "师傅不专业，装了两次都没装好",
             "退款流程太复杂，来回跑了好几趟", "前台服务很好，下次还来"]
    with path.open("w", encoding="utf-8") as fh:
        fh.write("id,text\n")
        for i in range(rows):
            fh.write(f"T{i},{texts[i % len(texts)]}第{i}次\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_classify_records_nothing(tmp_path, sig):
    source = _big_csv(tmp_path / "big.csv", 400_000)
    db = tmp_path / "l.db"
    url = f"sqlite:///{db}"
    env = {**os.environ, "CXNLP_LEDGER_URL": url, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "cxnlp", "classify", str(source), "-o", str(tmp_path / "out.csv"),
                             "--ledger", "--workers", "1", "--chunk-size", "2000"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wal = Path(f"{db}-wal")
    deadline = time.monotonic() + 120
    # rows are being written (uncommitted) once the write-ahead log grows
    while time.monotonic() < deadline and proc.poll() is None and (not wal.exists() or wal.stat().st_size < 2_000_000):
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted: make the file bigger"
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert _ledger_rows(url) == 0
    assert not (tmp_path / "out.csv").exists()


def test_a_run_that_fails_midway_records_nothing(ledger_url, tmp_path, small_model):
    from cxnlp.batch import classify_file
    from cxnlp.ledger.recording import BatchRecorder

    source = _big_csv(tmp_path / "in.csv", 30)
    rec = BatchRecorder(url=ledger_url, rules=RULES, source_name="in.csv", default_channel=None)
    calls = []

    def progress(rows: int) -> None:
        calls.append(rows)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        classify_file(small_model, source, tmp_path / "out.jsonl", chunk_size=10, sink=rec, progress=progress)
    assert _ledger_rows(ledger_url) == 0


def test_a_classify_run_is_one_batched_insert_per_chunk(ledger_url, tmp_path, small_model):
    from cxnlp.batch import classify_file
    from cxnlp.ledger.recording import BatchRecorder

    source = _big_csv(tmp_path / "in.csv", 50)
    statements: list[str] = []
    engine = get_engine(ledger_url)
    listen = lambda conn, cursor, stmt, *a: statements.append(stmt.split()[0].upper())  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        rec = BatchRecorder(url=ledger_url, rules=RULES, source_name="in.csv", default_channel=None)
        classify_file(small_model, source, tmp_path / "out.jsonl", chunk_size=25, sink=rec)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert _ledger_rows(ledger_url) == 50 and rec.created == 50
    assert "SAVEPOINT" not in statements and statements.count("INSERT") <= 4  # 2 chunks × (records, audit)


# --- item 5: concurrent PATCHes ------------------------------------------------------------------

def test_concurrent_status_changes_never_break_the_workflow(ledger_url):
    engine = get_engine(ledger_url)
    with Session(engine) as session:
        rec, _ = record_feedback(session=session, item=FeedbackIn(text="等了很久", source_id="L-1",
                                                                  received_at=datetime(2026, 11, 1)),
                                 prediction=pred(["speed"]), rules=RULES)
        session.commit()
        rid = rec.id

    def change(status: str, barrier: threading.Barrier, errors: list) -> None:
        with Session(engine) as s:
            barrier.wait()
            try:
                update_record(session=s, record_id=rid, changes={"status": status}, actor=status)
                s.commit()
            except LedgerError as exc:  # a forbidden move or a lost race: refused, never applied
                s.rollback()
                errors.append(exc)

    refused: list = []
    for status in ("responded", "in_progress"):
        with Session(engine) as s:
            update_record(session=s, record_id=rid, changes={"status": status}, actor="setup")
            s.commit()
    for _ in range(15):
        with Session(engine) as s:
            path = {"in_progress": ["resolved"], "closed": ["in_progress", "resolved"]}[s.get(FeedbackRecord, rid).status]
        for status in path:  # back to resolved, from where closed and in_progress (reopen) are both allowed
            with Session(engine) as s:
                update_record(session=s, record_id=rid, changes={"status": status}, actor="setup")
                s.commit()
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=change, args=(st, barrier, refused)) for st in ("closed", "in_progress")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with Session(engine) as s:
        moves = [(a.old, a.new) for a in s.scalars(select(AuditEntry).where(AuditEntry.feedback_id == rid,
                                                                             AuditEntry.field == "status")
                                                  .order_by(AuditEntry.id))]
    assert ("in_progress", "closed") not in moves  # the loser of a race is refused, never applied
    assert all(prev[1] == cur[0] for prev, cur in zip(moves, moves[1:])), moves  # the audit chains
    assert moves[0][0] == "open"


# --- item 7: the summary is computed by the database ---------------------------------------------

def _python_summary(session, month: str, now: datetime) -> dict:
    """The month's numbers from the records themselves (the reference the SQL must equal)."""
    def negatives(records):
        neg = [r for r in records if r.effective_sentiment == "negative"]
        return (len(neg), Counter(c for r in neg for c in r.effective_categories),
                Counter(r.channel or "(none)" for r in neg), Counter(r.department or "(none)" for r in neg), neg)

    records, prev = month_records(session, month), month_records(session, previous_month(month))
    negative, by_cat, by_channel, by_dept, neg = negatives(records)
    prev_negative, prev_cat, _, _, _ = negatives(prev)

    def shares(counts, keys=None):
        names = keys if keys is not None else list(counts)
        return {k: {"count": counts.get(k, 0), "share": round(counts.get(k, 0) / negative, 4) if negative else 0.0}
                for k in names}

    complaints = [r for r in records if r.kind == "complaint"]
    prev_complaints = [r for r in prev if r.kind == "complaint"]
    c_cat = Counter(c for r in complaints for c in r.effective_categories)
    c_prev = Counter(c for r in prev_complaints for c in r.effective_categories)
    change = {c: {"previous": prev_cat.get(c, 0), "current": by_cat.get(c, 0),
                  "change": round((by_cat.get(c, 0) - prev_cat[c]) / prev_cat[c], 4) if prev_cat.get(c) else None}
              for c in CATS}
    by_category = shares(by_cat, list(CATS))
    share = {c: round(c_cat[c] / len(complaints), 4) if complaints else 0.0 for c in CATS}
    growth = {c: round((c_cat[c] - c_prev[c]) / c_prev[c], 4) if c_prev[c] >= ALERT_MIN_PREVIOUS else None for c in CATS}
    alerts = [a for c in CATS for a in (
        [{"category": c, "kind": "share", "value": share[c]}] if complaints and share[c] >= ALERT_SHARE else []) + (
        [{"category": c, "kind": "growth", "value": growth[c]}]
        if growth[c] is not None and growth[c] >= ALERT_GROWTH else [])]
    return {"total": len(records), "negative": negative, "previous": {"month": previous_month(month), "total": len(prev),
                                                                       "negative": prev_negative},
            "by_category": by_category, "by_channel": shares(by_channel), "by_department": shares(by_dept),
            "change": change,
            "kinds": dict(Counter(r.kind for r in records)),
            "overdue": sorted((r.resolve_by, r.id) for r in complaints if r.status in OPEN_STATUSES and r.resolve_by < now),
            "alerts": alerts, "status": dict(Counter(r.status for r in records))}


def test_sql_summary_equals_the_records_and_loads_none(ledger_url):
    import random

    rnd = random.Random(7)
    words = ["慢", "等", "态度", "凶", "退款", "流程", "师傅", "专业", "电话", "没人"]
    engine = get_engine(ledger_url)
    with Session(engine) as session:
        for i in range(400):
            month = rnd.choice([10, 11, 11, 11, 12])
            cats = rnd.sample(CATS, rnd.randint(0, 2))
            ev = {c: [{"term": rnd.choice(words), "start": 0, "end": 1} for _ in range(rnd.randint(1, 3))] for c in cats}
            item = FeedbackIn(text=f"第{i}条", source_id=f"G-{i}", channel=rnd.choice(["电话", "在线", None, "APP"]),
                              received_at=datetime(2026, month, rnd.randint(1, 28), rnd.randint(0, 23)))
            rec, _ = record_feedback(session=session, item=item, rules=RULES,
                                     prediction=pred(cats, negative=rnd.choice([0.1, 0.6, 0.9]), evidence=ev))
            if rnd.random() < 0.2:
                update_record(session=session, record_id=rec.id, actor="a",
                              changes={"corrected_sentiment": rnd.choice(["negative", "neutral"]),
                                       "corrected_categories": rnd.sample(CATS, rnd.randint(0, 2))})
            if rnd.random() < 0.3:
                for status in ("responded", "resolved", "closed"):
                    update_record(session=session, record_id=rec.id, actor="a", changes={"status": status})
        session.commit()
    now = datetime(2026, 11, 20)
    with Session(engine) as session:
        expected = _python_summary(session, "2026-11", now)
    loaded = []
    listen = lambda *a: loaded.append(1)  # noqa: E731
    event.listen(FeedbackRecord, "load", listen)
    try:
        with Session(engine) as session:
            got = month_summary(session=session, month="2026-11", categories=CATS, now=now)
    finally:
        event.remove(FeedbackRecord, "load", listen)
    assert not loaded  # no record object was built: the database did the counting
    assert got["total"] == expected["total"] > 100 and got["negative"] == expected["negative"]
    for key in ("by_category", "by_channel", "by_department", "change", "status"):
        assert got[key] == expected[key], key
    assert {k: v for k, v in got["kinds"].items() if v} == expected["kinds"]
    assert {k: got["previous"][k] for k in ("month", "total", "negative")} == expected["previous"]
    assert [o["id"] for o in got["overdue"]] == [rid for _, rid in expected["overdue"]]
    assert [{k: a[k] for k in ("category", "kind", "value")} for a in got["alerts"]] == expected["alerts"]


def test_a_numbered_version_1_ledger_is_upgraded_in_place(ledger_url):
    """The 1.0.0 schema (revision 0001, numbered version 1, no Alembic table) on either database: the
    record is kept and gains the new columns."""
    from alembic import command

    from cxnlp.ledger import db

    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        command.upgrade(db._alembic_config(conn), "0001")
        conn.execute(text("INSERT INTO cxnlp_schema (id, version) VALUES (1, 1)"))
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text(
            "INSERT INTO feedback (source_id, received_at, recorded_at, text, categories, category_scores, sentiment,"
            " sentiment_scores, confidence, evidence, model_version, severity, due_at, status) VALUES ('U-1',"
            " '2026-11-01 08:00:00', '2026-11-01 08:00:00', '等了很久', '[\"speed\"]', '{}', 'negative', '{}', 0.9,"
            " '{}', 'v1', '一般', '2026-11-08 08:00:00', 'open')"))
    engine.dispose()
    assert db.prepare(ledger_url) == db.head_revision()
    with Session(get_engine(ledger_url)) as session:
        rec = session.scalar(select(FeedbackRecord).where(FeedbackRecord.source_id == "U-1"))
        assert rec.version == 1 and rec.kind == "complaint" and rec.resolve_by == datetime(2026, 11, 8, 8)
        assert rec.respond_by == datetime(2026, 11, 1, 12) and rec.urgency == "一般" and rec.problems == []
        update_record(session=session, record_id=rec.id, changes={"status": "responded"}, actor="a")
        session.commit()
        assert rec.version > 1 and rec.status == "responded" and rec.first_response_at is not None


def test_a_run_reusing_an_id_for_another_text_records_nothing(ledger_url, tmp_path, small_model):
    from cxnlp.batch import classify_file
    from cxnlp.ledger.recording import BatchRecorder

    with Session(get_engine(ledger_url)) as session:
        record_feedback(session=session, item=FeedbackIn(text="别的内容", source_id="T7"), prediction=pred(["speed"]),
                        rules=RULES)
        session.commit()
    source = _big_csv(tmp_path / "in.csv", 20)  # ids T0…T19: T7 is taken by another text
    rec = BatchRecorder(url=ledger_url, rules=RULES, source_name="in.csv", default_channel=None)
    with pytest.raises(ConflictError, match="T7"):
        classify_file(small_model, source, tmp_path / "out.jsonl", chunk_size=5, sink=rec)
    assert _ledger_rows(ledger_url) == 1


# --- a ledger locked by another writer: a typed error, 503 + Retry-After, one line in the CLI ---

@pytest.fixture
def locked_ledger(tmp_path, monkeypatch):
    """A SQLite ledger whose write lock another connection holds (as a long ``classify --ledger`` run
    does), with a short busy timeout so the test does not wait 30 s."""
    import sqlite3

    import cxnlp.ledger.db as db

    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT", 0.2)
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    get_engine(url)  # schema created
    holder = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield url
    holder.rollback()
    holder.close()


def test_a_locked_ledger_is_a_typed_busy_error(locked_ledger):
    from cxnlp.errors import LedgerBusyError

    with pytest.raises(LedgerBusyError, match="locked by another writer"):
        with Session(get_engine(locked_ledger)) as session:
            record_feedback(session=session, item=FeedbackIn(text="物流太慢", source_id="B-1"),
                            prediction=pred(["speed"]), rules=RULES)
            session.commit()


def test_a_locked_ledger_answers_503_with_retry_after(locked_ledger, small_model):
    from fastapi.testclient import TestClient

    from cxnlp.settings import Settings
    from service.main import create_app

    with TestClient(create_app(model=small_model, settings=Settings(ledger_url=locked_ledger)), base_url="http://localhost") as client:
        answer = client.post("/v1/feedback", json={"text": "客服态度很差"})
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert "locked by another writer" in answer.json()["detail"]


def test_a_locked_ledger_is_one_line_in_the_cli(locked_ledger, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cxnlp.cli import app
    from cxnlp.settings import get_settings

    monkeypatch.setenv("CXNLP_LEDGER_URL", locked_ledger)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["classify", str(_big_csv(tmp_path / "in.csv", 5)),
                                          "-o", str(tmp_path / "out.csv"), "--ledger"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.exception
    assert "locked by another writer" in result.stderr
    assert len([line for line in result.stderr.splitlines() if "locked" in line]) == 1
    assert not (tmp_path / "out.csv").exists()
