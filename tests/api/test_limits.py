"""Limits: body size, lines per order, quantity, money, dates, string lengths, page size, rate limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from oms.access.keys import create_key
from oms.api.ratelimit import RateLimiter
from oms.app import create_app
from oms.domain.access import Role

PROBLEM = "application/problem+json"


def day(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def catalogue(api: Any) -> None:
    assert api.put("/products/A", {"name": "A", "unit_price": "3.00"}).status_code == 201
    assert api.put("/customers/C1", {"name": "C1", "email": "c1@example.com"}).status_code == 201


def order(**over: Any) -> dict[str, Any]:
    body = {"order_number": "O-1", "channel": "web", "customer_id": "C1", "lines": [{"sku": "A", "qty": 1}]}
    return {**body, **over}


def fields(r: Any, status: int = 422) -> set[str]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status
    return {e["field"] for e in body["errors"]}


def nothing_stored(api: Any) -> None:
    assert api.get("/orders").json()["items"] == []
    assert api.get("/products/A").json()["stock"] == {
        "on_hand": 0,
        "allocated": 0,
        "available": 0,
        "backordered": 0,
        "incoming": 0,
    }


def test_a_body_over_one_mebibyte_is_refused_with_413(api):
    catalogue(api)
    big = order(lines=[{"sku": "A", "qty": 1}] * 60_000)
    raw = json.dumps(big).encode()
    assert len(raw) > 1024 * 1024
    r = api.client.post("/api/v1/orders", content=raw, headers={**api.headers, "content-type": "application/json"})
    assert fields(r, 413) == {"body"}
    assert r.json()["errors"][0]["max_bytes"] == 1024 * 1024
    nothing_stored(api)


def test_a_body_streamed_without_a_length_is_cut_off_at_the_limit(store):
    app = create_app(store, max_body_bytes=1000)
    token = store.write(lambda uow: create_key(uow.conn, Role.ADMIN, "t"))

    def chunks() -> Any:
        for _ in range(20):
            yield b" " * 100

    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
        r = client.post("/api/v1/orders", content=chunks(), headers=headers)
    assert r.status_code == 413
    assert r.json()["errors"][0]["max_bytes"] == 1000


def test_an_order_of_501_lines_is_refused_and_500_are_accepted(api):
    catalogue(api)
    lines = [{"sku": "A", "qty": 1}] * 501
    r = api.post("/orders", order(lines=lines))
    assert fields(r) == {"lines"}
    assert "500" in json.dumps(r.json()["errors"])
    nothing_stored(api)
    r = api.post("/orders", order(lines=lines[:500]))
    assert r.status_code == 201, r.text
    assert len(r.json()["lines"]) == 500


@pytest.mark.parametrize("qty", [0, -1, -(10**9), 1_000_001, 10**30, 1.5, "2", True, None])
def test_a_quantity_outside_1_to_a_million_or_not_an_integer_is_refused(api, qty):
    catalogue(api)
    r = api.post("/orders", order(lines=[{"sku": "A", "qty": 1}, {"sku": "A", "qty": qty}]))
    assert fields(r) == {"lines.1.qty"}
    nothing_stored(api)


@pytest.mark.parametrize("delta", [10**7, -(10**7), 2.5])
def test_a_stock_adjustment_out_of_bounds_is_refused(api, delta):
    catalogue(api)
    r = api.post("/inventory/adjustments", {"sku": "A", "qty_delta": delta, "reason": "count"})
    assert fields(r) == {"qty_delta"}
    nothing_stored(api)


@pytest.mark.parametrize("price", ["1.234", "abc", "-1.00", "1e400", "NaN", "Infinity", "99999999999.00", "", [1]])
def test_a_bad_decimal_is_refused(api, price):
    r = api.put("/products/P", {"name": "P", "unit_price": price})
    assert fields(r) == {"unit_price"}
    assert api.get("/products/P").status_code == 404


def test_nan_and_infinity_literals_are_not_json(api):
    headers = {**api.headers, "content-type": "application/json"}
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"name": "P", "unit_price": ' + literal + b"}"
        r = api.client.put("/api/v1/products/P", content=body, headers=headers)
        assert fields(r, 400) == {"body"}
    assert api.get("/products/P").status_code == 404


@pytest.mark.parametrize("when", ["2026-13-01", "tomorrow", "2026-02-30", "", "01/02/2027", 20270101])
def test_a_bad_date_is_refused(api, when):
    catalogue(api)
    body = {"po_number": "PO-1", "supplier": "Acme", "lines": [{"sku": "A", "qty": 1, "expected_date": when}]}
    r = api.post("/purchase-orders", body)
    assert fields(r) == {"lines.0.expected_date"}
    assert api.get("/purchase-orders/PO-1").status_code == 404


@pytest.mark.parametrize("placed_at", ["2026-11-01T10:00:00", "yesterday", "2026-11-31T10:00:00Z"])
def test_a_time_without_zone_or_impossible_is_refused(api, placed_at):
    catalogue(api)
    r = api.post("/orders", order(placed_at=placed_at))
    assert fields(r) == {"placed_at"}
    nothing_stored(api)


def test_strings_longer_than_their_bounds_are_refused_each_named(api):
    catalogue(api)
    r = api.post("/orders", order(order_number="O" * 65, channel="c" * 65, customer_id=""))
    assert fields(r) == {"order_number", "channel", "customer_id"}
    r = api.put("/products/A", {"name": "n" * 201, "unit_price": "1.00"})
    assert fields(r) == {"name"}
    r = api.post("/orders/O-1/cancel", {"reason": "r" * 501})
    assert fields(r) == {"reason"}
    assert api.get("/products/A").json()["name"] == "A"


@pytest.mark.parametrize("limit", [0, 501, -1, "many"])
def test_a_page_size_outside_1_to_500_is_refused(api, limit):
    for path in ("/orders", "/backorders", "/products", "/purchase-orders", "/shipments"):
        r = api.get(path, params={"limit": limit})
        assert fields(r) == {"limit"}, path
    assert api.get("/orders", params={"limit": 500}).status_code == 200


def test_a_body_that_is_not_json_is_refused_with_415_and_malformed_json_with_400(api):
    catalogue(api)
    r = api.client.post(
        "/api/v1/orders", content=b"order_number=O-1", headers={**api.headers, "content-type": "text/plain"}
    )
    assert fields(r, 415) == {"Content-Type"}
    r = api.client.post(
        "/api/v1/orders",
        content=b'{"order_number": "O-1",',
        headers={**api.headers, "content-type": "application/json"},
    )
    assert fields(r, 400) == {"body"}
    r = api.client.post(
        "/api/v1/orders", content=b"\xff\xfe{}", headers={**api.headers, "content-type": "application/json"}
    )
    assert fields(r, 400) == {"body"}
    r = api.client.post(
        "/api/v1/orders", content=b"[" * 100_000, headers={**api.headers, "content-type": "application/json"}
    )
    assert fields(r, 400) == {"body"}
    r = api.client.post("/api/v1/orders", content=b"[]", headers={**api.headers, "content-type": "application/json"})
    assert r.status_code == 422
    nothing_stored(api)


def test_the_rate_limit_answers_429_with_retry_after_per_key(store):
    app = create_app(store, rate_limit_per_minute=3)
    a = store.write(lambda uow: create_key(uow.conn, Role.ADMIN, "a"))
    b = store.write(lambda uow: create_key(uow.conn, Role.OPS, "b"))
    with TestClient(app, raise_server_exceptions=False) as client:
        ha = {"Authorization": f"Bearer {a}"}
        assert [client.get("/api/v1/orders", headers=ha).status_code for _ in range(3)] == [200, 200, 200]
        r = client.get("/api/v1/orders", headers=ha)
        assert r.status_code == 429
        assert r.headers["content-type"] == PROBLEM
        assert 1 <= int(r.headers["retry-after"]) <= 20  # a token comes back every 20 s at 3 a minute
        assert r.json()["errors"][0]["limit_per_minute"] == 3
        # A POST over the limit is refused before it runs.
        body = {"sku": "X", "qty_delta": 1, "reason": "count"}
        assert client.post("/api/v1/inventory/adjustments", json=body, headers=ha).status_code == 429
        # Another key has its own bucket.
        assert client.get("/api/v1/orders", headers={"Authorization": f"Bearer {b}"}).status_code == 200


def test_the_rate_limit_comes_from_the_environment(store, monkeypatch):
    monkeypatch.setenv("OMS_RATE_LIMIT_PER_MINUTE", "2")
    app = create_app(store)
    token = store.write(lambda uow: create_key(uow.conn, Role.ADMIN, "a"))
    with TestClient(app, raise_server_exceptions=False) as client:
        h = {"Authorization": f"Bearer {token}"}
        assert [client.get("/api/v1/orders", headers=h).status_code for _ in range(3)] == [200, 200, 429]
        assert "2 requests a minute" in client.get("/openapi.json").json()["info"]["description"]


def test_a_token_bucket_refills_at_its_rate():
    limiter = RateLimiter(per_minute=60)
    assert [limiter.take("k", now=100.0) for _ in range(60)] == [0.0] * 60
    assert limiter.take("k", now=100.0) == pytest.approx(1.0)
    assert limiter.take("k", now=100.5) == pytest.approx(0.5)
    assert limiter.take("k", now=101.0) == 0.0
    assert RateLimiter.retry_after(0.2) == "1"
    assert RateLimiter(0).take("k") == 0.0  # 0 switches the limit off
