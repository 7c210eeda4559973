"""The HTTP service: in-process with TestClient, and as a real `cxnlp serve` process on 127.0.0.1."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from cxnlp.ledger.models import FeedbackRecord
from cxnlp.settings import Settings
from service.main import create_app


@pytest.fixture()
def client(small_model, tmp_path):
    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", api_key="s3cret", max_body_bytes=200_000)
    with TestClient(create_app(model=small_model, settings=settings), base_url="http://localhost") as c:
        yield c


def test_classify_keeps_order_and_flags_bad_texts(client, small_model):
    from cxnlp.prediction import predict_texts

    texts = ["客服态度特别差，还挂我电话", "", "等了两个小时没人处理", "好" * 5001]
    r = client.post("/v1/classify", json={"texts": texts})
    assert r.status_code == 200
    body = r.json()
    results = body["results"]
    assert len(results) == 4 and body["model_version"]
    assert results[1]["error"] == "empty text" and "5000" in results[3]["error"]
    assert results[0]["error"] is None and results[2]["error"] is None
    # each result is the library's own for that text, in the order sent (the route adds and changes nothing)
    library = predict_texts(small_model, texts)
    for got, want in zip(results, library):
        assert (got["categories"], got["sentiment"], got["error"]) == (want.categories, want.sentiment, want.error)
    assert results[2]["categories"] == ["speed"] and results[2]["sentiment"] == "negative"
    assert set(results[0]["category_scores"]) == set(client.get("/v1/model").json()["categories"])


@pytest.mark.parametrize("payload,status", [({"texts": []}, 422), ({"texts": ["a"] * 1001}, 422),
                                            ({"text": "x"}, 422)])
def test_classify_rejects_bad_bodies(client, payload, status):
    r = client.post("/v1/classify", json=payload)
    assert r.status_code == status and r.json()["detail"]


def test_body_over_the_limit_is_413(client):
    r = client.post("/v1/classify", content=json.dumps({"texts": ["好" * 4000] * 30}),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


@pytest.mark.parametrize("method, path", [("POST", "/v1/classify"), ("POST", "/v1/feedback"),
                                          ("PATCH", "/v1/feedback/1"), ("POST", "/v1/followups/1")])
def test_a_body_not_sent_as_json_is_415_and_undecodable_json_422(client, method, path):
    key = {"X-API-Key": "s3cret"}
    body = json.dumps({"texts": ["好"], "text": "好", "status": "open", "score": 3})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        r = client.request(method, path, content=body, headers={**key, **({"content-type": content_type} if content_type else {})})
        assert r.status_code == 415, (content_type, r.text)
        assert r.json()["detail"].startswith("the body must be JSON, sent with Content-Type: application/json")
        assert r.headers[f"accept-{method.lower()}"] == "application/json"
    for content, why in [(b'{"texts": ["\xff"]}', "the body is not UTF-8 text"),
                         (b'{"texts": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", "the JSON is nested too deeply")]:
        r = client.request(method, path, content=content, headers={**key, "content-type": "application/json"})
        assert r.status_code == 422 and r.json()["detail"] == [{"type": "json_invalid", "loc": ["body"], "msg": why}]
    r = client.request(method, path, content=b'{"texts": [', headers={**key, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"


def test_health_ready_model_and_docs(client):
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").status_code == 200
    card = client.get("/v1/model").json()
    assert {"version", "categories", "sentiments", "metrics", "created"} <= set(card)
    assert "/v1/classify" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_feedback_write_needs_the_api_key(client):
    assert client.post("/v1/feedback", json={"text": "太慢了"}).status_code == 401
    assert client.post("/v1/feedback", json={"text": "太慢了"}, headers={"X-API-Key": "wrong"}).status_code == 401


def test_feedback_record_retry_patch_and_summary(client):
    key = {"X-API-Key": "s3cret"}
    body = {"text": "快递员态度很差，电话13912345678打了也不接", "source_id": "T-100", "channel": "电话",
            "received_at": "2026-11-05T10:00:00"}
    first = client.post("/v1/feedback", json=body, headers=key)
    assert first.status_code == 201
    record = first.json()
    assert "13912345678" not in record["text"] and record["status"] == "open"
    again = client.post("/v1/feedback", json=body, headers=key)
    assert again.status_code == 200 and again.json()["id"] == record["id"]
    idem = {"X-API-Key": "s3cret", "Idempotency-Key": "abc"}
    earlier = {"text": "等了很久", "received_at": "2026-10-30T09:00:00"}
    a = client.post("/v1/feedback", json=earlier, headers=idem).json()
    b = client.post("/v1/feedback", json=earlier, headers=idem).json()
    assert a["id"] == b["id"]
    patched = client.patch(f"/v1/feedback/{record['id']}", headers=key,
                           json={"status": "responded", "corrected_categories": ["attitude", "speed"], "actor": "li"})
    assert patched.status_code == 200
    assert patched.json()["effective_categories"] == ["attitude", "speed"] and patched.json()["first_response_at"]
    assert [e["field"] for e in patched.json()["audit"]][-3:] == ["first_response_at", "status", "corrected_categories"]
    bad = client.patch(f"/v1/feedback/{record['id']}", headers=key, json={"corrected_categories": ["price"]})
    assert bad.status_code == 422 and "price" in bad.json()["detail"][0]["msg"]
    assert client.get("/v1/feedback/999999", headers=key).status_code == 404
    summary = client.get("/v1/ledger/summary", params={"month": "2026-11"}, headers=key).json()
    assert summary["total"] == 1 and summary["by_category"]["attitude"]["count"] == summary["negative"]
    assert client.get("/v1/ledger/summary", params={"month": "2026-13"}, headers=key).status_code == 422
    assert isinstance(client.get("/v1/review", params={"limit": 5}, headers=key).json(), list)


def test_patch_names_who_and_bounds_free_text(client):
    key = {"X-API-Key": "s3cret"}
    record = client.post("/v1/feedback", json={"text": "等了很久", "source_id": "A-1"}, headers=key).json()
    url = f"/v1/feedback/{record['id']}"
    unnamed = client.patch(url, headers=key, json={"root_cause": "排班不足"})
    assert unnamed.status_code == 200 and unnamed.json()["audit"][-1]["actor"] == "api"
    named = client.patch(url, headers=key, json={"status": "responded", "actor": "  王  芳 "})
    assert named.json()["audit"][-1]["actor"] == "王 芳"
    for body, field in [({"root_cause": "原" * 10_001}, "root_cause"), ({"status": "in_progress", "actor": " "}, "actor"),
                        ({"status": "in_progress", "actor": "x" * 101}, "actor")]:
        r = client.patch(url, headers=key, json=body)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", field], body
    assert client.patch(url, headers=key, json={"root_cause": "原" * 10_000}).status_code == 200


def test_reload_swaps_the_model(client, small_model):
    key = {"X-API-Key": "s3cret"}
    client.app.state.settings = client.app.state.settings.model_copy(update={"model_root": str(small_model.path)})
    r = client.post("/v1/model/reload", headers=key, json={"model_dir": str(small_model.path)})
    assert r.status_code == 200 and r.json()["version"] == small_model.card["version"]
    assert client.post("/v1/model/reload", json={}).status_code == 401


# ------------------------------------------------------------------------------- real server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, tmp_path: Path, *extra: str, workers: int = 1) -> subprocess.Popen:
    env = {**os.environ, "CXNLP_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}"}
    env.pop("CXNLP_API_KEY", None)
    # stderr to a file: the server writes a JSON line per request there, and an undrained pipe would
    # block it once full.
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "cxnlp", "serve", "--port", str(port), "--workers",
                                 str(workers), *extra], env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not become ready in 60 s")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_real_server_classifies(tmp_path):
    port = free_port()
    proc = start_server(port, tmp_path, workers=2)
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/v1/classify",
                       json={"texts": ["客服态度特别差，还挂我电话", "等了两个小时没人处理"]}, timeout=10)
        results = r.json()["results"]
        assert "attitude" in results[0]["categories"] and results[0]["sentiment"] == "negative"
        assert "speed" in results[1]["categories"]
    finally:
        stop(proc)


def test_concurrent_retries_record_each_feedback_once(tmp_path):
    """8 clients post 500 feedbacks, each sent twice as a retry: exactly 500 records."""
    port = free_port()
    proc = start_server(port, tmp_path, workers=2)
    items = [{"text": f"第{i}号工单：快递三天没到，客服一直说在催", "source_id": f"S-{i}"} for i in range(500)]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            def send(item):
                return [http.post("/v1/feedback", json=item).status_code for _ in range(2)]
            with ThreadPoolExecutor(8) as pool:
                codes = [c for pair in pool.map(send, items) for c in pair]
    finally:
        stop(proc)
    from collections import Counter

    assert all(c in (200, 201) for c in codes), Counter(codes)
    assert codes.count(201) == 500
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(FeedbackRecord)) == 500


def test_killed_server_loses_no_acknowledged_write(tmp_path):
    port = free_port()
    proc = start_server(port, tmp_path)
    acknowledged: list[str] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        for i in range(2000):
            if i == 60:
                proc.kill()  # SIGKILL mid-stream: no clean shutdown
            try:
                r = http.post("/v1/feedback", json={"text": f"第{i}次反馈，等太久了", "source_id": f"K-{i}"})
            except httpx.HTTPError:
                break
            if r.status_code == 201:
                acknowledged.append(f"K-{i}")
    proc.wait(timeout=10)
    assert len(acknowledged) >= 50
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    with Session(engine) as session:
        stored = set(session.scalars(select(FeedbackRecord.source_id)))
    assert set(acknowledged) <= stored


def test_reload_under_load_drops_no_request(tmp_path):
    """Requests keep flowing while a model is swapped in: every one is answered, by one model or the other."""
    import threading

    port = free_port()
    proc = start_server(port, tmp_path, workers=2)
    codes: list[int] = []
    stop_flag = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            while not stop_flag.is_set():
                codes.append(http.post("/v1/classify", json={"texts": ["等了两个小时没人处理"] * 20}).status_code)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        for _ in range(3):
            r = httpx.post(f"http://127.0.0.1:{port}/v1/model/reload", json={}, timeout=60)
            assert r.status_code == 200
        time.sleep(0.5)
    finally:
        stop_flag.set()
        for t in threads:
            t.join()
        stop(proc)
    assert len(codes) > 10 and set(codes) == {200}
