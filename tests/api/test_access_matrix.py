"""Every endpoint x every role: the exact status, and a refused call changes nothing.

Roles: admin, ops, purchasing, a channel key acting on its own channel ("own") and the same
channel key reaching for another channel's order, shipment or channel field ("other").
Each endpoint gets a fresh world where every role has its own order, shipment and PO, so an
allowed call by one role cannot change what the next role finds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, text

from oms.domain.access import ALLOWED, Action, Role

ROLES = ("admin", "ops", "purchasing", "own", "other")
# Tables a refused call may still touch: a key's last-used stamp, and idempotency bookkeeping.
BOOKKEEPING = {"api_keys", "idempotency_keys", "alembic_version"}


def day(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


@dataclass
class World:
    api: Any
    callers: dict[str, Any]
    shipments: dict[str, int]

    def order(self, role: str) -> str:
        return f"O-{role}"

    def po(self, role: str) -> str:
        return f"PO-{role}"

    def channel(self, role: str) -> str:
        return "retail" if role == "other" else "web"


def build_world(api: Any) -> World:
    admin = api
    for sku, qty in (("A", 5), ("B", 0)):
        assert admin.put(f"/products/{sku}", {"name": sku, "unit_price": "2.50"}).status_code == 201
        if qty:
            assert (
                admin.post("/inventory/adjustments", {"sku": sku, "qty_delta": qty, "reason": "count"}).status_code
                == 201
            )
    assert admin.put("/customers/C1", {"name": "C1", "email": "c1@example.com"}).status_code == 201
    world = World(api, {}, {})
    for role in ROLES:
        body = {
            "order_number": world.order(role),
            "channel": world.channel(role),
            "customer_id": "C1",
            "lines": [{"sku": "A", "qty": 1}],
        }
        assert admin.post("/orders", body).status_code == 201
        po = {
            "po_number": world.po(role),
            "supplier": "Acme",
            "lines": [{"sku": "B", "qty": 4, "expected_date": day(9)}],
        }
        assert admin.post("/purchase-orders", po).status_code == 201
    for item in admin.get("/shipments", params={"limit": 100}).json()["items"]:
        world.shipments[item["order_number"]] = item["id"]
    assert sorted(world.shipments) == sorted(world.order(r) for r in ROLES)
    web = api.as_role(Role.CHANNEL, channel="web", name="web-shop")
    world.callers = {
        "admin": admin,
        "ops": api.as_role(Role.OPS, name="ops-desk"),
        "purchasing": api.as_role(Role.PURCHASING, name="buyer"),
        "own": web,
        "other": web,
    }
    return world


Request = Callable[[World, str], tuple[str, str, Any]]


@dataclass(frozen=True)
class Case:
    method: str
    route: str  # as in the OpenAPI, under /api/v1
    request: Request
    expected: tuple[int, int, int, int, int]  # admin, ops, purchasing, own, other


def _order_body(w: World, role: str) -> dict[str, Any]:
    return {
        "order_number": f"N-{role}",
        "channel": w.channel(role),
        "customer_id": "C1",
        "lines": [{"sku": "B", "qty": 1}],
    }


CASES = [
    # catalogue and settings
    Case("GET", "/products/{sku}", lambda w, r: ("GET", "/products/A", None), (200, 200, 200, 200, 200)),
    Case(
        "PUT",
        "/products/{sku}",
        lambda w, r: ("PUT", "/products/A", {"name": "A", "unit_price": "2.50"}),
        (200, 403, 200, 403, 403),
    ),
    Case("GET", "/products", lambda w, r: ("GET", "/products", None), (200, 200, 200, 200, 200)),
    Case(
        "PUT",
        "/customers/{customer_id}",
        lambda w, r: ("PUT", "/customers/C1", {"name": "C1", "email": "c1@example.com"}),
        (200, 403, 200, 403, 403),
    ),
    Case("GET", "/customers/{customer_id}", lambda w, r: ("GET", "/customers/C1", None), (200, 200, 200, 403, 403)),
    Case(
        "GET",
        "/settings/default-backorder-policy",
        lambda w, r: ("GET", "/settings/default-backorder-policy", None),
        (200, 200, 200, 403, 403),
    ),
    Case(
        "PUT",
        "/settings/default-backorder-policy",
        lambda w, r: ("PUT", "/settings/default-backorder-policy", {"mode": "always"}),
        (200, 403, 403, 403, 403),
    ),
    Case(
        "GET",
        "/settings/allocation-rule",
        lambda w, r: ("GET", "/settings/allocation-rule", None),
        (200, 200, 200, 403, 403),
    ),
    Case(
        "PUT",
        "/settings/allocation-rule",
        lambda w, r: ("PUT", "/settings/allocation-rule", {"keys": ["priority", "placed_at"]}),
        (200, 403, 403, 403, 403),
    ),
    Case(
        "POST",
        "/inventory/adjustments",
        lambda w, r: ("POST", "/inventory/adjustments", {"sku": "A", "qty_delta": 1, "reason": "count"}),
        (201, 201, 403, 403, 403),
    ),
    # orders
    Case("POST", "/orders", lambda w, r: ("POST", "/orders", _order_body(w, r)), (201, 201, 403, 201, 403)),
    Case("GET", "/orders", lambda w, r: ("GET", f"/orders?channel={w.channel(r)}", None), (200, 200, 200, 200, 200)),
    Case(
        "GET", "/orders/{order_number}", lambda w, r: ("GET", f"/orders/{w.order(r)}", None), (200, 200, 200, 200, 404)
    ),
    Case(
        "POST",
        "/orders/{order_number}/cancel",
        lambda w, r: ("POST", f"/orders/{w.order(r)}/cancel", {"reason": "customer asked"}),
        (200, 200, 403, 200, 404),
    ),
    Case(
        "POST",
        "/orders/{order_number}/priority",
        lambda w, r: ("POST", f"/orders/{w.order(r)}/priority", {"priority": 5}),
        (200, 200, 403, 403, 403),
    ),
    Case(
        "GET",
        "/orders/{order_number}/events",
        lambda w, r: ("GET", f"/orders/{w.order(r)}/events", None),
        (200, 200, 200, 200, 404),
    ),
    Case(
        "GET",
        "/backorders",
        lambda w, r: ("GET", f"/backorders?channel={w.channel(r)}", None),
        (200, 200, 200, 200, 200),
    ),
    # replenishment
    Case(
        "POST",
        "/purchase-orders",
        lambda w, r: (
            "POST",
            "/purchase-orders",
            {"po_number": f"PN-{r}", "supplier": "Acme", "lines": [{"sku": "B", "qty": 2, "expected_date": day(3)}]},
        ),
        (201, 403, 201, 403, 403),
    ),
    Case("GET", "/purchase-orders", lambda w, r: ("GET", "/purchase-orders", None), (200, 200, 200, 403, 403)),
    Case(
        "GET",
        "/purchase-orders/{po_number}",
        lambda w, r: ("GET", f"/purchase-orders/{w.po(r)}", None),
        (200, 200, 200, 403, 403),
    ),
    Case(
        "PATCH",
        "/purchase-orders/{po_number}",
        lambda w, r: ("PATCH", f"/purchase-orders/{w.po(r)}", {"lines": [{"sku": "B", "expected_date": day(12)}]}),
        (200, 403, 200, 403, 403),
    ),
    Case(
        "POST",
        "/purchase-orders/{po_number}/cancel",
        lambda w, r: ("POST", f"/purchase-orders/{w.po(r)}/cancel", None),
        (200, 403, 200, 403, 403),
    ),
    Case(
        "POST",
        "/receipts",
        lambda w, r: ("POST", "/receipts", {"grn_number": f"G-{r}", "lines": [{"sku": "B", "qty": 1}]}),
        (201, 403, 201, 403, 403),
    ),
    Case(
        "POST",
        "/promise",
        lambda w, r: ("POST", "/promise", {"channel": w.channel(r), "lines": [{"sku": "A", "qty": 1}]}),
        (200, 200, 200, 200, 403),
    ),
    Case("GET", "/reports/shortfall", lambda w, r: ("GET", "/reports/shortfall", None), (200, 200, 200, 403, 403)),
    # fulfillment
    Case(
        "GET", "/shipments", lambda w, r: ("GET", f"/shipments?channel={w.channel(r)}", None), (200, 200, 200, 200, 200)
    ),
    Case(
        "GET",
        "/shipments/{shipment_id}",
        lambda w, r: ("GET", f"/shipments/{w.shipments[w.order(r)]}", None),
        (200, 200, 200, 200, 404),
    ),
    Case(
        "POST",
        "/shipments/{shipment_id}/advance",
        lambda w, r: ("POST", f"/shipments/{w.shipments[w.order(r)]}/advance", {}),
        (200, 200, 403, 403, 403),
    ),
    Case(
        "POST",
        "/shipments/release-due",
        lambda w, r: ("POST", "/shipments/release-due", None),
        (200, 200, 403, 403, 403),
    ),
]

# Endpoints added alongside this matrix by other work (reports, notifications, webhooks, previews):
# the action each requires. A role without it must get exactly 403 and change nothing; a role with
# it must get past authorization without a server error (their own tests pin the exact answers).
FOREIGN: dict[tuple[str, str], tuple[Action, Callable[[World, str], tuple[str, str, Any]]]] = {
    ("POST", "/settings/allocation-rule/preview"): (
        Action.SETTINGS,
        lambda w, r: ("POST", "/settings/allocation-rule/preview", {"keys": ["priority", "placed_at"]}),
    ),
    ("POST", "/receipts/preview"): (
        Action.PURCHASE,
        lambda w, r: ("POST", "/receipts/preview", {"grn_number": "G-P", "lines": [{"sku": "B", "qty": 1}]}),
    ),
    ("GET", "/notifications"): (Action.READ, lambda w, r: ("GET", "/notifications", None)),
    ("POST", "/notifications/{message_id}/retry"): (
        Action.SETTINGS,
        lambda w, r: ("POST", "/notifications/1/retry", None),
    ),
    ("GET", "/webhooks"): (Action.SETTINGS, lambda w, r: ("GET", "/webhooks", None)),
    ("POST", "/webhooks"): (Action.SETTINGS, lambda w, r: ("POST", "/webhooks", {})),
    ("GET", "/webhooks/{sub_id}"): (Action.SETTINGS, lambda w, r: ("GET", "/webhooks/1", None)),
    ("DELETE", "/webhooks/{sub_id}"): (Action.SETTINGS, lambda w, r: ("DELETE", "/webhooks/1", None)),
    ("GET", "/webhooks/{sub_id}/deliveries"): (Action.SETTINGS, lambda w, r: ("GET", "/webhooks/1/deliveries", None)),
    ("GET", "/orders/{order_number}/lines/{line_no}/explain"): (
        Action.READ,
        lambda w, r: ("GET", f"/orders/{w.order(r)}/lines/1/explain", None),
    ),
    **{
        ("GET", f"/reports/{name}"): (Action.READ, lambda w, r, name=name: ("GET", f"/reports/{name}", None))
        for name in (
            "summary",
            "backorders",
            "lead-times",
            "cancellations",
            "fill-rate",
            "promise-accuracy",
            "supplier-on-time",
        )
    },
}
ROLE_OF = {
    "admin": Role.ADMIN,
    "ops": Role.OPS,
    "purchasing": Role.PURCHASING,
    "own": Role.CHANNEL,
    "other": Role.CHANNEL,
}


def snapshot(store: Any) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every business table, as strings, in a stable order."""
    out: dict[str, list[tuple[str, ...]]] = {}
    with store.engine.connect() as conn:
        for name in sorted(set(inspect(conn).get_table_names()) - BOOKKEEPING):
            rows = conn.execute(text(f'SELECT * FROM "{name}"')).all()
            out[name] = sorted(tuple(str(v) for v in row) for row in rows)
    return out


