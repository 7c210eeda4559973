"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright for Python against
a real `cxnlp serve` with an API key. Screenshots of every page are kept as test artifacts (in the
folder ``CXNLP_TEST_ARTIFACTS`` names, else the test's tmp folder); with ``CXNLP_UPDATE_SCREENSHOTS=1``
the 总览 one is also copied to docs/screenshots/overview.png.

`.ci/run` installs chromium when it is missing; these tests skip, saying why, only where no browser
can be had."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cxnlp.ledger.db import session_scope
from cxnlp.ledger.models import FeedbackRecord
from cxnlp.ledger.summary import month_summary
from ledger_fill import MONTH, XSS_CHANNEL, XSS_TEXTS, fill

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
KEY = "browser-test-key"
ROOT = Path(__file__).resolve().parent.parent

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium browser at {CHROMIUM}: install it (apt-get install chromium) to run the browser tests",
                allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `cxnlp serve` (the shipped model, an API key, a small ledger with hostile texts)."""
    from cxnlp.store import load_model
    from test_service import stop

    tmp = tmp_path_factory.mktemp("dashboard_server")
    url = f"sqlite:///{tmp / 'ledger.db'}"
    ids = fill(url, load_model())
    port = _free_port()
    env = {**os.environ, "CXNLP_LEDGER_URL": url, "CXNLP_API_KEY": KEY}
    log = tmp / "serve.log"
    with log.open("wb") as err:  # a file, not a pipe: an undrained pipe would block the server
        proc = subprocess.Popen([sys.executable, "-m", "cxnlp", "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
    deadline = time.monotonic() + 60  # a bound for the test, not a speed claim
    while True:
        assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.2)
    yield {"base": f"http://127.0.0.1:{port}", "url": url, "ids": ids, "host": f"127.0.0.1:{port}"}
    stop(proc)
    assert KEY not in log.read_text(errors="replace")  # the key never reaches the server's log


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = os.environ.get("CXNLP_TEST_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("dashboard_screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, server):
    """A signed-in page; every request it makes, every dialog it opens and every script error are kept."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    pg = context.new_page()
    pg.requested_hosts, pg.dialogs, pg.errors = set(), [], []
    pg.on("request", lambda r: pg.requested_hosts.add(r.url.split("/")[2] if "://" in r.url else r.url[:20]))
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    _login(pg, server["base"])
    yield pg
    assert pg.requested_hosts <= {server["host"], "data:image/svg+xml,%"}, pg.requested_hosts
    assert not pg.dialogs, f"a page ran customer text as code: {pg.dialogs}"
    assert not pg.errors, pg.errors
    context.close()


def _login(pg, base: str, name: str = "王分析") -> None:
    pg.goto(f"{base}/")
    assert "/login" in pg.url
    pg.fill("input[name=name]", name)
    pg.fill("input[name=key]", KEY)
    pg.click("form.login button[type=submit]")
    pg.wait_for_url(f"{base}/")


def _chart_values(pg, element_id: str) -> list[list]:
    return pg.evaluate("""(id) => echarts.getInstanceByDom(document.getElementById(id)).getOption().series
                           .map((s) => s.data.map((d) => (typeof d === 'object' ? d.value : d)))""", element_id)


def test_overview_renders_charts_with_the_ledgers_numbers(page, server, artifacts):
    page.goto(f"{server['base']}/?month={MONTH}")
    page.wait_for_selector("#chart-category canvas")
    with session_scope(server["url"]) as session:
        cats = ("attitude", "expertise", "process", "speed")
        s = month_summary(session=session, month=MONTH, categories=cats)
    current, previous = _chart_values(page, "chart-category")
    assert current == [s["by_category"][c]["count"] for c in cats]
    assert previous == [s["change"][c]["previous"] for c in cats]
    assert page.inner_text("#card-total .value") == str(s["total"])
    assert page.inner_text("#card-negative .value") == str(s["negative"])
    trend = _chart_values(page, "chart-trend")
    assert [series[-1] for series in trend] == current  # the trend's last month is this month
    page.wait_for_selector("#chart-channels canvas")
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)
    if os.environ.get("CXNLP_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(artifacts / "overview.png", ROOT / "docs" / "screenshots" / "overview.png")
    # a bar is a link to the records behind it
    k = max(range(len(cats)), key=lambda i: current[i])
    x, y = page.evaluate("""(k) => { const c = echarts.getInstanceByDom(document.getElementById('chart-category'));
                                      const bar = c.getModel().getSeriesByIndex(0).getData().getItemLayout(k);
                                      return [bar.x + bar.width / 2, bar.y + bar.height / 2]; }""", k)
    box = page.locator("#chart-category").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_url("**/ledger?*")
    assert f"category={cats[k]}" in page.url and "sentiment=negative" in page.url
    assert f"共 {current[k]} 条" in page.inner_text("h1")


def test_a_filter_narrows_the_list(page, server, artifacts):
    page.goto(f"{server['base']}/ledger?month={MONTH}")
    everything = page.locator("#records tbody tr[data-id]").count()
    page.select_option("select[name=sentiment]", "negative")
    page.click("#apply")
    page.wait_for_url("**sentiment=negative**")
    negative = page.locator("#records tbody tr[data-id]").count()
    assert 0 < negative < everything
    assert page.locator("#records td.sent-negative").count() == negative
    page.fill("input[name=q]", "挂我电话")
    page.click("#apply")
    page.wait_for_url("**q=**")
    assert 1 <= page.locator("#records tbody tr[data-id]").count() < negative
    page.screenshot(path=str(artifacts / "ledger.png"), full_page=True)


def test_a_records_evidence_is_highlighted(page, server, artifacts):
    with session_scope(server["url"]) as session:
        record = next(r for r in session.query(FeedbackRecord).order_by(FeedbackRecord.id) if any(r.evidence.values()))
        spans = sorted((e["start"], e["end"]) for items in record.evidence.values() for e in items)
        rid, text = record.id, record.text
    page.goto(f"{server['base']}/ledger/{rid}")
    marks = page.locator("#record-text mark.ev")
    assert marks.count() >= 1
    assert marks.first.inner_text() == text[spans[0][0]:spans[0][1]]
    assert page.inner_text("#record-text") == text
    background = marks.first.evaluate("(m) => getComputedStyle(m).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")
    page.screenshot(path=str(artifacts / "record.png"), full_page=True)


def test_a_review_correction_lands_in_the_ledger_and_its_audit(page, server, artifacts):
    page.goto(f"{server['base']}/review")
    first = page.locator("form.review-item").first
    rid = int(first.get_attribute("data-id"))
    boxes = first.locator('input[name="categories"]')
    before = [boxes.nth(i).is_checked() for i in range(boxes.count())]
    page.screenshot(path=str(artifacts / "review.png"), full_page=False)
    page.keyboard.press("1")  # toggle the first category
    page.keyboard.press("5")  # 负面 (four categories, then the three sentiments)
    assert boxes.nth(0).is_checked() != before[0]
    page.keyboard.press("Enter")
    page.wait_for_selector(f'form.review-item.done[data-id="{rid}"]')
    assert page.inner_text("#done-here") == "1"
    assert "current" in page.locator("form.review-item").nth(1).get_attribute("class")  # moved on
    expected = sorted(c for c, on in zip(("attitude", "expertise", "process", "speed"),
                                         [not before[0], *before[1:]]) if on)
    with session_scope(server["url"]) as session:
        record = session.get(FeedbackRecord, rid)
        assert record.corrected_categories == expected and record.corrected_sentiment == "negative"
        assert record.corrected_by == "王分析" and record.corrected_at is not None
        audit = {a.field: a.actor for a in record.audit}
        assert audit["corrected_categories"] == audit["corrected_sentiment"] == "王分析"
    page.keyboard.press("ArrowUp")
    assert "current" in page.locator("form.review-item").first.get_attribute("class")


def test_login_cookie_and_csrf(page, server, browser):
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["cxnlp_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and KEY not in session["value"]
    assert "cxnlp_session" not in page.evaluate("document.cookie")  # scripts cannot read it
    page.goto(f"{server['base']}/review")
    rid = page.locator("form.review-item").first.get_attribute("data-id")
    statuses = page.evaluate("""async (rid) => {
        const body = new URLSearchParams({version: '1', sentiment: 'neutral'});
        const none = await fetch('/review/' + rid, {method: 'POST', body, headers: {Accept: 'application/json'}});
        const forged = await fetch('/review/' + rid, {method: 'POST', body,
                                   headers: {Accept: 'application/json', 'X-CSRF-Token': 'forged'}});
        return [none.status, forged.status]; }""", rid)
    assert statuses == [403, 403]
    with session_scope(server["url"]) as session:
        assert session.get(FeedbackRecord, int(rid)).corrected_at is None
    # a fresh browser without the session is sent to the login form, and a wrong key is refused
    other = browser.new_context()
    try:
        fresh = other.new_page()
        fresh.goto(f"{server['base']}/ledger")
        assert "/login" in fresh.url
        fresh.fill("input[name=key]", "wrong")
        fresh.click("form.login button[type=submit]")
        assert "密钥不正确" in fresh.inner_text("main") and "/login" in fresh.url
    finally:
        other.close()


def test_hostile_texts_show_as_text_and_run_nothing(page, server, artifacts):
    page.add_init_script("window.__ran = false;")
    ids = server["ids"][MONTH][-len(XSS_TEXTS):]
    for rid, text in zip(ids, XSS_TEXTS):
        page.goto(f"{server['base']}/ledger/{rid}")
        assert page.inner_text("#record-text") == text
        assert page.locator("#record-text img, #record-text script, #record-text svg").count() == 0
    page.screenshot(path=str(artifacts / "record-hostile.png"), full_page=True)
    page.goto(f"{server['base']}/ledger?channel={XSS_CHANNEL}")
    assert page.locator("#records tbody tr[data-id]").count() == len(XSS_TEXTS)
    assert page.locator("#records b").count() == 0
    page.locator("#records td.text").first.hover()
    page.goto(f"{server['base']}/?month={MONTH}")
    page.wait_for_selector("#chart-channels canvas")
    box = page.locator("#chart-channels").bounding_box()
    for dy in range(40, int(box["height"]) - 20, 20):  # hover over every bar: tooltips are drawn, not HTML
        page.mouse.move(box["x"] + 150, box["y"] + dy)
    page.goto(f"{server['base']}/review")
    assert page.locator("form.review-item img, form.review-item svg").count() == 0
    # (the fixture checks that no dialog opened, no script failed and nothing left this host)


def test_every_page_and_the_api_docs_load_offline(page, server, artifacts):
    base = server["base"]
    for name, path, ready in (("followups", "/followups", "#followups"), ("surveys", "/surveys", "#survey-upload"),
                              ("model", "/model", "#model-card"),
                              ("docs", "/docs", ".swagger-ui .info"), ("redoc", "/redoc", ".api-content")):
        page.goto(base + path)
        page.wait_for_selector(ready)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=name in ("followups", "surveys", "model"))
    page.goto(base + "/surveys")
    page.set_input_files("input[name=file]", str(ROOT / "data_samples" / "examples" / "survey.xlsx"))
    page.click("#survey-upload button[type=submit]")
    page.wait_for_selector("#chart-dimensions canvas")
    page.wait_for_selector("#chart-satisfaction canvas")
    assert page.inner_text("#survey-csat").endswith("%")
    page.screenshot(path=str(artifacts / "survey-report.png"), full_page=True)
