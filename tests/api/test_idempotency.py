"""Idempotency-Key on POSTs: first response kept and replayed, misuse refused, twins make one effect."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from oms.access.keys import list_keys
from oms.api import idempotency as idem
from oms.domain.access import Role
from oms.store.reads import utcnow
from oms.store.tables import idempotency_keys, orders, receipts

PROBLEM = "application/problem+json"


def catalogue(api: Any) -> None:
    assert api.put("/products/A", {"name": "A", "unit_price": "3.00"}).status_code == 201
    assert (
        api.put("/products/B", {"name": "B", "unit_price": "1.00", "backorder_policy": {"mode": "never"}}).status_code
        == 201
    )
    assert api.post("/inventory/adjustments", {"sku": "A", "qty_delta": 10, "reason": "count"}).status_code == 201
    assert api.put("/customers/C1", {"name": "C1", "email": "c1@example.com"}).status_code == 201


def order(number: str, qty: int = 2, sku: str = "A") -> dict[str, Any]:
    return {"order_number": number, "channel": "web", "customer_id": "C1", "lines": [{"sku": sku, "qty": qty}]}


def keyed(caller: Any, path: str, body: Any, key: str) -> Any:
    """POST with an Idempotency-Key."""
    return caller.client.post("/api/v1" + path, json=body, headers={**caller.headers, "Idempotency-Key": key})


def count(api: Any, table: Any) -> int:
    return int(api.store.read(lambda c: c.scalar(select(func.count()).select_from(table))))


def test_a_retry_with_the_same_key_replays_the_first_response(api):
    catalogue(api)
    first = keyed(api, "/orders", order("O-1"), "k-1")
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = keyed(api, "/orders", order("O-1"), "k-1")
    assert again.status_code == 201  # the stored status, not the 200 a plain resend of the order number gives
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == "application/json"
    assert again.json() == first.json()
    assert count(api, orders) == 1
    assert api.get("/products/A").json()["stock"]["allocated"] == 2


def test_the_same_json_with_other_spacing_and_key_order_is_the_same_request(api):
    catalogue(api)
    headers = {**api.headers, "Idempotency-Key": "k-2", "content-type": "application/json"}
    body = b'{"order_number":"O-2","channel":"web","customer_id":"C1","lines":[{"sku":"A","qty":1}]}'
    spaced = b'{ "lines": [ {"qty": 1, "sku": "A"} ], "customer_id": "C1", "channel": "web", "order_number": "O-2" }'
    assert api.client.post("/api/v1/orders", content=body, headers=headers).status_code == 201
    r = api.client.post("/api/v1/orders", content=spaced, headers=headers)
    assert (r.status_code, r.headers["idempotent-replayed"]) == (201, "true")


def test_the_same_key_with_a_different_body_is_refused_with_422(api):
    catalogue(api)
    assert keyed(api, "/orders", order("O-1"), "k-1").status_code == 201
    r = keyed(api, "/orders", order("O-9"), "k-1")
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["errors"] == [{"field": "Idempotency-Key", "reason": "reused with a different request"}]
    assert api.get("/orders/O-9").status_code == 404
    # ... and on another endpoint too: a key names one request.
    r = keyed(
        api,
        "/inventory/adjustments",
        {"sku": "A", "qty_delta": 1, "reason": "x"},
        "k-1",
    )
    assert r.status_code == 422
    assert api.get("/products/A").json()["stock"]["on_hand"] == 10


def test_a_retry_while_the_first_request_runs_is_refused_with_409(api):
    catalogue(api)
    web = api.as_role(Role.CHANNEL, channel="web", name="web-shop")
    web_id = next(k["id"] for k in api.store.read(list_keys) if k["name"] == "web-shop")
    # The first request has claimed the key and is still running (its claim, made the Guard's way).
    body = order("O-3")
    digest = idem.fingerprint("POST", "/api/v1/orders", "", json.dumps(body).encode())
    claim = api.store.write(
        lambda uow: idem.claim(uow.conn, f"key:{web_id}", "k-3", "POST", "/api/v1/orders", digest, utcnow())
    )
    assert claim.outcome == "claimed"

    r = keyed(web, "/orders", body, "k-3")
    assert r.status_code == 409
    assert r.headers["retry-after"] == "1"
    assert r.json()["errors"] == [{"field": "Idempotency-Key", "reason": "in progress"}]
    assert api.get("/orders/O-3").status_code == 404


def test_keys_belong_to_their_caller(api):
    catalogue(api)
    ops = api.as_role(Role.OPS, name="ops")
    assert keyed(api, "/orders", order("O-1"), "shared").status_code == 201
    r = keyed(ops, "/orders", order("O-2"), "shared")
    assert r.status_code == 201
    assert "idempotent-replayed" not in r.headers
    assert count(api, orders) == 2


def test_a_response_is_kept_for_at_least_24_hours_then_forgotten(api):
    catalogue(api)
    assert keyed(api, "/orders", order("O-1"), "k-1").status_code == 201
    row = api.store.read(lambda c: c.execute(select(idempotency_keys)).one())
    assert (row.state, row.response_status, row.method, row.path) == ("done", 201, "POST", "/api/v1/orders")
    assert row.expires_at - row.created_at >= timedelta(hours=24)

    past = utcnow() - timedelta(seconds=1)
    api.store.write(lambda uow: uow.conn.execute(update(idempotency_keys).values(expires_at=past)))
    r = keyed(api, "/orders", order("O-2"), "k-1")
    assert r.status_code == 201  # an expired key is a new key
    assert r.json()["order_number"] == "O-2"


def test_an_error_response_is_replayed_as_it_was(api):
    catalogue(api)
    first = keyed(api, "/orders", order("O-1", qty=1, sku="B"), "k-err")
    assert first.status_code == 409  # B is never back-ordered and has no stock
    api.post("/inventory/adjustments", {"sku": "B", "qty_delta": 5, "reason": "found"})
    again = keyed(api, "/orders", order("O-1", qty=1, sku="B"), "k-err")
    assert (again.status_code, again.headers["idempotent-replayed"]) == (409, "true")
    assert again.headers["content-type"] == PROBLEM
    assert again.json() == first.json()
    assert api.get("/orders/O-1").status_code == 404


def test_a_malformed_key_is_refused_and_reads_keep_no_key(api):
    catalogue(api)
    r = keyed(api, "/orders", order("O-1"), "has space")
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "Idempotency-Key"
    r = keyed(api, "/orders", order("O-1"), "x" * 256)
    assert r.status_code == 422
    assert api.get("/orders/O-1").status_code == 404
    # A promise reserves nothing: the key is accepted and nothing is stored.
    r = keyed(
        api,
        "/promise",
        {"channel": "web", "lines": [{"sku": "A", "qty": 1}]},
        "p",
    )
    assert r.status_code == 200
    assert "idempotent-replayed" not in r.headers
    assert count(api, idempotency_keys) == 0
    # Without a key nothing is stored either.
    assert api.post("/orders", order("O-1")).status_code == 201
    assert count(api, idempotency_keys) == 0


def _twenty_at_once(api: Any, path: str, body: dict[str, Any], key: str) -> list[tuple[int, str | None, Any]]:
    n = 20
    barrier = threading.Barrier(n)
    results: list[tuple[int, str | None, Any]] = []
    lock = threading.Lock()
    headers = {**api.headers, "Idempotency-Key": key}

    def one() -> None:
        client = TestClient(api.client.app, raise_server_exceptions=False)
        barrier.wait(timeout=30)
        r = client.post("/api/v1" + path, json=body, headers=headers)
        with lock:
            results.append((r.status_code, r.headers.get("idempotent-replayed"), r.json()))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == n
    return results


def test_twenty_identical_orders_at_once_make_one_order(api):
    catalogue(api)
    results = _twenty_at_once(api, "/orders", order("O-RACE"), "race-1")
    statuses = sorted({s for s, _, _ in results})
    assert set(statuses) <= {201, 409}, results
    fresh = [b for s, replayed, b in results if s == 201 and replayed is None]
    assert len(fresh) == 1
    assert all(b == fresh[0] for s, _, b in results if s == 201)
    assert all(b["errors"][0]["reason"] == "in progress" for s, _, b in results if s == 409)
    assert count(api, orders) == 1
    assert api.get("/products/A").json()["stock"]["allocated"] == 2
    # Once the first is done, every retry is a replay.
    r = keyed(api, "/orders", order("O-RACE"), "race-1")
    assert (r.status_code, r.headers["idempotent-replayed"]) == (201, "true")


def test_twenty_identical_receipts_at_once_make_one_receipt(api):
    catalogue(api)
    body = {"grn_number": "GRN-RACE", "lines": [{"sku": "A", "qty": 7}]}
    results = _twenty_at_once(api, "/receipts", body, "race-2")
    assert {s for s, _, _ in results} <= {201, 409}, results
    assert len([1 for s, replayed, _ in results if s == 201 and replayed is None]) == 1
    assert count(api, receipts) == 1
    assert api.get("/products/A").json()["stock"]["on_hand"] == 17


def test_a_keyed_post_to_a_path_with_a_nul_byte_is_a_clean_422(api):
    r = keyed(api, "/orders/A%00B/cancel", {"reason": "x"}, "nul-1")
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "order_number"


class _Crash(RuntimeError):
    """The process dying between the use case's commit and keeping its response."""