def call(caller: Any, method: str, path: str, body: Any) -> Any:
    return caller.client.request(method, "/api/v1" + path, json=body, headers=caller.headers)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.method} {c.route}" for c in CASES])
def test_each_role_gets_exactly_its_status_and_a_refusal_changes_nothing(api, case: Case):
    world = build_world(api)
    got = {}
    # Refused roles first, on the untouched world; then the allowed ones.
    order = sorted(range(len(ROLES)), key=lambda i: case.expected[i] < 400)
    for i in order:
        role = ROLES[i]
        method, path, body = case.request(world, role)
        before = snapshot(api.store) if case.expected[i] >= 400 else None
        r = call(world.callers[role], method, path, body)
        got[role] = r.status_code
        if before is not None:
            assert r.headers["content-type"] == "application/problem+json", (role, r.text)
            assert snapshot(api.store) == before, f"{role}'s refused {method} {path} changed the store"
    assert tuple(got[r] for r in ROLES) == case.expected, got


def test_the_matrix_covers_every_api_endpoint(api):
    served = set()
    for path, operations in api.client.app.openapi()["paths"].items():
        if path.startswith("/api/v1/"):
            served |= {(m.upper(), path.removeprefix("/api/v1")) for m in operations}
    covered = {(c.method, c.route) for c in CASES} | set(FOREIGN)
    assert served - covered == set()
    assert covered - served == set()


