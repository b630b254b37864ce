"""Keys and roles: who may call what (API.md, Auth)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from oms.access.keys import list_keys, revoke_key
from oms.domain.access import Role

PROBLEM = "application/problem+json"


# ---- small local helpers ------------------------------------------------------------------------


def day(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def catalogue(api) -> None:
    """Product A with 5 on hand, product B with none, customer C1."""
    for sku, qty in (("A", 5), ("B", 0)):
        assert api.put(f"/products/{sku}", {"name": sku, "unit_price": "2.50"}).status_code == 201
        if qty:
            r = api.post("/inventory/adjustments", {"sku": sku, "qty_delta": qty, "reason": "count"})
            assert r.status_code == 201, r.text
    assert api.put("/customers/C1", {"name": "C1", "email": "c1@example.com"}).status_code == 201


def order_body(number: str, channel: str = "web", sku: str = "A", qty: int = 1) -> dict[str, Any]:
    return {"order_number": number, "channel": channel, "customer_id": "C1", "lines": [{"sku": sku, "qty": qty}]}


def po_body(number: str) -> dict[str, Any]:
    return {"po_number": number, "supplier": "Acme", "lines": [{"sku": "A", "qty": 4, "expected_date": day(5)}]}


def assert_problem(r, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def api_endpoints(api) -> list[tuple[str, str]]:
    """Every (method, concrete path) under /api/v1, path parameters filled with a plausible value."""
    out = []
    for path, operations in api.client.app.openapi()["paths"].items():
        if path.startswith("/api/v1/"):
            concrete = re.sub(r"\{[^}]+\}", "X1", path)
            out.extend((method.upper(), concrete) for method in sorted(operations))
    return out


# ---- authentication -----------------------------------------------------------------------------


def test_every_api_endpoint_refuses_a_missing_or_wrong_key_with_401(api):
    endpoints = api_endpoints(api)
    assert len(endpoints) >= 25  # the table really was walked
    assert ("POST", "/api/v1/orders") in endpoints
    assert ("POST", "/api/v1/shipments/X1/advance") in endpoints
    for method, path in endpoints:
        for headers in ({}, {"Authorization": "Bearer oms_not-a-real-key"}):
            r = api.client.request(method, path, headers=headers, json={} if method != "GET" else None)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.headers["content-type"] == PROBLEM, (method, path)
            assert r.headers["www-authenticate"] == 'Bearer realm="oms"', (method, path)
            assert r.json()["status"] == 401
    assert api.get("/products").json()["items"] == []  # nothing slipped through
    assert api.get("/orders").json()["items"] == []


def test_malformed_authorization_headers_are_refused_with_401(api):
    token = api.headers["Authorization"].removeprefix("Bearer ")
    for value in ("Bearer ", "Basic dXNlcjpwYXNz", f"Token {token}", token, f"Bearer {token}x"):
        r = api.client.get("/api/v1/products", headers={"Authorization": value})
        assert_problem(r, 401)
        assert r.headers["www-authenticate"] == 'Bearer realm="oms"'
    assert api.client.get("/api/v1/products", headers={"Authorization": f"bearer {token}"}).status_code == 200


# Every endpoint API.md names, so a route missing from the app cannot hide from the walk above.
CONTRACT_ENDPOINTS = [
    ("GET", "/products/X1"),
    ("PUT", "/products/X1"),
    ("GET", "/settings/default-backorder-policy"),
    ("PUT", "/settings/default-backorder-policy"),
    ("GET", "/settings/allocation-rule"),
    ("PUT", "/settings/allocation-rule"),
    ("POST", "/inventory/adjustments"),
    ("PUT", "/customers/X1"),
    ("POST", "/orders"),
    ("GET", "/orders"),
    ("GET", "/orders/X1"),
    ("POST", "/orders/X1/cancel"),
    ("POST", "/orders/X1/priority"),
    ("GET", "/orders/X1/events"),
    ("GET", "/backorders"),
    ("POST", "/purchase-orders"),
    ("GET", "/purchase-orders"),
    ("GET", "/purchase-orders/X1"),
    ("PATCH", "/purchase-orders/X1"),
    ("POST", "/purchase-orders/X1/cancel"),
    ("POST", "/receipts"),
    ("POST", "/promise"),
    ("GET", "/reports/shortfall"),
    ("GET", "/shipments"),
    ("GET", "/shipments/1"),
    ("POST", "/shipments/1/advance"),
    ("GET", "/reports/summary"),
    ("GET", "/notifications"),
]


def test_every_endpoint_named_in_the_contract_is_served_and_needs_a_key(api):
    refused = []
    for method, path in CONTRACT_ENDPOINTS:
        r = api.client.request(method, "/api/v1" + path, json={} if method != "GET" else None)
        refused.append((method, path, r.status_code, r.headers.get("www-authenticate")))
    assert refused == [(m, p, 401, 'Bearer realm="oms"') for m, p in CONTRACT_ENDPOINTS]


def test_a_revoked_key_is_refused_by_every_process_within_half_a_second(api):
    """Keys are cached per process, trusted for at most 0.5 s without a look at the settings version."""
    cache = api.client.app.state.keys
    now = [1000.0]
    cache.clock = lambda: now[0]
    buyer = api.as_role(Role.PURCHASING, name="to-revoke")
    assert buyer.get("/reports/shortfall").status_code == 200
    key_id = next(k["id"] for k in api.store.read(list_keys) if k["name"] == "to-revoke")
    api.store.write(lambda uow: revoke_key(uow.conn, key_id))  # as `oms keys revoke` in another process
    now[0] += 0.2
    assert buyer.get("/reports/shortfall").status_code == 200  # still inside the cache's trust
    now[0] += 0.31
    assert_problem(buyer.get("/reports/shortfall"), 401)
    assert api.get("/reports/shortfall").status_code == 200
    now[0] += 10
    assert_problem(buyer.get("/reports/shortfall"), 401)


def test_a_new_key_works_at_once_and_a_known_key_costs_no_transaction(api):
    from tests.integration.test_statement_counts import counted

    cache = api.client.app.state.keys
    cache.clock = lambda: 1000.0  # the cache's trust never runs out in this test
    assert api.get("/reports/shortfall").status_code == 200
    buyer = api.as_role(Role.PURCHASING, name="new")
    assert buyer.get("/reports/shortfall").status_code == 200  # unknown to the cache: looked up
    with counted(api.store) as sent:
        assert buyer.get("/reports/shortfall").status_code == 200
    assert sum(s.startswith("BEGIN") for s in sent) == 1  # the report's own read, nothing for the key


# ---- roles --------------------------------------------------------------------------------------


def test_purchasing_key_cannot_place_orders_or_advance_shipments(api):
    catalogue(api)
    assert api.post("/orders", order_body("O-ADMIN")).status_code == 201
    sid = api.get("/shipments", params={"order_number": "O-ADMIN"}).json()["items"][0]["id"]
    buyer = api.as_role(Role.PURCHASING)

    body = assert_problem(buyer.post("/orders", order_body("O-1")), 403)
    assert "purchasing" in body["detail"]
    assert api.get("/orders/O-1").status_code == 404
    assert_problem(buyer.post(f"/shipments/{sid}/advance", {}), 403)
    assert api.get(f"/shipments/{sid}").json()["status"] == "pick"

    # What purchasing may do, it can.
    assert buyer.post("/purchase-orders", po_body("PO-1")).status_code == 201
    r = buyer.post("/receipts", {"grn_number": "G-1", "lines": [{"sku": "B", "qty": 1}]})
    assert r.status_code == 201, r.text
    assert buyer.get("/reports/shortfall").status_code == 200


def test_ops_key_cannot_create_or_change_purchase_orders(api):
    catalogue(api)
    ops = api.as_role(Role.OPS)
    assert_problem(ops.post("/purchase-orders", po_body("PO-1")), 403)
    assert api.get("/purchase-orders/PO-1").status_code == 404
    assert api.post("/purchase-orders", po_body("PO-2")).status_code == 201
    assert_problem(ops.patch("/purchase-orders/PO-2", {"lines": [{"sku": "A", "qty": 9}]}), 403)
    assert_problem(ops.post("/purchase-orders/PO-2/cancel"), 403)
    assert_problem(ops.post("/receipts", {"grn_number": "G-1", "lines": [{"sku": "A", "qty": 1}]}), 403)
    assert api.get("/purchase-orders/PO-2").json()["status"] == "open"
    assert api.get("/products/A").json()["stock"]["on_hand"] == 5
    assert_problem(ops.put("/settings/allocation-rule", {"keys": ["order_value"]}), 403)
    assert api.get("/settings/allocation-rule").json() == {"keys": ["priority", "placed_at"]}

    # Ops places orders and works the fulfillment board.
    assert ops.post("/orders", order_body("O-1")).status_code == 201
    sid = ops.get("/shipments", params={"order_number": "O-1"}).json()["items"][0]["id"]
    r = ops.post(f"/shipments/{sid}/advance", {})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pack"


def test_channel_key_places_orders_for_its_own_channel_only(api):
    catalogue(api)
    web = api.as_role(Role.CHANNEL, channel="web")
    r = web.post("/orders", order_body("O-WEB", channel="web"))
    assert r.status_code == 201, r.text
    assert r.json()["channel"] == "web"

    body = assert_problem(web.post("/orders", order_body("O-SHOP", channel="retail")), 403)
    assert "web" in body["detail"]
    assert api.get("/orders/O-SHOP").status_code == 404
    assert api.get("/products/A").json()["stock"]["allocated"] == 1


def test_channel_key_sees_another_channels_order_as_not_found(api):
    catalogue(api)
    assert api.post("/orders", order_body("O-SHOP", channel="retail")).status_code == 201
    assert api.post("/orders", order_body("O-WEB", channel="web")).status_code == 201
    web = api.as_role(Role.CHANNEL, channel="web")

    body = assert_problem(web.get("/orders/O-SHOP"), 404)
    assert body["type"] == "/problems/not-found"
    assert_problem(web.get("/orders/O-SHOP/events"), 404)
    assert_problem(web.post("/orders/O-SHOP/cancel", {"reason": "not mine"}), 404)
    assert api.get("/orders/O-SHOP").json()["lines"][0]["cancelled_qty"] == 0

    assert web.get("/orders/O-WEB").status_code == 200
    assert [o["order_number"] for o in web.get("/orders").json()["items"]] == ["O-WEB"]
    assert web.get("/orders", params={"channel": "retail"}).json()["items"] == []
    shipments = api.get("/shipments").json()["items"]
    shop_shipment = next(s["id"] for s in shipments if s["order_number"] == "O-SHOP")
    assert [s["order_number"] for s in web.get("/shipments").json()["items"]] == ["O-WEB"]
    assert_problem(web.get(f"/shipments/{shop_shipment}"), 404)


def test_channel_key_sees_only_its_own_channels_back_orders(api):
    catalogue(api)
    assert api.post("/orders", order_body("O-SHOP", channel="retail", sku="B")).status_code == 201
    assert api.post("/orders", order_body("O-WEB", channel="web", sku="B")).status_code == 201
    web = api.as_role(Role.CHANNEL, channel="web")
    r = web.get("/backorders")
    assert r.status_code == 200, r.text
    assert [(i["order_number"], i["queue_position"]) for i in r.json()["items"]] == [("O-WEB", 2)]
    assert web.get("/backorders", params={"channel": "retail"}).json()["items"] == []


def test_channel_key_may_ask_for_promises_for_its_channel(api):
    catalogue(api)
    web = api.as_role(Role.CHANNEL, channel="web")
    r = web.post("/promise", {"channel": "web", "lines": [{"sku": "A", "qty": 2}]})
    assert r.status_code == 200, r.text
    quote = r.json()["lines"][0]
    assert (quote["sku"], quote["qty"], quote["available_now"], quote["backorderable"]) == ("A", 2, 2, True)
    assert api.get("/products/A").json()["stock"]["allocated"] == 0
    assert_problem(web.post("/promise", {"channel": "retail", "lines": [{"sku": "A", "qty": 2}]}), 403)


def test_channel_key_cannot_buy_fulfil_or_change_settings(api):
    catalogue(api)
    assert api.post("/orders", order_body("O-WEB", channel="web")).status_code == 201
    sid = api.get("/shipments").json()["items"][0]["id"]
    web = api.as_role(Role.CHANNEL, channel="web")
    assert_problem(web.post("/purchase-orders", po_body("PO-1")), 403)
    assert_problem(web.post(f"/shipments/{sid}/advance", {}), 403)
    assert_problem(web.post("/inventory/adjustments", {"sku": "A", "qty_delta": 1, "reason": "x"}), 403)
    assert_problem(web.put("/products/A", {"name": "A", "unit_price": "0.01"}), 403)
    assert_problem(web.get("/purchase-orders"), 403)
    assert_problem(web.post("/orders/O-WEB/priority", {"priority": 5}), 403)
    assert api.get("/orders/O-WEB").json()["priority"] == 0
    assert api.get(f"/shipments/{sid}").json()["status"] == "pick"
    assert api.get("/products/A").json()["unit_price"] == "2.50"
