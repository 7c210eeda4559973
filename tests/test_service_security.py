"""The HTTP service under hostile or careless use: the key on reads, body limits, odd input that must be a
4xx, the API's label names, metrics and the access log; then a real server's sockets and workers."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from cxnlp.settings import Settings
from service.main import create_app

KEY = {"X-API-Key": "s3cret"}
TEXT = "快递员态度很差，电话13912345678打了也不接"


@pytest.fixture()
def app(small_model, tmp_path):
    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", api_key="s3cret")
    return create_app(model=small_model, settings=settings)


@pytest.fixture()
def client(app):
    with TestClient(app, base_url="http://localhost") as c:
        yield c


@pytest.fixture()
def record(client) -> dict:
    r = client.post("/v1/feedback", json={"text": TEXT, "source_id": "T-1", "received_at": "2026-11-05T10:00:00"},
                    headers=KEY)
    assert r.status_code == 201
    return r.json()


# ------------------------------------------------------------------------------------- the key
def test_reads_of_customer_words_need_the_key(client, record):
    reads = [f"/v1/feedback/{record['id']}", "/v1/review?limit=1000", "/v1/ledger/summary?month=2026-11", "/metrics"]
    for path in reads:
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401, path
        assert client.get(path, headers=KEY).status_code == 200, path
    assert client.get("/v1/review", headers=KEY).json()[0]["id"] == record["id"]
    for path in ("/healthz", "/readyz"):  # no customer text there
        assert client.get(path).status_code == 200


def test_without_a_key_reads_stay_open(small_model, tmp_path):
    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", api_key=None)
    with TestClient(create_app(model=small_model, settings=settings), base_url="http://localhost") as c:
        assert c.get("/v1/review").status_code == 200 and c.get("/metrics").status_code == 200


@pytest.mark.parametrize("sent", ["密钥".encode("utf-8"), "s3crét".encode("latin-1"), b"\xff\xfe"])
def test_a_non_ascii_key_header_is_401_not_500(client, sent):
    r = client.get("/v1/review", headers={"X-API-Key": sent})
    assert r.status_code == 401


def test_a_non_ascii_configured_key_works(small_model, tmp_path):
    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", api_key="密钥-ü")
    with TestClient(create_app(model=small_model, settings=settings), base_url="http://localhost") as c:
        assert c.get("/v1/review", headers={"X-API-Key": "密钥-ü".encode("utf-8")}).status_code == 200
        assert c.get("/v1/review", headers={"X-API-Key": "密钥-u".encode("utf-8")}).status_code == 401


def test_openapi_declares_the_key_on_reads_and_writes(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [("/v1/feedback/{record_id}", "get"), ("/v1/review", "get"),
                         ("/v1/ledger/summary", "get"), ("/v1/feedback", "post"), ("/metrics", "get")]:
        assert paths[path][method].get("security"), (path, method)
    assert not paths["/healthz"]["get"].get("security")


# ------------------------------------------------------------------------------------- body size
def test_a_chunked_body_over_the_limit_is_413(small_model, tmp_path):
    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", max_body_bytes=100_000)
    chunk = json.dumps({"texts": ["好" * 4000] * 40}).encode()

    def body():  # a generator: sent chunked, with no Content-Length
        yield chunk[:50_000]
        yield chunk[50_000:]

    with TestClient(create_app(model=small_model, settings=settings), base_url="http://localhost") as c:
        r = c.post("/v1/classify", content=body(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_the_documented_maximum_body_is_accepted(client):
    """1,000 texts × 5,000 Chinese characters (≈15 MB of JSON) pass the default limit; texts one character
    too long get their own error, so the check costs no classification."""
    texts = ["好" * 5000] * 999 + ["好" * 5001]
    content = json.dumps({"texts": texts}, ensure_ascii=False).encode()
    assert len(content) > 15_000_000
    r = client.post("/v1/classify", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 200
    assert r.json()["results"][-1]["error"] and r.json()["results"][0]["error"] is None


def test_a_big_batch_is_classified_off_the_event_loop(client, monkeypatch):
    import service.routes.classify as route

    where: list[str] = []
    real = route.predict_texts

    def spy(*args, **kwargs):
        try:
            asyncio.get_running_loop()
            where.append("event loop")
        except RuntimeError:
            where.append("thread")
        return real(*args, **kwargs)

    monkeypatch.setattr(route, "predict_texts", spy)
    assert client.post("/v1/classify", json={"texts": ["等了两个小时没人处理，客服态度也差"] * 200}).status_code == 200
    assert client.post("/v1/classify", json={"texts": ["太慢了"]}).status_code == 200
    assert where == ["thread", "event loop"]


# ------------------------------------------------------------------------------------- odd input
@pytest.mark.parametrize("path", ["/v1/feedback/9223372036854775808", "/v1/feedback/0", "/v1/feedback/-1",
                                  "/v1/ledger/summary?month=0000-01", "/v1/ledger/summary?month=9999-12",
                                  "/v1/ledger/summary?month=2026-13"])
def test_out_of_range_reads_are_422(client, path):
    assert client.get(path, headers=KEY).status_code == 422


@pytest.mark.parametrize("raw", [b'{"texts": ["\\ud800"]}', b'{"text": "\\udfff abc"}',
                                 b'{"text": "abc", "received_at": "9999-12-31T23:59:59"}',
                                 b'{"text": "abc", "received_at": "0001-01-01T00:00:00+01:00"}',
                                 b'{"text": "a\\u0000b"}'])
def test_unstorable_input_is_422(client, raw):
    path = "/v1/classify" if b"texts" in raw else "/v1/feedback"
    r = client.post(path, content=raw, headers={**KEY, "content-type": "application/json"})
    assert r.status_code == 422, r.text


def test_datetimes_come_back_with_their_offset(client, record):
    for field in ("received_at", "due_at", "respond_by", "resolve_by"):
        assert record[field].endswith("Z") or record[field].endswith("+00:00"), record[field]
    assert record["received_at"].startswith("2026-11-05T10:00:00")
    assert record["audit"][0]["at"][-6:] in ("+00:00",) or record["audit"][0]["at"].endswith("Z")


def test_patch_takes_the_label_names_review_import_takes(client, record):
    r = client.patch(f"/v1/feedback/{record['id']}", headers=KEY,
                     json={"corrected_categories": ["服务态度", "响应速度"], "corrected_sentiment": "负面"})
    assert r.status_code == 200, r.text
    assert r.json()["effective_categories"] == ["attitude", "speed"] and r.json()["effective_sentiment"] == "negative"


@pytest.mark.parametrize("body", [{"severity": "重大"}, {"corrected_categories": ["price"]},
                                  {"corrected_categories": ["态度 差"]}, {"corrected_sentiment": "angry"},
                                  {"status": None}, {"status": "done"}])
def test_patch_refuses_what_it_would_not_apply_with_422(client, record, body):
    r = client.patch(f"/v1/feedback/{record['id']}", headers=KEY, json=body)
    assert r.status_code == 422, r.text
    after = client.get(f"/v1/feedback/{record['id']}", headers=KEY).json()
    assert after["severity"] == record["severity"] and after["audit"] == record["audit"]


def test_a_forbidden_status_move_is_still_a_conflict(client, record):
    assert client.patch(f"/v1/feedback/{record['id']}", headers=KEY, json={"status": "closed"}).status_code == 409
    assert client.patch(f"/v1/feedback/{record['id']}", headers=KEY, json={"status": "responded"}).status_code == 200
    assert client.patch(f"/v1/feedback/{record['id']}", headers=KEY, json={"status": "in_progress"}).status_code == 200
    r = client.patch(f"/v1/feedback/{record['id']}", headers=KEY, json={"status": "closed"})
    assert r.status_code == 409 and "cannot go from in_progress to closed" in r.json()["detail"]


def test_a_bad_reload_folder_is_4xx(client, tmp_path):
    r = client.post("/v1/model/reload", headers=KEY, json={"model_dir": str(tmp_path / "nowhere")})
    assert 400 <= r.status_code < 500


# ------------------------------------------------------------------------------------- observability
def test_metrics_count_requests_texts_writes_and_model(client, record, small_model):
    client.post("/v1/classify", json={"texts": ["太慢了", "", "客服很耐心"]})
    text = client.get("/metrics", headers=KEY).text
    assert 'cxnlp_http_requests_total{method="POST",route="/v1/classify",status="200"} 1.0' in text
    assert 'cxnlp_texts_classified_total{route="classify"} 2.0' in text
    assert 'cxnlp_text_errors_total{route="classify"} 1.0' in text
    assert 'cxnlp_ledger_writes_total{result="created"} 1.0' in text
    assert f'cxnlp_model_info{{version="{small_model.version}"}} 1.0' in text
    assert 'cxnlp_http_request_duration_seconds_bucket{le="0.1",method="POST",route="/v1/classify"}' in text
    assert TEXT not in text and "13912345678" not in text


def test_one_json_log_line_per_request_without_text_or_key(client, caplog):
    caplog.set_level(logging.INFO, logger="cxnlp.access")
    r = client.post("/v1/feedback", json={"text": TEXT, "source_id": "秘密-ID"},
                    headers={**KEY, "X-Request-ID": "req-42"})
    assert r.status_code == 201 and r.headers["x-request-id"] == "req-42"
    client.get("/v1/feedback/1", headers={"X-API-Key": "wrong-key-value"})
    lines = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "cxnlp.access"]
    assert len(lines) == 2
    assert lines[0] | {"duration_ms": 0, "ts": "", "pid": 0} == {
        "ts": "", "event": "request", "method": "POST", "route": "/v1/feedback", "status": 201,
        "duration_ms": 0, "request_id": "req-42", "pid": 0}
    assert lines[1]["route"] == "/v1/feedback/{record_id}" and lines[1]["status"] == 401
    assert len(lines[1]["request_id"]) == 32  # none sent: one is made up
    logged = caplog.text
    for secret in ("快递员", "13912345678", "秘密", "s3cret", "wrong-key-value"):
        assert secret not in logged


def test_a_request_id_that_is_not_an_id_is_replaced(client):
    r = client.get("/healthz", headers={"X-Request-ID": "x" * 65})
    assert r.headers["x-request-id"] != "x" * 65 and len(r.headers["x-request-id"]) == 32


# ------------------------------------------------------------------------------------- real server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(port: int, tmp_path: Path, workers: int, **env: str):
    from test_service import start_server

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return start_server(port, tmp_path, workers=workers)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_idle_and_slow_header_sockets_are_closed(tmp_path):
    """200 sockets that send nothing and 20 that trickle half a header are closed by the server; a
    fresh request is answered."""
    from test_service import stop

    port = _free_port()
    proc = _start(port, tmp_path, 1, CXNLP_HEADER_TIMEOUT="1", CXNLP_LIMIT_CONCURRENCY="100")
    idle: list[socket.socket] = []
    try:
        for i in range(220):
            s = socket.create_connection(("127.0.0.1", port))
            if i >= 200:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
            idle.append(s)
        for s in idle:
            s.settimeout(20)  # a bound for the test, not a speed claim
            assert s.recv(1024) == b"", "the server left an idle socket open"
        r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert r.status_code == 200
    finally:
        for s in idle:
            s.close()
        stop(proc)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_parent_is_killed(tmp_path):
    port = _free_port()
    # TMPDIR: the metrics folder a killed parent cannot remove lands in the test's own folder.
    proc = _start(port, tmp_path, 2, TMPDIR=str(tmp_path))
    workers = _children(proc.pid)
    assert len(workers) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 30  # a bound for the test, not a speed claim
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


@pytest.mark.slow
def test_real_server_logs_json_lines_and_sums_metrics_over_workers(tmp_path):
    from test_service import stop

    port = _free_port()
    proc = _start(port, tmp_path, 2)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for i in range(20):
                assert http.post("/v1/feedback", json={"text": f"{TEXT}{i}", "source_id": f"L-{i}"}).status_code == 201
            metrics = http.get("/metrics").text
    finally:
        stop(proc)
    assert 'cxnlp_http_requests_total{method="POST",route="/v1/feedback",status="201"} 20.0' in metrics
    assert 'cxnlp_ledger_writes_total{result="created"} 20.0' in metrics
    lines = [json.loads(line) for line in (tmp_path / f"serve-{port}.log").read_text().splitlines()
             if line.startswith("{")]
    posts = [line for line in lines if line["route"] == "/v1/feedback"]
    assert len(posts) == 20 and {line["status"] for line in posts} == {201}
    assert len({line["pid"] for line in lines}) >= 1
    log_text = (tmp_path / f"serve-{port}.log").read_text()
    assert "快递员" not in log_text and "13912345678" not in log_text


@pytest.mark.slow
def test_real_server_refuses_a_chunked_body_over_the_limit(tmp_path):
    from test_service import stop

    def chunks():  # ≈3.6 MB, sent chunked (no Content-Length)
        yield b'{"texts": ["'
        for _ in range(400):
            yield "好".encode() * 3000
        yield b'"]}'

    port = _free_port()
    proc = _start(port, tmp_path, 1, CXNLP_MAX_BODY_BYTES="1000000")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            r = http.post("/v1/classify", content=chunks(), headers={"content-type": "application/json"})
            assert r.status_code == 413 and "limit" in r.json()["detail"]
            assert http.get("/healthz").status_code == 200
    finally:
        stop(proc)


@pytest.mark.slow
def test_real_server_refuses_headers_over_64_kib(tmp_path):
    from test_service import stop

    port = _free_port()
    proc = _start(port, tmp_path, 1)
    try:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(20)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            try:
                for i in range(200):  # 200 KB of headers
                    s.sendall(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000))
                s.sendall(b"\r\n")
            except OSError:  # closed while sending: also a refusal
                pass
            try:
                answer = s.recv(200)
            except ConnectionResetError:  # closed with our bytes unread: a refusal too
                answer = b""
        assert answer.startswith(b"HTTP/1.1 431") or answer == b""
        assert not answer.startswith(b"HTTP/1.1 200")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Small": "a" * 4000}, timeout=10).status_code == 200
        # Headers that arrive whole in one read are held to the same limit (under httptools' own 80 KiB).
        for pad, status in ((60_000, b"200"), (70_000, b"431")):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.settimeout(20)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * pad + b"\r\n\r\n")
                assert s.recv(200).startswith(b"HTTP/1.1 " + status), pad
        small = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        # A request pipelined behind another in the same read is held to the limit too (1 MB was a 200).
        big = small[:-2] + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(1000)) + b"\r\n"
        assert b"HTTP/1.1 200" not in _exchange(port, [small + big])
        # The unread rest of a body answered early is no header: the next request is answered.
        post = b"POST /no-such-route HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
        answers = _exchange(port, [post, b"x" * 100_000, small])
        assert re.findall(rb"HTTP/1\.1 \d+", answers) == [b"HTTP/1.1 404", b"HTTP/1.1 200"], answers[:300]
    finally:
        stop(proc)


def _exchange(port: int, parts: list[bytes]) -> bytes:
    """What a connection answers to these writes (a short pause between them), read until it closes or is
    quiet for two seconds."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(2)
        try:
            for part in parts:
                s.sendall(part)
                time.sleep(0.05)
            while chunk := s.recv(65536):
                answer += chunk
        except (socket.timeout, ConnectionResetError, BrokenPipeError):
            pass
    return answer


