"""The dashboard (数据看板) in-process: its numbers are the library's, its filters narrow, edits go through
``update_record`` with who and when, login and CSRF guard it, customer text is escaped, and nothing
is loaded from another host. The same pages in a real browser: ``test_dashboard_browser.py``."""
from __future__ import annotations

import io
import json
import re
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from markupsafe import Markup
from openpyxl import load_workbook

from cxnlp.ledger.dashboard import RecordFilter, category_trend, list_records, month_breakdown
from cxnlp.ledger.db import session_scope
from cxnlp.ledger.models import STATUSES, FeedbackRecord
from cxnlp.ledger.records import TRANSITIONS
from cxnlp.ledger.summary import OPEN_STATUSES, month_summary
from cxnlp.settings import Settings
from ledger_fill import MONTH, PREVIOUS, XSS_CHANNEL, XSS_TEXTS, fill
from service.main import create_app
from service.pages.render import highlight

KEY = "s3cret-key"


@pytest.fixture()
def ledger(small_model, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ids = fill(url, small_model)
    return url, ids


@pytest.fixture()
def open_client(small_model, ledger):
    with TestClient(create_app(model=small_model, settings=Settings(ledger_url=ledger[0], api_key=None)),
                    base_url="http://localhost") as c:
        yield c


@pytest.fixture()
def key_client(small_model, ledger):
    with TestClient(create_app(model=small_model, settings=Settings(ledger_url=ledger[0], api_key=KEY)),
                    base_url="http://localhost") as c:
        yield c


def csrf_of(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def chart_data(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S).group(1))


def login(client: TestClient, key: str = KEY, name: str = "王分析") -> None:
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"csrf": token, "key": key, "name": name, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text


# --- numbers -------------------------------------------------------------------------------------


def test_overview_shows_the_month_summary_numbers(open_client, ledger, small_model):
    r = open_client.get(f"/?month={MONTH}")
    assert r.status_code == 200
    cats = tuple(small_model.estimator.categories_)
    with session_scope(ledger[0]) as session:
        s = month_summary(session=session, month=MONTH, categories=cats)
    data = chart_data(r.text)
    assert [p["value"] for p in data["by_category"]["current"]] == [s["by_category"][c]["count"] for c in cats]
    assert [p["value"] for p in data["by_category"]["previous"]] == [s["change"][c]["previous"] for c in cats]
    assert re.search(rf'id="card-total"[^>]*>.*?<span class="value">{s["total"]}</span>', r.text, re.S)
    overdue = sum(s["service"]["overdue_by_severity"].values())
    assert overdue == len(s["overdue"])  # (the list is cut at 200; the tiers count them all)
    assert re.search(rf'id="card-overdue"[^>]*>.*?<span class="value">{overdue}</span>', r.text, re.S)
    assert re.search(rf'id="card-complaints"[^>]*>.*?<span class="value">{s["complaints"]}</span>', r.text, re.S)
    for card, value in (("response", s["service"]["response_within_tier"]),
                        ("resolution", s["service"]["resolution_within_tier"]),
                        ("followup_coverage", s["followups"]["coverage"])):
        shown = "—" if value is None else f"{value * 100:.1f}%"
        assert re.search(rf'id="card-{card}"[^>]*>.*?<span class="value">{shown}</span>', r.text, re.S), card
    html = r.text.replace("&amp;", "&")
    assert s["problems"]
    for p in s["problems"]:  # each high-frequency problem links to its records
        assert "/ledger?" + urlencode({"month": MONTH, "problem": p["problem"]}) in html
    # every element links to the records behind it, and the list behind it holds that many records
    for c, point in zip(cats, data["by_category"]["current"]):
        assert point["url"] == f"/ledger?month={MONTH}&category={c}&sentiment=negative"
        listed = open_client.get(point["url"]).text
        assert f"共 {point['value']} 条" in listed


def test_the_trend_reads_each_month_as_its_summary(ledger, small_model):
    cats = tuple(small_model.estimator.categories_)
    with session_scope(ledger[0]) as session:
        trend = category_trend(session=session, month=MONTH, categories=cats, n=6)
        assert trend["months"] == ["2026-05", "2026-06", "2026-07", "2026-08", PREVIOUS, MONTH]
        for k, month in enumerate(trend["months"]):
            s = month_summary(session=session, month=month, categories=cats)
            assert [trend["series"][c][k] for c in cats] == [s["by_category"][c]["count"] for c in cats]
        breakdown = month_breakdown(session=session, month=MONTH, min_confidence=small_model.estimator.min_confidence)
        s = month_summary(session=session, month=MONTH, categories=cats)
        assert sum(d["overdue"] for d in breakdown.departments) == len(s["overdue"])
        assert sum(d["open"] for d in breakdown.departments) == sum(s["status"].get(k, 0) for k in OPEN_STATUSES)
        channels = breakdown.channels
        assert sum(v.get("negative", 0) for v in channels.values()) == s["negative"]
        assert sum(sum(v.values()) for v in channels.values()) == s["total"]
        _, review = list_records(session=session, filters=RecordFilter(month=MONTH, needs_review=True),
                                 min_confidence=small_model.estimator.min_confidence)
        assert breakdown.needs_review == review


def test_filters_narrow_the_list_in_sql(ledger, small_model):
    with session_scope(ledger[0]) as session:
        everything, total = list_records(session=session, filters=RecordFilter(), min_confidence=0.65)
        month, in_month = list_records(session=session, filters=RecordFilter(month=MONTH), min_confidence=0.65)
        assert total == len(ledger[1][MONTH]) + len(ledger[1][PREVIOUS]) and in_month == len(ledger[1][MONTH])
        _, found = list_records(session=session, filters=RecordFilter(q="挂我电话"), min_confidence=0.65)
        assert found == 3  # the text in both months and the hostile one that says the same
        _, percent = list_records(session=session, filters=RecordFilter(q="%"), min_confidence=0.65)
        assert percent == 0  # a LIKE wildcard is searched for as itself
        _, hostile = list_records(session=session, filters=RecordFilter(channel=XSS_CHANNEL), min_confidence=0.65)
        assert hostile == len(XSS_TEXTS)
        negative, n_neg = list_records(session=session, filters=RecordFilter(month=MONTH, sentiment="negative"),
                                       min_confidence=0.65, per_page=200)
        assert 0 < n_neg < in_month and all(r.effective_sentiment == "negative" for r in negative)
        by_conf, _ = list_records(session=session, filters=RecordFilter(), min_confidence=0.65, sort="confidence",
                                  descending=False, per_page=5)
        assert [r.confidence for r in by_conf] == sorted(r.confidence for r in everything)[:5]
        page2, _ = list_records(session=session, filters=RecordFilter(), min_confidence=0.65, page=2, per_page=5)
        assert {r.id for r in page2}.isdisjoint(r.id for r in everything[:5])


def test_the_list_page_filters_and_refuses_unknown_values(open_client):
    all_rows = open_client.get("/ledger").text.count('<tr data-id=')
    narrowed = open_client.get("/ledger?q=太慢").text.count('<tr data-id=')
    assert 0 < narrowed < all_rows
    assert open_client.get("/ledger?sentiment=angry").status_code == 400
    assert open_client.get("/ledger?sort=text;drop").status_code == 400
    assert open_client.get("/ledger?month=2026-13").status_code == 400


def test_export_holds_the_filtered_list_with_safe_cells(open_client, ledger):
    r = open_client.get(f"/ledger/export.xlsx?month={MONTH}&channel={XSS_CHANNEL}")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(r.content)).active
    rows = list(ws.values)
    assert rows[0][0] == "编号" and len(rows) == 1 + len(XSS_TEXTS)
    text_column = rows[0].index("内容")
    assert {row[text_column] for row in rows[1:]} == set(XSS_TEXTS)


