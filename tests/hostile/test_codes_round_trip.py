"""Every code the API accepts can be named in its paths again, on both stores.

Codes (SKUs, order, PO and GRN numbers, customer ids, channels) hold only characters a URL path
segment carries as they are. A '/' (or any character outside the code alphabet) is refused at
creation with a 422 naming the field, storing nothing; a code using every accepted kind of
character reads back, and is acted on, through each of its paths.
"""

from __future__ import annotations

from typing import Any

from .common import PROBLEM, snapshot
from .test_injection import day, ok

# Letters, digits and each accepted punctuation mark ('.', '_', ':', '-'), dots doubled as in "..".
ODD_BUT_FINE = "Ab9.x_y:z-..1"
UNREACHABLE = ["A/B", "A%2FB", "A?B", "A#B", "A B", "A\\B", "A%B"]


def _refused(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert field in {e["field"] for e in r.json()["errors"]}, r.text


def test_codes_a_path_cannot_carry_are_refused_at_creation_naming_the_field(api):
    ok(api.put("/products/P-1", {"name": "Tent", "unit_price": "10.00", "backorder_policy": {"mode": "always"}}))
    ok(api.put("/customers/C-1", {"name": "Carol", "email": "carol@example.com"}))
    before = snapshot(api.store)
    for code in UNREACHABLE:
        order = {"order_number": code, "channel": "web", "customer_id": "C-1", "lines": [{"sku": "P-1", "qty": 1}]}
        _refused(api.post("/orders", order), "order_number")
        _refused(api.post("/orders", {**order, "order_number": "SO-1", "channel": code}), "channel")
        _refused(api.post("/orders", {**order, "order_number": "SO-1", "customer_id": code}), "customer_id")
        _refused(
            api.post("/orders", {**order, "order_number": "SO-1", "lines": [{"sku": code, "qty": 1}]}), "lines.0.sku"
        )
        po = {"po_number": code, "supplier": "Acme", "lines": [{"sku": "P-1", "qty": 1, "expected_date": day(5)}]}
        _refused(api.post("/purchase-orders", po), "po_number")
        receipt = {"grn_number": code, "lines": [{"sku": "P-1", "qty": 1}]}
        _refused(api.post("/receipts", receipt), "grn_number")
        _refused(api.post("/receipts", {**receipt, "grn_number": "G-1", "po_number": code}), "po_number")
        _refused(api.post("/inventory/adjustments", {"sku": code, "qty_delta": 1, "reason": "count"}), "sku")
        policy = {"mode": "always", "channels": [code]}
        _refused(api.put("/settings/default-backorder-policy", policy), "channels.0")
    assert snapshot(api.store) == before


def test_a_code_of_every_accepted_character_round_trips_through_its_paths(api):
    code = ODD_BUT_FINE
    assert ok(api.put(f"/products/{code}", {"name": "Odd", "unit_price": "2.00"}), 201)["sku"] == code
    assert ok(api.get(f"/products/{code}"))["sku"] == code
    ok(api.put(f"/customers/{code}", {"name": "Odd", "email": "odd@example.com"}), 201)
    assert ok(api.get(f"/customers/{code}"))["customer_id"] == code
    ok(api.post("/inventory/adjustments", {"sku": code, "qty_delta": 1, "reason": "count"}), 201)
    order = {"order_number": code, "channel": code, "customer_id": code, "lines": [{"sku": code, "qty": 3}]}
    assert ok(api.post("/orders", order), 201)["order_number"] == code
    assert ok(api.post("/orders", order), 200)["order_number"] == code  # the same order again: found
    assert ok(api.get(f"/orders/{code}"))["channel"] == code
    assert ok(api.get("/orders", params={"channel": code, "sku": code, "customer_id": code}))["items"][0]["lines"]
    assert ok(api.get(f"/orders/{code}/events"))["items"]
    assert ok(api.get(f"/orders/{code}/lines/1/explain"))
    assert ok(api.post(f"/orders/{code}/priority", {"priority": 3}))["priority"] == 3
    po = {"po_number": code, "supplier": "Acme", "lines": [{"sku": code, "qty": 5, "expected_date": day(5)}]}
    ok(api.post("/purchase-orders", po), 201)
    assert ok(api.get(f"/purchase-orders/{code}"))["po_number"] == code
    ok(api.patch(f"/purchase-orders/{code}", {"lines": [{"sku": code, "expected_date": day(6)}]}))
    receipt = {"grn_number": code, "po_number": code, "lines": [{"sku": code, "qty": 1}]}
    ok(api.post("/receipts", receipt), 201)
    assert ok(api.post("/receipts", receipt), 200)["grn_number"] == code  # the same GRN again: its stored result
    ok(api.post(f"/purchase-orders/{code}/cancel"))
    cancelled = ok(api.post(f"/orders/{code}/cancel", {"reason": "test"}))
    assert cancelled["order_number"] == code