# ------------------------------------------------------------------------------------- Host header
@pytest.mark.parametrize("host,status", [
    ("attacker.example", 400), ("attacker.example:8000", 400), ("localhost.attacker.example", 400),
    ("localhost:8000", 200), ("127.0.0.1:8000", 200), ("[::1]:8000", 200), ("LOCALHOST.", 200),
    ("serve.internal:8000", 200),  # the address `cxnlp serve` was told to listen on
    ("10.0.0.7:8000", 200),        # an IP literal: no DNS rebinding goes through it
])
def test_without_a_key_only_loopback_and_listen_hosts_are_answered(small_model, tmp_path, host, status):
    """DNS rebinding: a page of attacker.example, re-pointed at 127.0.0.1, must not read the ledger."""
    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", api_key=None)
    app = create_app(model=small_model, settings=settings, listen_host="serve.internal")
    with TestClient(app, base_url="http://localhost") as c:
        r = c.get("/v1/review", headers={"Host": host})
        assert r.status_code == status, r.text
        assert c.post("/v1/feedback", json={"text": "客服态度很差"}, headers={"Host": host}).status_code == (
            201 if status == 200 else 400)


def test_with_a_key_any_host_is_answered_unless_hosts_are_configured(small_model, tmp_path):
    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", api_key="k")
    with TestClient(create_app(model=small_model, settings=settings), base_url="http://localhost") as c:
        assert c.get("/v1/review", headers={**KEY_K, "Host": "cx.example.com"}).status_code == 200
    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", api_key="k", allowed_hosts="cx.example.com")
    with TestClient(create_app(model=small_model, settings=settings), base_url="http://localhost") as c:
        assert c.get("/v1/review", headers={**KEY_K, "Host": "cx.example.com"}).status_code == 200
        assert c.get("/v1/review", headers={**KEY_K, "Host": "other.example"}).status_code == 400


KEY_K = {"X-API-Key": "k"}
