"""The ledger runs the service cycle (issue 11): urgency and kind by rules, both clocks, the status
workflow and its time stamps, follow-ups, high-frequency problems, the month's numbers (the same in
the CLI, over HTTP and in the 汇总 sheet), the migration of a 1.0.0 ledger and where the ledger is."""
from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from cxnlp.errors import LedgerError, NotFoundError
from cxnlp.ledger.db import get_engine
from cxnlp.ledger.followups import list_followups, record_followup
from cxnlp.ledger.models import AuditEntry, FeedbackRecord, FollowUp
from cxnlp.ledger.problems import ProblemCatalogue, accept_problem, suggest_problems
from cxnlp.ledger.recording import parse_time
from cxnlp.ledger.records import TRANSITIONS, FeedbackIn, record_feedback, update_record
from cxnlp.ledger.register import export_followups, export_register, import_followups
from cxnlp.ledger.rules import LedgerRules
from cxnlp.ledger.summary import month_bounds, month_summary, summary_tables
from test_ledger import CATS, RULES, ledger_url, pred  # noqa: F401 - the fixture is used by name

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def scores(negative: float, positive: float | None = None) -> dict[str, float]:
    positive = (1 - negative) / 2 if positive is None else positive
    return {"negative": negative, "neutral": round(1 - negative - positive, 4), "positive": positive}


# --- 1. urgency and kind -------------------------------------------------------------------------

@pytest.mark.parametrize("text,sentiment,expected", [
    ("家里光猫冒烟了，赶紧派人来看看", scores(0.6), "紧急"),                 # safety
    ("再不处理我就打12345投诉你们", scores(0.8), "紧急"),                    # threat to escalate
    ("这已经是第三次投诉了，宽带还是没修好", scores(0.9), "紧急"),            # repeated complaint
    ("家里老人独居，断网了联系不上家人", scores(0.7), "紧急"),                # vulnerable customer
    ("订单号A123456789，装机师傅一直不来", scores(0.6), "一般"),              # no hotline inside a number
    ("没有受伤，就是装机师傅态度不好", scores(0.7), "一般"),                  # a negated cue takes nothing
    ("12345热线推荐的师傅，服务很好", scores(0.05, 0.9), "咨询"),            # praise naming the hotline
    ("请问宽带怎么续费？", scores(0.1), "咨询"),                              # a question
    ("我想办理一下套餐变更", scores(0.2), "咨询"),                            # a request without failure
    ("家里宽带断网了，麻烦派人看看", scores(0.3), "一般"),                    # a failure in neutral words
    ("断网问题修好了，谢谢师傅", scores(0.1, 0.8), "咨询"),                   # praise of a fix
    ("客服态度太差了", scores(0.9), "一般"),                                  # an ordinary complaint
    ("宽带怎么续费", scores(0.7), "咨询"),                                    # a question read as negative
    ("宽带怎么还没修好", scores(0.7), "一般"),                                # a failure asked as a question
    ("你们这是怎么回事?", scores(0.8), "一般"),
])
def test_urgency_rules(text, sentiment, expected):
    assert RULES.urgencies([text], [sentiment]) == [expected]
    assert RULES.urgency_of(text, sentiment) == expected


@pytest.mark.parametrize("sentiment,urgency,categories,kind", [
    ("negative", "一般", [], "complaint"),
    ("neutral", "紧急", [], "complaint"),         # a safety report in calm words
    ("neutral", "一般", ["speed"], "complaint"),  # a failure with a category
    ("positive", "一般", ["attitude"], "praise"),
    ("positive", "咨询", [], "praise"),
    ("neutral", "咨询", [], "inquiry"),
    ("neutral", "一般", [], "inquiry"),
    ("negative", "咨询", ["process"], "inquiry"),  # a plain question the model reads as negative
])
def test_kind_rule(sentiment, urgency, categories, kind):
    assert LedgerRules.kind_of(sentiment, urgency, categories) == kind