def test_a_process_dying_after_the_commit_never_runs_the_use_case_twice(api, monkeypatch):
    catalogue(api)
    assert api.post("/orders", order("O-1")).status_code == 201
    shipment = api.get("/shipments", params={"order_number": "O-1"}).json()["items"][0]
    path = f"/shipments/{shipment['id']}/advance"

    def crash(*args: Any) -> None:
        raise _Crash

    with monkeypatch.context() as m:
        m.setattr(idem, "finish", crash)
        first = keyed(api, path, {}, "adv-1")  # answered, then the process "died" before keeping the answer
    assert first.json()["status"] == "pack"
    state = api.store.read(
        lambda c: c.scalar(select(idempotency_keys.c.state).where(idempotency_keys.c.key == "adv-1"))
    )
    assert state == "applied"
    # Even once the in-progress lease has long passed, the retry replays and does not advance again.
    old = utcnow() - timedelta(hours=1)
    api.store.write(lambda uow: uow.conn.execute(update(idempotency_keys).values(created_at=old)))
    retry = keyed(api, path, {}, "adv-1")
    assert retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert api.get(f"/shipments/{shipment['id']}").json()["status"] == "pack"


def test_an_order_whose_answer_was_lost_replays_201_with_the_order(api, monkeypatch):
    catalogue(api)

    def crash(*args: Any) -> None:
        raise _Crash

    with monkeypatch.context() as m:
        m.setattr(idem, "finish", crash)
        first = keyed(api, "/orders", order("O-9"), "ord-9")
    row = api.store.read(lambda c: c.execute(select(idempotency_keys).where(idempotency_keys.c.key == "ord-9")).one())
    assert (row.state, row.response_status) == ("applied", 201)
    retry = keyed(api, "/orders", order("O-9"), "ord-9")
    assert (retry.status_code, retry.headers["idempotent-replayed"]) == (201, "true")
    assert retry.json() == first.json()
    assert count(api, orders) == 1