# --- record page, edits, review -------------------------------------------------------------------


def test_highlight_escapes_the_text_and_wraps_only_the_spans():
    text = '<b>等了</b>三天 & "没人" <script>'
    html = highlight(text, {"speed": [{"term": "三天", "start": 9, "end": 11}],
                            "bad": [{"term": "x", "start": 40, "end": 45}, {"term": "y", "start": 3, "end": 2}]})
    assert isinstance(html, Markup)
    assert str(html) == ('&lt;b&gt;等了&lt;/b&gt;<mark class="ev" data-label="speed" title="响应速度">三天</mark>'
                         ' &amp; &#34;没人&#34; &lt;script&gt;')
    hostile_label = highlight("abc", {'"><script>': [{"term": "a", "start": 0, "end": 1}]})
    assert "<script>" not in str(hostile_label)


def test_record_page_highlights_evidence_at_the_stored_offsets(open_client, ledger):
    with session_scope(ledger[0]) as session:
        record = next(r for r in session.query(FeedbackRecord) if any(r.evidence.values()))
        label, span = next((k, v[0]) for k, v in record.evidence.items() if v)
    html = open_client.get(f"/ledger/{record.id}").text
    assert f'<mark class="ev" data-label="{label}"' in html
    assert f'>{record.text[span["start"]:span["end"]]}</mark>' in html