def test_default_tiers_and_a_company_copy_of_the_rules(tmp_path):
    assert RULES.due_hours == {"一般": 48, "中度": 72, "重大": 168}  # were reversed in 1.0
    assert RULES.respond_hours == {"紧急": 1, "一般": 4, "咨询": 24}
    shipped = (Path(__file__).resolve().parent.parent / "cxnlp" / "data" / "ledger_rules.toml").read_text(encoding="utf-8")
    own = tmp_path / "rules.toml"
    own.write_text(shipped.replace('"紧急" = 1\n', '"紧急" = 0.5\n'), encoding="utf-8")
    assert LedgerRules.load(own).respond_hours["紧急"] == 0.5
    own.write_text(shipped.replace('"咨询" = 24\n', ''), encoding="utf-8")
    with pytest.raises(Exception, match="respond_hours"):
        LedgerRules.load(own)


def test_every_result_carries_its_urgency(small_model):
    from cxnlp.prediction import RESULT_FIELDS, predict_texts

    results = predict_texts(small_model, ["再不处理我就打12345投诉你们，态度太差了", "", "请问宽带怎么续费"])
    assert "urgency" in RESULT_FIELDS and results[0].to_dict()["urgency"] == "紧急"
    assert results[1].urgency is None and results[2].urgency in ("咨询", "一般")


# --- 2. the clock of a record --------------------------------------------------------------------

def add(session, sid, text_, categories, when, negative=0.9, neutral=False, **kw):
    item = FeedbackIn(text=text_, source_id=sid, channel=kw.pop("channel", "电话"), received_at=when,
                      customer=kw.pop("customer", None))
    prediction = pred(categories, negative=negative, **kw)
    if neutral:
        prediction.sentiment, prediction.sentiment_scores = "neutral", scores(negative, 0.1)
    return record_feedback(session=session, item=item, prediction=prediction, rules=RULES)[0]


def test_clocks_by_urgency_and_severity_and_none_for_praise(ledger_url):
    t = datetime(2026, 11, 5, 2, 0)
    with Session(get_engine(ledger_url)) as session:
        urgent = add(session, "C-1", "家里光猫冒烟了，有安全隐患", ["expertise"], t)
        plain = add(session, "C-2", "客服态度太差了", ["attitude"], t)
        praise = add(session, "C-3", "师傅很专业，点赞", ["expertise"], t, negative=0.05)
        session.commit()
        assert (urgent.urgency, urgent.severity, urgent.kind) == ("紧急", "重大", "complaint")
        assert urgent.respond_by == t + timedelta(hours=1) and urgent.resolve_by == t + timedelta(days=7)
        assert (plain.urgency, plain.severity) == ("一般", "一般")
        assert plain.respond_by == t + timedelta(hours=4) and plain.resolve_by == t + timedelta(hours=48)
        assert praise.kind == "praise" and praise.urgency == "咨询" and praise.resolve_by is None
        assert praise.respond_by == t + timedelta(hours=24)
        s = month_summary(session=session, month="2026-11", categories=CATS, now=datetime(2027, 1, 1))
        assert [o["source_id"] for o in s["overdue"]] == ["C-2", "C-1"]  # praise is never overdue


def test_times_without_offset_are_local_and_months_are_local_months():
    assert parse_time("2026-11-01 07:30") == datetime(2026, 11, 1, 7, 30, tzinfo=parse_time("2026-11-01").tzinfo)
    stored = parse_time("2026-11-01 07:30").astimezone(timezone.utc).replace(tzinfo=None)
    assert stored == datetime(2026, 10, 31, 23, 30)  # Asia/Shanghai is UTC+8
    assert parse_time("2026-11-01T07:30:00+00:00").utcoffset() == timedelta(0)
    assert month_bounds("2026-11") == (datetime(2026, 10, 31, 16), datetime(2026, 11, 30, 16))


# --- the workflow --------------------------------------------------------------------------------

ALL = ("open", "responded", "in_progress", "resolved", "closed")
PATHS = {"open": [], "responded": ["responded"], "in_progress": ["responded", "in_progress"],
         "resolved": ["responded", "resolved"], "closed": ["responded", "resolved", "closed"]}


