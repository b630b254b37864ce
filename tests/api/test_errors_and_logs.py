"""Errors are problem details that leak nothing; every request leaves one JSON log line; keys' last use."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi.testclient import TestClient

from oms.access.keys import UsageClock, create_key, list_keys
from oms.api.logs import ACCESS, JsonFormatter, logging_config
from oms.app import create_app
from oms.domain.access import Role

PROBLEM = "application/problem+json"


def test_a_crash_answers_500_with_a_request_id_and_no_trace_or_sql(store, caplog):
    app = create_app(store)

    def boom() -> None:
        raise RuntimeError("SELECT password FROM secrets WHERE id = 1")

    app.add_api_route("/api/v1/boom", boom)
    token = store.write(lambda uow: create_key(uow.conn, Role.ADMIN, "t"))
    with caplog.at_level(logging.INFO, logger="oms"), TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/boom", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 500
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["request_id"] == r.headers["x-request-id"]
    assert "SELECT" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    crash = [rec for rec in caplog.records if rec.name == "oms.api" and rec.levelno == logging.ERROR]
    assert len(crash) == 1
    assert crash[0].request_id == body["request_id"]  # type: ignore[attr-defined]
    assert "SELECT password" in JsonFormatter().format(crash[0])  # the trace stays in the log
    line = next(rec for rec in caplog.records if rec.name == ACCESS)
    assert (line.status, line.request_id) == (500, body["request_id"])  # type: ignore[attr-defined]


def test_unknown_routes_and_methods_are_problem_details(api):
    r = api.get("/no-such-thing")
    assert (r.status_code, r.headers["content-type"]) == (404, PROBLEM)
    assert "/api/v1/no-such-thing" in r.json()["detail"]
    r = api.client.delete("/api/v1/orders", headers=api.headers)
    assert (r.status_code, r.headers["content-type"]) == (405, PROBLEM)
    assert "GET" in r.headers["allow"] and "POST" in r.headers["allow"]
    assert "DELETE is not allowed" in r.json()["detail"]


def test_every_validation_error_names_each_offending_field(api):
    body = {"order_number": "", "channel": "web", "customer_id": "C1", "lines": [{"sku": "A", "qty": 0}], "x": 1}
    r = api.post("/orders", body)
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"order_number", "lines.0.qty", "x"}
    assert "order_number" in r.json()["detail"]


def test_a_client_request_id_is_kept_and_a_hostile_one_replaced(api):
    r = api.client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = api.client.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces" + "x" * 200})
    assert len(r.headers["x-request-id"]) == 32


def test_each_request_leaves_one_json_access_line(api, caplog):
    buyer = api.as_role(Role.PURCHASING, name="buyer-1")
    with caplog.at_level(logging.INFO, logger=ACCESS):
        r = buyer.get("/products/NOPE")
    lines = [rec for rec in caplog.records if rec.name == ACCESS]
    assert len(lines) == 1
    out = json.loads(JsonFormatter().format(lines[0]))
    assert out["request_id"] == r.headers["x-request-id"]
    assert (out["key"], out["role"], out["method"], out["route"], out["path"], out["status"]) == (
        "buyer-1",
        "purchasing",
        "GET",
        "/api/v1/products/{sku}",
        "/api/v1/products/NOPE",
        404,
    )
    assert isinstance(out["duration_ms"], float) and out["duration_ms"] >= 0
    assert out["level"] == "info" and out["at"].endswith("Z")


def test_the_serve_logging_config_formats_as_json():
    config: dict[str, Any] = logging_config()
    assert config["formatters"]["json"]["()"] == "oms.api.logs.JsonFormatter"
    assert config["loggers"]["oms"]["handlers"] == ["stderr"]
    assert config["loggers"]["uvicorn.access"]["propagate"] is False  # our access line replaces uvicorn's


def test_a_keys_last_use_is_recorded(api):
    ops = api.as_role(Role.OPS, name="ops-1")
    before = next(k for k in api.store.read(list_keys) if k["name"] == "ops-1")
    assert before["last_used_at"] is None
    assert ops.get("/orders").status_code == 200
    after = next(k for k in api.store.read(list_keys) if k["name"] == "ops-1")
    assert after["last_used_at"] is not None
    assert after["last_used_at"] >= after["created_at"]


def test_last_use_is_written_at_most_once_a_minute_per_key():
    clock = UsageClock(interval_s=60)
    assert clock.due(1, now=1000.0) is True
    assert clock.due(1, now=1059.9) is False
    assert clock.due(2, now=1059.9) is True
    assert clock.due(1, now=1060.0) is True