def test_hostile_texts_are_shown_as_text(open_client, ledger):
    for rid in ledger[1][MONTH][-len(XSS_TEXTS):]:
        html = open_client.get(f"/ledger/{rid}").text
        assert "<img src=x" not in html and "<script>alert" not in html and "<svg onload" not in html
        assert "&lt;" in html
    listing = open_client.get(f"/ledger?month={MONTH}").text
    assert XSS_CHANNEL not in listing and "&lt;b onmouseover=alert(4)&gt;" in listing
    overview = open_client.get(f"/?month={MONTH}")
    assert XSS_CHANNEL not in overview.text and "script-src 'self'" in overview.headers["content-security-policy"]


def test_an_edit_goes_through_update_record_with_who_and_when(key_client, ledger, small_model):
    login(key_client, name="王分析")
    rid = ledger[1][MONTH][0]
    page = key_client.get(f"/ledger/{rid}").text
    version = int(re.search(r'name="version" value="(\d+)"', page).group(1))
    moved = sorted(TRANSITIONS["open"])[0]  # a move the workflow allows from open
    form = {"csrf": csrf_of(page), "version": str(version), "status": moved, "root_cause": "排班不足",
            "categories": ["speed"], "sentiment": "negative"}
    r = key_client.post(f"/ledger/{rid}", data=form, follow_redirects=False)
    assert r.status_code == 303
    with session_scope(ledger[0]) as session:
        record = session.get(FeedbackRecord, rid)
        assert record.status == moved and record.root_cause == "排班不足"
        assert record.corrected_categories == ["speed"] and record.corrected_by == "王分析"
        fields = {a.field: a.actor for a in record.audit}
        assert fields["status"] == fields["root_cause"] == fields["corrected_categories"] == "王分析"
    # the same form again, from the page read before the change, is refused: someone changed it meanwhile
    assert key_client.post(f"/ledger/{rid}", data=form, follow_redirects=False).status_code == 409
    # a move the workflow forbids is the library's refusal, shown on the page
    forbidden = next(s for s in STATUSES if s != moved and s not in TRANSITIONS[moved])
    page = key_client.get(f"/ledger/{rid}").text
    form.update(csrf=csrf_of(page), version=re.search(r'name="version" value="(\d+)"', page).group(1),
                status=forbidden)
    refused = key_client.post(f"/ledger/{rid}", data=form)
    assert refused.status_code == 409 and "status cannot go" in refused.text
    with session_scope(ledger[0]) as session:
        assert session.get(FeedbackRecord, rid).status == moved


def test_a_review_accept_lands_with_who_and_when(open_client, ledger):
    token = csrf_of(open_client.post("/login", data={"csrf": csrf_of(open_client.get("/login").text),
                                                     "name": "李复核"}).text)
    page = open_client.get("/review").text
    first = re.search(r'<form method="post" action="/review/(\d+)"', page).group(1)
    version = re.search(rf'action="/review/{first}".*?name="version" value="(\d+)"', page, re.S).group(1)
    with session_scope(ledger[0]) as session:
        kind_before = session.get(FeedbackRecord, int(first)).kind
    r = open_client.post(f"/review/{first}", data={"csrf": token, "version": version, "sentiment": "neutral",
                                                   "categories": ["process", "speed"]},
                         headers={"Accept": "application/json", "X-CSRF-Token": token})
    assert r.status_code == 200 and r.json()["ok"] and r.json()["reviewed"] == 1
    with session_scope(ledger[0]) as session:
        record = session.get(FeedbackRecord, int(first))
        assert record.corrected_categories == ["process", "speed"] and record.corrected_sentiment == "neutral"
        assert record.corrected_by == "李复核" and record.corrected_at is not None
        # the correction is audited; so is the kind it re-reads, when the correction changed it (which depends
        # on what the model had said of the first text in the queue)
        changed_kind = {"kind"} if record.kind != kind_before else set()
        assert {a.field for a in record.audit if a.actor == "李复核"} == {"corrected_categories",
                                                                        "corrected_sentiment"} | changed_kind
    assert f'action="/review/{first}"' not in open_client.get("/review").text  # reviewed: out of the queue


# --- login, CSRF, assets --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/ledger", "/ledger/1", "/review", "/followups", "/surveys", "/model", "/model/jobs",
                                  "/ledger/export.xlsx"])