@pytest.mark.parametrize("start,target", [(a, b) for a in ALL for b in ALL if a != b])
def test_each_status_move_is_allowed_or_refused(ledger_url, start, target):
    with Session(get_engine(ledger_url)) as session:
        rec = add(session, "W-1", "等了很久没人处理", ["speed"], datetime(2026, 11, 2))
        for step in PATHS[start]:
            update_record(session=session, record_id=rec.id, changes={"status": step}, actor="a")
        allowed = target in TRANSITIONS[start] and (start, target) != ("responded", "closed")  # a complaint
        if not allowed:
            with pytest.raises(LedgerError, match="cannot go|resolved before"):
                update_record(session=session, record_id=rec.id, changes={"status": target}, actor="a")
            return
        update_record(session=session, record_id=rec.id, changes={"status": target}, actor="a")
        session.commit()
        assert rec.status == target
        assert any(a.field == "status" and (a.old, a.new) == (start, target) for a in rec.audit)


def test_time_stamps_follow_the_status(ledger_url):
    t0 = datetime(2026, 11, 2, 1)
    with Session(get_engine(ledger_url)) as session:
        rec = add(session, "S-1", "宽带断网三天了", ["speed"], t0)
        for hours, status in ((1, "responded"), (5, "in_progress"), (20, "resolved"), (30, "closed")):
            update_record(session=session, record_id=rec.id, changes={"status": status}, actor="a",
                          at=t0 + timedelta(hours=hours))
        session.commit()
        assert rec.first_response_at == t0 + timedelta(hours=1)
        assert rec.resolved_at == t0 + timedelta(hours=20)
        assert rec.closed_at == rec.customer_notified_at == t0 + timedelta(hours=30)
        fields = [a.field for a in rec.audit]
        assert {"first_response_at", "resolved_at", "closed_at", "customer_notified_at"} <= set(fields)
        update_record(session=session, record_id=rec.id, changes={"status": "in_progress"}, actor="b",
                      at=t0 + timedelta(hours=40))  # the fix did not hold
        assert rec.resolved_at is None and rec.closed_at is None
        assert rec.first_response_at == t0 + timedelta(hours=1)  # the first response stays


def test_a_complaint_is_resolved_before_it_is_closed_but_a_question_may_close(ledger_url):
    with Session(get_engine(ledger_url)) as session:
        complaint = add(session, "Q-1", "客服态度太差了", ["attitude"], datetime(2026, 11, 2))
        question = add(session, "Q-2", "请问宽带怎么续费", [], datetime(2026, 11, 2), negative=0.1, neutral=True)
        assert question.kind == "inquiry" and question.resolve_by is None
        for rec in (complaint, question):
            update_record(session=session, record_id=rec.id, changes={"status": "responded"}, actor="a")
        with pytest.raises(LedgerError, match="resolved before"):
            update_record(session=session, record_id=complaint.id, changes={"status": "closed"}, actor="a")
        update_record(session=session, record_id=question.id, changes={"status": "closed"}, actor="a")
        assert question.status == "closed" and not question.followups


def test_correcting_the_sentiment_rereads_the_kind(ledger_url):
    with Session(get_engine(ledger_url)) as session:
        rec = add(session, "K-1", "师傅来得很快", ["speed"], datetime(2026, 11, 2), negative=0.6)
        assert rec.kind == "complaint" and rec.resolve_by is not None
        update_record(session=session, record_id=rec.id, changes={"corrected_sentiment": "positive"}, actor="a")
        assert rec.kind == "praise" and rec.resolve_by is None


# --- 3. follow-ups -------------------------------------------------------------------------------

def resolved_complaint(session, sid, at):
    rec = add(session, sid, "退款半个月了还没到账", ["speed"], at - timedelta(days=1))
    for status in ("responded", "resolved"):
        update_record(session=session, record_id=rec.id, changes={"status": status}, actor="a", at=at)
    return rec


