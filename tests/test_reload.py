"""Model reload over HTTP: only folders under the model root, never code from a folder, a 4xx with the
reason for a bad folder, and every worker on the requested model; `serve` stays on loopback without a key."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from cxnlp.errors import ConfigError
from cxnlp.settings import Settings
from cxnlp.store import CARD_FILE
from service.main import create_app
from service.runner import check_listen_address
from test_model_folder import crafted_pickle_folder
from test_service import free_port, start_server, stop

KEY = {"X-API-Key": "s3cret"}


def new_version(small_model, folder: Path, version: str) -> Path:
    """A copy of the small model that says it is another version (the card is not part of the checksums)."""
    shutil.copytree(small_model.path, folder)
    card = json.loads((folder / CARD_FILE).read_text())
    card["version"] = version
    (folder / CARD_FILE).write_text(json.dumps(card))
    return folder


@pytest.fixture()
def rooted(small_model, tmp_path):
    """A client whose model root is tmp_path/models, holding the small model as version 2.0.0."""
    root = tmp_path / "models"
    root.mkdir()
    new_version(small_model, root / "v2", "2.0.0")
    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", api_key="s3cret", model_root=str(root))
    with TestClient(create_app(model=small_model, settings=settings)) as client:
        yield client, root


def test_reload_under_the_root_swaps_the_model(rooted):
    client, root = rooted
    r = client.post("/v1/model/reload", headers=KEY, json={"model_dir": str(root / "v2")})
    assert r.status_code == 200 and r.json()["version"] == "2.0.0"
    [me] = r.json()["workers"]
    assert me["model_version"] == f"{r.json()['name']}-2.0.0" and me["pid"] == os.getpid() and me["error"] is None
    ready = client.get("/readyz").json()
    assert ready["model_version"].endswith("2.0.0") and ready["pid"] == os.getpid() and ready["worker"] == 0
    assert client.post("/v1/classify", json={"texts": ["等了很久"]}).json()["model_version"] == ready["model_version"]


def test_reload_outside_the_root_is_403(rooted, small_model, tmp_path):
    client, root = rooted
    (root / "escape").symlink_to(small_model.path)
    for outside in (str(small_model.path), str(root / ".." / ".." / small_model.path.name), str(root / "escape"),
                    "/etc"):
        r = client.post("/v1/model/reload", headers=KEY, json={"model_dir": outside})
        assert r.status_code == 403 and "outside the model root" in r.json()["detail"], outside
    assert client.get("/readyz").json()["model_version"] == small_model.version


def _reason(response) -> str:
    """A 422's reason: a message, or the validation error list's messages."""
    detail = response.json()["detail"]
    return detail if isinstance(detail, str) else " ".join(e["msg"] for e in detail)


@pytest.mark.parametrize("make,reason", [
    (lambda root: root / "nothing-here", "no such folder"),
    (lambda root: (root / "empty").mkdir() or root / "empty", "model.json is missing"),
    (lambda root: (root / "v2" / "model.npz").write_bytes(b"junk") and root / "v2", "sha256"),
    (lambda root: root / "x\0y", "NUL character"),
])
def test_bad_folder_is_422_with_the_reason(rooted, small_model, make, reason):
    client, root = rooted
    r = client.post("/v1/model/reload", headers=KEY, json={"model_dir": str(make(root))})
    assert r.status_code == 422 and reason in _reason(r)
    assert client.get("/readyz").json()["model_version"] == small_model.version  # still serving the old one


def test_reload_never_unpickles_a_crafted_model(rooted, tmp_path):
    client, root = rooted
    folder, marker = crafted_pickle_folder(root)
    r = client.post("/v1/model/reload", headers=KEY, json={"model_dir": str(folder)})
    assert r.status_code == 422 and "no longer loads pickled models" in r.json()["detail"]
    assert not marker.exists()


def test_reload_reaches_every_worker_with_the_requested_model(small_model, tmp_path):
    """With two workers, every worker serves the requested model afterwards, and says so."""
    root = tmp_path / "models"
    root.mkdir()
    v2 = new_version(small_model, root / "v2", "2.0.0")
    port = free_port()
    os.environ["CXNLP_MODEL_ROOT"] = str(root)
    try:
        proc = start_server(port, tmp_path, workers=2)
    finally:
        del os.environ["CXNLP_MODEL_ROOT"]
    try:
        base = f"http://127.0.0.1:{port}"
        old = httpx.get(f"{base}/readyz").json()["model_version"]
        r = httpx.post(f"{base}/v1/model/reload", json={"model_dir": str(v2)}, timeout=90)
        assert r.status_code == 200, r.text
        new = f"{r.json()['name']}-2.0.0"
        assert new != old
        # every answer, from whichever worker takes the connection (a new one each time), is the new model's
        versions = {httpx.post(f"{base}/v1/classify", json={"texts": ["等了很久"]}).json()["model_version"]
                    for _ in range(100)}
        assert versions == {new}
        seen: dict[int, str] = {}
        for _ in range(400):
            ready = httpx.get(f"{base}/readyz").json()
            seen[ready["pid"]] = ready["model_version"]
            if len(seen) == 2:
                break
        workers = r.json()["workers"]
        assert sorted(w["worker"] for w in workers) == [0, 1] and {w["model_version"] for w in workers} == {new}
        assert set(seen) == {w["pid"] for w in workers} and set(seen.values()) == {new}
        # a crafted pickle under the root is refused by the worker that gets the request; nothing runs
        folder, marker = crafted_pickle_folder(root)
        r = httpx.post(f"{base}/v1/model/reload", json={"model_dir": str(folder)}, timeout=90)
        assert r.status_code == 422 and not marker.exists()
        assert httpx.get(f"{base}/readyz").json()["model_version"] == new
    finally:
        stop(proc)


@pytest.mark.parametrize("host,key,allow,ok", [
    ("127.0.0.1", None, False, True), ("::1", None, False, True), ("localhost", None, False, True),
    ("0.0.0.0", None, False, False), ("::", None, False, False), ("192.168.1.5", None, False, False),
    ("example.org", None, False, False), ("0.0.0.0", "k", False, True), ("0.0.0.0", None, True, True),
])
def test_listen_address_without_a_key_is_loopback_only(host, key, allow, ok):
    if ok:
        check_listen_address(host, api_key=key, allow_unauthenticated=allow)
    else:
        with pytest.raises(ConfigError, match="--allow-unauthenticated"):
            check_listen_address(host, api_key=key, allow_unauthenticated=allow)


def test_serve_refuses_all_interfaces_without_a_key():
    env = {k: v for k, v in os.environ.items() if k != "CXNLP_API_KEY"}
    proc = subprocess.Popen([sys.executable, "-m", "cxnlp", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # it is serving: the refusal is missing
        proc.kill()
        proc.communicate()
        pytest.fail("cxnlp serve --host 0.0.0.0 started without an API key")
    assert proc.returncode == 1 and "CXNLP_API_KEY" in err and "Traceback" not in err


@pytest.mark.parametrize("field,value", [("categories", 5), ("name", ["x"]), ("thresholds", "high"),
                                         ("library_versions", {"numpy": [2]}), ("files", [])])
def test_a_card_with_wrong_types_is_422_not_500(rooted, field, value):
    client, root = rooted
    card = json.loads((root / "v2" / CARD_FILE).read_text())
    card[field] = value
    (root / "v2" / CARD_FILE).write_text(json.dumps(card))
    r = client.post("/v1/model/reload", headers=KEY, json={"model_dir": str(root / "v2")})
    assert r.status_code == 422 and field in r.json()["detail"]
