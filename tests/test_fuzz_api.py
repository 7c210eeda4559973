"""Schemathesis against the app's own OpenAPI document: every operation, valid and invalid input, on a
service without a key, with a key sent, and with a key required but not sent. No answer may be a 5xx,
and every answer must match the schema the API publishes.

Bounded for CI (a few dozen examples per operation) and deterministic (derandomized).
"""
from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from cxnlp.settings import Settings
from service.main import create_app

pytestmark = pytest.mark.slow
KEY = "s3cret"
EXAMPLES = 100
# The fuzzer varies the inputs; these properties of the answers are what it checks.
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")


@pytest.fixture(params=["no key", "key sent", "key missing"])
def setup(request, small_model, tmp_path):
    settings_ = Settings(ledger_url=f"sqlite:///{tmp_path / 'fuzz.db'}",
                         api_key=None if request.param == "no key" else KEY)
    app = create_app(model=small_model, settings=settings_)
    with TestClient(app) as client:  # a few records, so reads and patches find some
        for i in range(3):
            client.post("/v1/feedback", json={"text": f"第{i}次：快递三天没到，客服态度也差", "source_id": f"F-{i}",
                                              "received_at": "2026-11-05T10:00:00+08:00"},
                        headers={"X-API-Key": KEY})
    headers = {"X-API-Key": KEY} if request.param == "key sent" else {}
    return app, headers


@pytest.fixture()
def api_schema(setup):
    return schemathesis.openapi.from_asgi("/openapi.json", setup[0])


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_and_answers_match_the_schema(case, setup):
    from schemathesis import checks

    _, headers = setup
    selected = [getattr(checks, name) for name in CHECKS if hasattr(checks, name)]
    response = case.call(headers={**(case.headers or {}), **headers})
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
    case.validate_response(response, checks=selected, headers=headers)