@pytest.mark.parametrize("endpoint", sorted(FOREIGN), ids=[f"{m} {p}" for m, p in sorted(FOREIGN)])
def test_each_role_without_the_right_gets_403_on_the_other_endpoints(api, endpoint):
    served = {
        (m.upper(), p.removeprefix("/api/v1")) for p, ops in api.client.app.openapi()["paths"].items() for m in ops
    }
    if endpoint not in served:
        pytest.skip(f"{endpoint} is not served by this build")
    action, request = FOREIGN[endpoint]
    world = build_world(api)
    got = {}
    for role in sorted(ROLES, key=lambda r: action in ALLOWED[ROLE_OF[r]]):  # refusals first
        method, path, body = request(world, role)
        allowed = action in ALLOWED[ROLE_OF[role]]
        before = None if allowed else snapshot(api.store)
        r = call(world.callers[role], method, path, body)
        got[role] = r.status_code
        if allowed:
            assert r.status_code != 401 and r.status_code < 500, (role, r.text)
            if ROLE_OF[role] is not Role.CHANNEL:
                assert r.status_code != 403, (role, r.text)
        else:
            assert r.status_code == 403, (role, r.text)
            assert snapshot(api.store) == before, f"{role}'s refused {method} {path} changed the store"
    assert set(got) == set(ROLES)