def test_resolving_a_complaint_schedules_a_follow_up_and_a_low_score_a_second(ledger_url):
    at = datetime(2026, 11, 10, 3)
    with Session(get_engine(ledger_url)) as session:
        rec = resolved_complaint(session, "F-1", at)
        (first,) = rec.followups
        assert (first.round, first.due_at) == (1, at + timedelta(days=7))
        done = at + timedelta(days=2)
        record_followup(session=session, followup_id=first.id, score=3, note="还是不太满意", actor="回访员", at=done)
        assert [f.round for f in rec.followups] == [1, 2]
        assert rec.followups[1].due_at == done + timedelta(hours=48)
        record_followup(session=session, followup_id=rec.followups[1].id, score=5, at=done + timedelta(hours=5))
        assert len(rec.followups) == 2  # a second call never schedules a third
        assert rec.audit[-1].field == "followup" and rec.audit[-1].new["score"] == 5
        with pytest.raises(LedgerError, match="already"):
            record_followup(session=session, followup_id=first.id, score=4)
        with pytest.raises(NotFoundError):
            record_followup(session=session, followup_id=999, score=4)
        for bad in (0, 6, 2.5, True):
            with pytest.raises(LedgerError, match="1 to 5"):
                record_followup(session=session, followup_id=first.id, score=bad)


def test_a_good_score_schedules_nothing_and_praise_gets_no_follow_up(ledger_url):
    at = datetime(2026, 11, 10, 3)
    with Session(get_engine(ledger_url)) as session:
        rec = resolved_complaint(session, "F-2", at)
        record_followup(session=session, followup_id=rec.followups[0].id, score=4, at=at)
        assert len(rec.followups) == 1
        praise = add(session, "F-3", "工作人员很耐心，谢谢", ["attitude"], at, negative=0.05)
        for status in ("responded", "resolved"):
            update_record(session=session, record_id=praise.id, changes={"status": status}, actor="a")
        assert praise.followups == []


def test_follow_up_sheet_round_trip(ledger_url, tmp_path):
    at = datetime(2026, 11, 10, 3)
    with Session(get_engine(ledger_url)) as session:
        ids = [resolved_complaint(session, f"X-{i}", at + timedelta(hours=i)).followups[0].id for i in range(3)]
        session.commit()
        assert export_followups(session=session, path=tmp_path / "f.xlsx") == 3
        wb = load_workbook(tmp_path / "f.xlsx")
        ws = wb.active
        header = [c.value for c in ws[1]]
        col = {name: header.index(name) + 1 for name in ("followup_id", "score", "note")}
        ws.cell(row=2, column=col["score"], value=2)
        ws.cell(row=2, column=col["note"], value="'=还行吧")  # as the sheet shows a note starting with =
        ws.cell(row=3, column=col["score"], value=9)
        wb.save(tmp_path / "f.xlsx")
        result = import_followups(session=session, path=tmp_path / "f.xlsx", default_actor="回访员")
        session.commit()
        assert (result.applied, result.unchanged, len(result.errors)) == (1, 1, 1)
        first = session.get(FollowUp, ids[0])
        assert first.score == 2 and first.note == "=还行吧" and first.actor == "回访员"
        pending = list_followups(session=session)
        assert {f.round for f in pending} == {1, 2} and len(pending) == 3


# --- 4. high-frequency problems ------------------------------------------------------------------

def test_problems_are_matched_as_words():
    catalogue = ProblemCatalogue.load()
    names = {p.name for p in catalogue.problems}
    assert {"响应慢", "态度冷漠", "问题未解决", "推诿责任", "转接次数过多", "退款慢", "乱收费/多扣费", "承诺未兑现",
            "上门不准时", "重复报修", "系统故障", "信息泄露"} <= names
    found = catalogue.match(["电话转了好几次，每次都要重新说一遍", "师傅没有迟到，很准时", "退款半个月还没到账",
                             "客服态度很差还挂我电话", "订单号A123456789"])
    assert "转接次数过多" in found[0]
    assert found[1] == []  # a negated cue is no problem
    assert "退款慢" in found[2] and "态度冷漠" in found[3] and found[4] == []


def test_accepting_a_proposal_extends_the_user_catalogue(tmp_path):
    path = tmp_path / "problems.toml"
    accept_problem(name="路由器\"兼容\"问题", category="expertise", cues=["路由器", "不兼容"], department="网络运维部",
                   path=path)
    catalogue = ProblemCatalogue.load(path)
    assert catalogue.get('路由器"兼容"问题').department == "网络运维部"
    assert catalogue.match(["新买的路由器不兼容"]) == [['路由器"兼容"问题']]
    with pytest.raises(Exception, match="already"):
        accept_problem(name='路由器"兼容"问题', category="expertise", cues=["x"], path=path)