def test_with_a_key_every_page_needs_a_login(key_client, path):
    r = key_client.get(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_login_sets_a_strict_httponly_cookie_and_never_puts_the_key_in_a_url(key_client, caplog):
    token = csrf_of(key_client.get("/login").text)
    bad = key_client.post("/login", data={"csrf": token, "key": "wrong", "name": "x"}, follow_redirects=False)
    assert bad.status_code == 401 and "wrong" not in bad.text
    with caplog.at_level("INFO"):
        r = key_client.post("/login", data={"csrf": token, "key": KEY, "name": "王分析", "next": "/review"},
                            follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/review" and KEY not in r.headers["location"]
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and KEY.lower() not in cookie
    assert KEY not in caplog.text
    assert key_client.get("/review").status_code == 200
    # the login form never sends anyone elsewhere
    r = key_client.post("/login", data={"csrf": csrf_of(key_client.get("/login").text), "key": KEY,
                                        "next": "//evil.example/x"}, follow_redirects=False)
    assert r.headers["location"] == "/"


def test_a_post_without_the_csrf_token_is_refused(key_client, ledger):
    assert key_client.post("/login", data={"key": KEY}).status_code == 403  # even the login form
    login(key_client)
    rid = ledger[1][MONTH][0]
    before = key_client.get(f"/ledger/{rid}").text
    form = {"version": "1", "status": "closed", "sentiment": "negative"}
    assert key_client.post(f"/ledger/{rid}", data=form).status_code == 403
    assert key_client.post(f"/ledger/{rid}", data={**form, "csrf": "forged"}).status_code == 403
    assert key_client.post(f"/review/{rid}", data=form, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert key_client.post("/model/retrain").status_code == 403
    with session_scope(ledger[0]) as session:
        assert session.get(FeedbackRecord, rid).status == "open"
    assert csrf_of(before)


def test_without_a_key_pages_are_open_but_forms_still_need_the_token(open_client, ledger):
    assert open_client.get("/").status_code == 200
    assert open_client.post(f"/ledger/{ledger[1][MONTH][0]}", data={"version": "1", "status": "closed"}).status_code == 403


def test_the_api_key_header_still_works_for_the_api(key_client):
    assert key_client.get("/v1/review").status_code == 401
    assert key_client.get("/v1/review", headers={"X-API-Key": KEY}).status_code == 200


def test_pages_and_docs_load_assets_from_this_app_only(open_client):
    for path in ("/", "/ledger", "/review", "/followups", "/surveys", "/model", "/docs", "/redoc", "/login"):
        html = open_client.get(path).text
        refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', html) + re.findall(r'url:\s*["\']([^"\']+)', html)
        assert refs, path
        assert not [u for u in refs if re.match(r"(?i)(https?:)?//", u)], (path, refs)
        for ref in refs:
            if ref.startswith("/static/"):
                assert open_client.get(ref).status_code == 200, ref
    assert "fonts.googleapis" not in open_client.get("/redoc").text
    assert "cdn.redoc.ly" not in open_client.get("/static/vendor/redoc/redoc.standalone.js").text


# --- surveys and the model ------------------------------------------------------------------------


def test_a_survey_upload_shows_the_workbook_charts(open_client):
    survey = Path(__file__).resolve().parent.parent / "data_samples" / "examples" / "survey.xlsx"
    token = csrf_of(open_client.get("/surveys").text)
    with survey.open("rb") as fh:
        r = open_client.post("/surveys", data={"csrf": token, "negative_max": "3"},
                             files={"file": ("survey.xlsx", fh, "application/octet-stream")})
    assert r.status_code == 200, r.text[-500:]
    data = chart_data(r.text)
    assert data["dimensions"]["names"] and len(data["satisfaction"]) == 5
    assert sum(p["value"] for p in data["satisfaction"]) > 0
    bad = open_client.post("/surveys", data={"csrf": token}, files={"file": ("x.exe", b"MZ", "application/octet-stream")})
    assert bad.status_code == 422 and "must be one of" in bad.text


def test_retrain_runs_in_the_background_and_promote_reloads(small_model, ledger, tmp_path, monkeypatch):
    """The job machinery with a stand-in command (a real training takes minutes): the candidate is a
    copy of the small model, its report written by the command; promote goes through reload."""
    from service.pages import retrain

    root = tmp_path / "models"
    report = {"macro_f1": 0.5, "categories": {"speed": {"f1": 0.4}}, "sentiment": {"accuracy": 0.8}}

    def fake_command(model_dir, report_path):
        script = (f"import json, shutil, time; time.sleep(0.5); shutil.copytree({str(small_model.path)!r}, "
                  f"{str(model_dir)!r}); open({str(report_path)!r}, 'w').write({json.dumps(report)!r})")
        return [sys.executable, "-c", script]

    monkeypatch.setattr(retrain, "train_command", fake_command)
    settings = Settings(ledger_url=ledger[0], api_key=None, model_root=str(root))
    with TestClient(create_app(model=small_model, settings=settings), base_url="http://localhost") as client:
        token = csrf_of(client.get("/model").text)
        assert client.post("/model/retrain", data={"csrf": token}, follow_redirects=False).status_code == 303
        jobs = client.get("/model/jobs").json()
        assert len(jobs) == 1 and jobs[0]["state"] in ("running", "done")
        assert client.post("/model/retrain", data={"csrf": token}).status_code in (303, 409)
        deadline = time.monotonic() + 60  # a bound for the test, not a speed claim
        while client.get("/model/jobs").json()[-1]["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        job = client.get("/model/jobs").json()[-1]
        assert job["state"] == "done", job
        page = client.get("/model").text
        assert "0.500" in page and "0.400" in page and "80.0%" in page  # the candidate's figures beside the current
        r = client.post("/model/promote", data={"csrf": token, "job": job["name"]}, follow_redirects=False)
        assert r.status_code == 303, r.text
        assert client.app.state.model.path == (root / job["name"]).resolve()
        assert client.post("/model/promote", data={"csrf": token, "job": "nope"}).status_code == 404
    shutil.rmtree(root, ignore_errors=True)


def test_filters_the_ledger_cannot_apply_are_refused_not_ignored(open_client):
    """kind, urgency and problem exist on a ledger that records them (the service cycle); elsewhere a
    link carrying them is an error, never the unfiltered list."""
    for name, column in (("kind", "kind"), ("urgency", "urgency"), ("problem", "problems")):
        r = open_client.get(f"/ledger?{name}=nonesuch")
        if hasattr(FeedbackRecord, column):
            assert r.status_code == 200 and "共 0 条" in r.text
        else:
            assert r.status_code == 409 and "does not record" in r.text


def test_a_followup_is_recorded_with_who_and_a_low_score_schedules_the_second(open_client, ledger):
    from cxnlp.ledger.models import FollowUp
    from cxnlp.ledger.records import update_record

    token = csrf_of(open_client.post("/login", data={"csrf": csrf_of(open_client.get("/login").text),
                                                     "name": "赵回访"}).text)
    with session_scope(ledger[0]) as session:
        rid = next(r.id for r in session.query(FeedbackRecord).order_by(FeedbackRecord.id) if r.kind == "complaint")
        for status in ("responded", "resolved"):
            update_record(session=session, record_id=rid, changes={"status": status}, actor="li")
    page = open_client.get("/followups").text
    fid = re.search(rf'<tr data-id="(\d+)"><td>\d+</td><td><a href="/ledger/{rid}">', page).group(1)
    assert open_client.post(f"/followups/{fid}", data={"score": "2", "note": "x"}).status_code == 403  # no token
    r = open_client.post(f"/followups/{fid}", data={"csrf": token, "score": "2", "note": "仍不满意"},
                         follow_redirects=False)
    assert r.status_code == 303
    with session_scope(ledger[0]) as session:
        done = session.get(FollowUp, int(fid))
        assert done.score == 2 and done.actor == "赵回访" and done.done_at is not None
        assert [f.round for f in session.get(FeedbackRecord, rid).followups] == [1, 2]
    again = open_client.post(f"/followups/{fid}", data={"csrf": token, "score": "5"})
    assert again.status_code == 409 and "already recorded" in again.text


def test_model_page_shows_both_rows_of_thresholds_of_a_model_with_thresholds_per_domain(ledger):
    """The shipped model cuts service feedback and other text at different thresholds: the page shows both,
    as the card holds them (a one-row model shows one, as before: see the retrain test's small model)."""
    from cxnlp.store import load_model

    shipped = load_model()
    card = shipped.card
    assert card.get("thresholds_other_text"), "the shipped model has thresholds per domain"
    with TestClient(create_app(model=shipped, settings=Settings(ledger_url=ledger[0], api_key=None)),
                    base_url="http://localhost") as client:
        page = client.get("/model").text
    for row, key in (("thresholds", "thresholds"), ("thresholds-other", "thresholds_other_text")):
        cell = re.search(rf'<td id="{row}">(.*?)</td>', page, re.S).group(1)
        assert [f"{t:.3f}" for t in card[key].values()] == re.findall(r"\d\.\d{3}", cell)