def test_the_role_map_is_as_documented():
    assert ALLOWED[Role.ADMIN] == frozenset(Action)
    assert ALLOWED[Role.OPS] == {
        Action.READ,
        Action.PLACE_ORDER,
        Action.CHANGE_ORDER,
        Action.FULFIL,
        Action.ADJUST_STOCK,
        Action.PROMISE,
    }
    assert ALLOWED[Role.PURCHASING] == {Action.READ, Action.PURCHASE, Action.CATALOGUE, Action.PROMISE}
    assert ALLOWED[Role.CHANNEL] == {Action.READ, Action.PLACE_ORDER, Action.CHANGE_ORDER, Action.PROMISE}


def test_a_channel_key_lists_only_its_own_channel_everywhere(api):
    world = build_world(api)
    web = world.callers["own"]
    assert {o["channel"] for o in web.get("/orders").json()["items"]} == {"web"}
    assert web.get("/orders", params={"channel": "retail"}).json()["items"] == []
    assert {s["channel"] for s in web.get("/shipments").json()["items"]} == {"web"}
    assert web.get("/shipments", params={"channel": "retail"}).json()["items"] == []
    assert web.get("/orders/O-other").json()["type"] == "/problems/not-found"
    # The refusal names no detail of the other channel's order.
    assert "retail" not in web.get("/orders/O-other").text


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "dispatched"), ("allocated_qty", 5), ("backordered_qty", 0), ("order_value", "0.00"), ("id", 1)],
)
def test_fields_a_caller_may_not_set_are_refused_not_ignored(api, field, value):
    world = build_world(api)
    before = snapshot(api.store)
    body = _order_body(world, "admin")
    if field in ("allocated_qty", "backordered_qty"):
        body["lines"][0][field] = value
        where = f"lines.0.{field}"
    else:
        body[field] = value
        where = field
    r = api.post("/orders", body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert {"field": where, "reason": "Extra inputs are not permitted"} in [
        {k: e[k] for k in ("field", "reason")} for e in r.json()["errors"]
    ]
    assert snapshot(api.store) == before


def test_a_channel_key_cannot_place_an_order_for_another_channel(api):
    world = build_world(api)
    before = snapshot(api.store)
    r = world.callers["own"].post("/orders", _order_body(world, "other"))
    assert r.status_code == 403
    assert re.search(r"'web' only", r.json()["detail"])
    assert snapshot(api.store) == before
    assert api.get("/orders/N-other").status_code == 404