def test_suggest_proposes_groups_of_unmatched_complaints(ledger_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CXNLP_PROBLEMS_FILE", str(tmp_path / "none.toml"))
    from cxnlp.settings import get_settings

    get_settings.cache_clear()
    try:
        with Session(get_engine(ledger_url)) as session:
            for i in range(6):
                add(session, f"G-{i}", f"电视机顶盒第{i}天开机黑屏，遥控器按了也没反应", ["expertise"], datetime(2026, 11, 3))
            add(session, "G-x", "客服态度很差", ["attitude"], datetime(2026, 11, 3))
            session.commit()
            start, end = month_bounds("2026-11")
            proposals = suggest_problems(session=session, start=start, end=end)
        assert proposals and proposals[0].count == 6 and len(proposals[0].examples) == 3
        assert any(p in ("机顶盒", "黑屏", "遥控器", "开机") for p in proposals[0].phrases)
        assert proposals[0].category == "expertise"
    finally:
        get_settings.cache_clear()


# --- 5. the month's numbers: the same in the CLI, over HTTP and in the 汇总 sheet ------------------

def _service_month(session):
    """A small month with every part of the cycle: answered in and out of tier, resolved in and out of
    tier, overdue, follow-ups with a low score and a second call."""
    base = datetime(2026, 11, 3, 2)
    recs = [add(session, f"M-{i}", text_, cats, base + timedelta(hours=i), negative=neg, customer=f"c{i % 3}",
                neutral=not cats)
            for i, (text_, cats, neg) in enumerate([
                ("客服态度很差还挂我电话", ["attitude"], 0.9), ("退款半个月了还没到账", ["speed"], 0.9),
                ("电话转了好几次，每次都要重新说一遍", ["process"], 0.8), ("再不处理我就打12345", ["speed"], 0.9),
                ("请问宽带怎么续费", [], 0.1), ("师傅很专业，点赞", ["expertise"], 0.05)])]
    add(session, "P-1", "客服态度很差", ["attitude"], datetime(2026, 10, 5))
    for rec, (respond_h, resolve_h) in zip(recs, [(1, 10), (8, 100), (2, None), (0.5, None), (3, None), (30, None)]):
        update_record(session=session, record_id=rec.id, changes={"status": "responded"}, actor="a",
                      at=rec.received_at + timedelta(hours=respond_h))
        if resolve_h:
            update_record(session=session, record_id=rec.id, changes={"status": "resolved"}, actor="a",
                          at=rec.received_at + timedelta(hours=resolve_h))
    record_followup(session=session, followup_id=recs[0].followups[0].id, score=2, at=datetime(2026, 11, 6))
    record_followup(session=session, followup_id=recs[0].followups[1].id, score=4, at=datetime(2026, 11, 7))
    session.commit()


def test_month_numbers(ledger_url):
    with Session(get_engine(ledger_url)) as session:
        _service_month(session)
        s = month_summary(session=session, month="2026-11", categories=CATS, now=datetime(2026, 12, 1))
    assert s["kinds"] == {"complaint": 4, "praise": 1, "inquiry": 1} and s["complaints"] == 4
    svc = s["service"]
    # response tiers: 紧急 0.5 h ≤ 1 h; 一般 1 h, 8 h (late), 2 h ≤ 4 h; 咨询 3 h, 30 h (late) ≤ 24 h
    assert svc["response_within_tier"] == round(4 / 6, 4) and svc["response_rate"] == 1.0
    assert svc["response_by_urgency"]["紧急"]["rate"] == 1.0
    # resolution: 10 h ≤ 48 h in tier, 100 h > 48 h late; two open complaints past their deadline
    assert svc["resolution_within_tier"] == 0.25 and sum(svc["overdue_by_severity"].values()) == 2
    fu = s["followups"]
    assert (fu["scheduled"], fu["made"], fu["coverage"], fu["satisfaction"]) == (2, 1, 0.5, 2.0)
    assert (fu["second_made"], fu["second_resolved"]) == (1, 1.0)
    top = {p["problem"]: p for p in s["problems"]}
    assert top["态度冷漠"]["count"] == 1 and top["态度冷漠"]["previous"] == 1 and top["态度冷漠"]["change"] == 0.0
    assert top["退款慢"]["share"] == 0.25 and top["退款慢"]["examples"] == ["退款半个月了还没到账"]
    assert "100%" in s["shares_note"]


def _cells(path: Path) -> list[list]:
    ws = load_workbook(path)["汇总"]
    return [[c for c in row if c is not None] for row in ws.iter_rows(values_only=True)]


def test_the_same_numbers_in_the_cli_over_http_and_in_the_sheet(tmp_path, monkeypatch, small_model):
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from cxnlp.cli import app
    from cxnlp.settings import Settings, get_settings
    from service.main import create_app

    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Session(get_engine(url)) as session:
        _service_month(session)
    monkeypatch.setenv("CXNLP_LEDGER_URL", url)
    get_settings.cache_clear()
    try:
        cli = CliRunner().invoke(app, ["ledger", "summary", "--month", "2026-11", "--format", "json",
                                       "--model", str(small_model.path)])
        assert cli.exit_code == 0, cli.output
        from_cli = json.loads(cli.stdout)
        table = CliRunner().invoke(app, ["ledger", "summary", "--month", "2026-11", "--model", str(small_model.path)])
        assert f"ledger: {url}" in table.stderr
        exported = CliRunner().invoke(app, ["ledger", "export", "--month", "2026-11", "-o", str(tmp_path / "r.xlsx"),
                                            "--model", str(small_model.path)])
        assert exported.exit_code == 0, exported.output
    finally:
        get_settings.cache_clear()
    with TestClient(create_app(model=small_model, settings=Settings(ledger_url=url))) as client:
        from_http = client.get("/v1/ledger/summary", params={"month": "2026-11"}).json()
    for key in ("total", "negative", "kinds", "by_category", "service", "followups", "problems", "alerts", "overdue"):
        assert from_cli[key] == from_http[key], key
    def norm(row):
        return [round(float(v), 4) if isinstance(v, (int, float)) else str(v) for v in row if v is not None and v != ""]

    sheet = [norm(r) for r in _cells(tmp_path / "r.xlsx")]
    expected = [norm(row) for t in summary_tables(from_http) for row in t.rows]
    assert len(expected) > 20
    for row in expected:
        assert row in sheet, row
    # the terminal table holds the same figures, aligned in display columns (a Chinese character is two)
    from wcwidth import wcswidth

    lines = table.stdout.splitlines()
    block = lines[lines.index("【按紧急程度（响应时限）】") + 1:][:4]
    assert len({wcswidth(line.rstrip()) for line in block[1:]} | {wcswidth(block[0])}) <= 2
    assert "66.7%" in table.stdout and "注：" in table.stdout


# --- 6. the migration from release 1.0.0 --------------------------------------------------------

def test_a_ledger_written_by_1_0_0_upgrades_in_place(tmp_path):
    db_file = tmp_path / "ledger.db"
    shutil.copy(FIXTURES / "ledger_v1_0_0.db", db_file)
    with sqlite3.connect(db_file) as raw:
        before = {t: raw.execute(f"select * from {t} order by id").fetchall() for t in ("feedback", "feedback_audit")}
    assert len(before["feedback"]) == 20 and len(before["feedback_audit"]) == 28
    url = f"sqlite:///{db_file}"
    with Session(get_engine(url)) as session:
        records = list(session.scalars(select(FeedbackRecord).order_by(FeedbackRecord.id)))
        audit = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        assert [r.source_id for r in records] == [row[1] for row in before["feedback"]]
        assert [r.text for r in records] == [row[5] for row in before["feedback"]]
        assert len(audit) == 28
        assert records[1].corrected_categories == ["speed"] and records[1].corrected_by == "李分析"
        assert records[0].root_cause == "坐席培训不足" and records[0].status == "in_progress"
        assert records[6].status == "closed" and records[6].closed_at is not None and records[6].resolved_at is not None
        assert records[2].kind == "praise" and records[2].resolve_by is None  # corrected to positive
        assert all(r.respond_by is not None and r.urgency == "一般" for r in records)
        old_due = {row[1]: row[15] for row in before["feedback"]}
        assert records[0].resolve_by.isoformat(sep=" ").startswith(old_due["T000"][:16])
        update_record(session=session, record_id=records[3].id, changes={"status": "responded"}, actor="a")
        session.commit()


# --- 7. where the ledger is ----------------------------------------------------------------------

def test_the_default_ledger_is_in_the_per_user_data_folder(tmp_path, monkeypatch):
    from cxnlp.settings import Settings

    monkeypatch.delenv("CXNLP_LEDGER_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    url = Settings().ledger_url
    assert url == f"sqlite:///{tmp_path / 'data' / 'cxnlp' / 'ledger.db'}"
    get_engine(url)
    assert (tmp_path / "data" / "cxnlp" / "ledger.db").exists()
    monkeypatch.setenv("CXNLP_LEDGER_URL", "sqlite:///elsewhere.db")
    assert Settings().ledger_url == "sqlite:///elsewhere.db"


def test_list_records_filters_for_a_record_list(ledger_url):
    from cxnlp.ledger.records import list_records

    with Session(get_engine(ledger_url)) as session:
        _service_month(session)
        start, end = month_bounds("2026-11")
        assert len(list_records(session=session, start=start, end=end)) == 6
        assert [r.source_id for r in list_records(session=session, start=start, end=end, kind="praise")] == ["M-5"]
        assert [r.source_id for r in list_records(session=session, problem="退款慢")] == ["M-1"]
        assert [r.source_id for r in list_records(session=session, start=start, end=end, limit=2, offset=1)] == ["M-4", "M-3"]


def test_follow_ups_and_the_cycle_over_http(tmp_path, small_model):
    from fastapi.testclient import TestClient

    from cxnlp.settings import Settings
    from service.main import create_app

    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", api_key="k")
    key = {"X-API-Key": "k"}
    with TestClient(create_app(model=small_model, settings=settings)) as client:
        results = client.post("/v1/classify", json={"texts": ["再不处理我就打12345投诉，客服态度太差"]}).json()["results"]
        assert results[0]["urgency"] == "紧急"
        rec = client.post("/v1/feedback", headers=key, json={"text": "退款半个月了还没到账，客服态度太差", "source_id": "H-1",
                                                              "customer": "C9", "received_at": "2026-11-05T10:00:00"}).json()
        assert rec["kind"] == "complaint" and rec["customer"] == "C9" and rec["respond_by"] and rec["resolve_by"] == rec["due_at"]
        rid = rec["id"]
        assert client.patch(f"/v1/feedback/{rid}", headers=key, json={"customer_notified": True}).status_code == 409
        for status in ("responded", "resolved"):
            assert client.patch(f"/v1/feedback/{rid}", headers=key, json={"status": status}).status_code == 200
        done = client.patch(f"/v1/feedback/{rid}", headers=key, json={"customer_notified": True}).json()
        assert done["customer_notified_at"] and done["resolved_at"]
        pending = client.get("/v1/followups", headers=key).json()
        assert [(f["feedback_id"], f["round"]) for f in pending] == [(rid, 1)]
        assert client.get("/v1/followups").status_code == 401
        bad = client.post(f"/v1/followups/{pending[0]['id']}", headers=key, json={"score": 6})
        assert bad.status_code == 422
        ok = client.post(f"/v1/followups/{pending[0]['id']}", headers=key, json={"score": 2, "note": "还是慢"})
        assert ok.status_code == 200 and ok.json()["score"] == 2
        assert client.post(f"/v1/followups/{pending[0]['id']}", headers=key, json={"score": 4}).status_code == 409
        assert client.post("/v1/followups/999", headers=key, json={"score": 4}).status_code == 404
        second = client.get("/v1/followups", headers=key).json()
        assert [(f["round"]) for f in second] == [2]


def test_a_1_0_ledger_in_the_working_folder_is_pointed_out(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cxnlp.cli import app
    from cxnlp.settings import get_settings

    monkeypatch.delenv("CXNLP_LEDGER_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cxnlp_ledger.db").write_bytes(b"")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["ledger", "overdue"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"ledger: sqlite:///{tmp_path / 'data' / 'cxnlp' / 'ledger.db'}" in result.stderr
    assert "CXNLP_LEDGER_URL=sqlite:///cxnlp_ledger.db" in result.stderr
