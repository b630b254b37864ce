"""Catalogue, settings, customers and stock adjustments through the real API (PRODUCT.md 2-4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..builders import order_body, put_customer, put_product, stock

PROBLEM = "application/problem+json"
EMPTY_STOCK = {"on_hand": 0, "allocated": 0, "available": 0, "backordered": 0, "incoming": 0}
DEFAULT_POLICY = {
    "mode": "always",
    "max_backorder_qty": None,
    "max_qty_per_line": None,
    "channels": [],
    "preorder_ends_at": None,
    "release_date": None,
    "auto_cancel_after_days": None,
}


# ---- small local helpers ------------------------------------------------------------------------


def today():
    return datetime.now(UTC).date()


def at(minutes: int) -> str:
    """A placement time `minutes` after a fixed point two hours ago (keeps FIFO order explicit)."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    return (base + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def adjust(api, sku: str, delta: int) -> Any:
    return api.post("/inventory/adjustments", {"sku": sku, "qty_delta": delta, "reason": "count"})


def place(api, number: str, lines: list[tuple[str, int]], **kw: Any) -> Any:
    """The API's answer to an order (accepted or refused)."""
    return api.post("/orders", order_body(number, lines, **kw))


def line(api, number: str, line_no: int = 1) -> dict[str, Any]:
    r = api.get(f"/orders/{number}")
    assert r.status_code == 200, r.text
    return r.json()["lines"][line_no - 1]


def pick(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The named fields of a response (later versions may add more)."""
    return {k: d[k] for k in keys}


def refusals(problem: dict[str, Any]) -> list[dict[str, Any]]:
    """A refused order's `errors`, reduced to the figures the contract names."""
    return [pick(e, "sku", "requested", "available", "backorderable", "reason") for e in problem["errors"]]


def assert_problem(r, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


# ---- products -----------------------------------------------------------------------------------


def test_put_product_creates_with_201_then_replaces_with_200_leaving_stock_alone(api):
    r = api.put("/products/TENT-1", {"name": "Tent", "unit_price": "199.00", "lead_time_days": 14})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["sku"] == "TENT-1"
    assert created["name"] == "Tent"
    assert created["unit_price"] == "199.00"
    assert created["lead_time_days"] == 14
    assert created["backorder_policy"] is None
    assert created["stock"] == EMPTY_STOCK
    assert adjust(api, "TENT-1", 5).status_code == 201

    r = api.put("/products/TENT-1", {"name": "Tent XL", "unit_price": "249.5"})
    assert r.status_code == 200, r.text
    replaced = r.json()
    assert replaced["name"] == "Tent XL"
    assert replaced["unit_price"] == "249.50"
    assert replaced["lead_time_days"] is None  # replaced, not merged
    assert replaced["stock"] == {**EMPTY_STOCK, "on_hand": 5, "available": 5}
    assert api.get("/products/TENT-1").json() == replaced


POLICIES = [
    {
        "mode": "never",
        "max_backorder_qty": None,
        "max_qty_per_line": None,
        "channels": [],
        "preorder_ends_at": None,
        "release_date": None,
        "auto_cancel_after_days": None,
    },
    {
        "mode": "always",
        "max_backorder_qty": 40,
        "max_qty_per_line": 7,
        "channels": ["web", "phone"],
        "preorder_ends_at": None,
        "release_date": None,
        "auto_cancel_after_days": 30,
    },
    {
        "mode": "when_incoming",
        "max_backorder_qty": 0,
        "max_qty_per_line": 3,
        "channels": ["b2b"],
        "preorder_ends_at": None,
        "release_date": None,
        "auto_cancel_after_days": 1,
    },
    {
        "mode": "preorder",
        "max_backorder_qty": 500,
        "max_qty_per_line": 2,
        "channels": [],
        "preorder_ends_at": "2031-03-01T09:30:00Z",
        "release_date": "2031-03-15",
        "auto_cancel_after_days": 90,
    },
]


def test_every_backorder_policy_mode_and_field_is_stored_and_read_back(api):
    for policy in POLICIES:
        sku = f"P-{policy['mode']}"
        r = api.put(f"/products/{sku}", {"name": "P", "unit_price": "1.00", "backorder_policy": policy})
        assert r.status_code == 201, r.text
        assert r.json()["backorder_policy"] == policy
        assert api.get(f"/products/{sku}").json()["backorder_policy"] == policy

        # Replacing with another policy (here: only the mode) drops the old fields.
        r = api.put(f"/products/{sku}", {"name": "P", "unit_price": "1.00", "backorder_policy": {"mode": "always"}})
        assert r.status_code == 200, r.text
        assert r.json()["backorder_policy"] == DEFAULT_POLICY

    # A preorder end given in another zone is kept as the same instant, in UTC.
    policy = {"mode": "preorder", "preorder_ends_at": "2031-03-01T10:30:00+01:00"}
    r = api.put("/products/P-zone", {"name": "P", "unit_price": "1.00", "backorder_policy": policy})
    assert r.status_code == 201, r.text
    assert r.json()["backorder_policy"]["preorder_ends_at"] == "2031-03-01T09:30:00Z"


def test_never_mode_refuses_units_beyond_stock_and_stores_nothing(api):
    put_product(api, "P-1", policy={"mode": "never"})
    put_customer(api)
    adjust(api, "P-1", 1)
    r = place(api, "O-1", [("P-1", 3)])
    body = assert_problem(r, 409)
    assert refusals(body) == [
        {"sku": "P-1", "requested": 3, "available": 1, "backorderable": 0, "reason": "backorder_not_allowed"}
    ]
    assert api.get("/orders/O-1").status_code == 404
    assert stock(api, "P-1") == {**EMPTY_STOCK, "on_hand": 1, "available": 1}
    assert place(api, "O-2", [("P-1", 1)]).status_code == 201  # what is on hand is still sold


def test_max_qty_per_line_caps_the_backordered_units_of_one_line(api):
    put_product(api, "P-1", policy={"mode": "always", "max_qty_per_line": 2})
    put_customer(api)
    adjust(api, "P-1", 1)
    body = assert_problem(place(api, "O-1", [("P-1", 4)]), 409)
    assert refusals(body) == [
        {"sku": "P-1", "requested": 4, "available": 1, "backorderable": 2, "reason": "max_qty_per_line"}
    ]
    r = place(api, "O-2", [("P-1", 3)])
    assert r.status_code == 201, r.text
    assert r.json()["lines"][0]["allocated_qty"] == 1
    assert r.json()["lines"][0]["backordered_qty"] == 2


def test_max_backorder_qty_caps_the_skus_total_pending_units(api):
    put_product(api, "P-1", policy={"mode": "always", "max_backorder_qty": 3})
    put_customer(api)
    assert place(api, "O-1", [("P-1", 2)]).status_code == 201
    body = assert_problem(place(api, "O-2", [("P-1", 2)]), 409)
    assert refusals(body) == [
        {"sku": "P-1", "requested": 2, "available": 0, "backorderable": 1, "reason": "max_backorder_qty"}
    ]
    assert place(api, "O-3", [("P-1", 1)]).status_code == 201
    assert stock(api, "P-1")["backordered"] == 3


def test_channels_limit_who_may_back_order(api):
    put_product(api, "P-1", policy={"mode": "always", "channels": ["web"]})
    put_customer(api)
    body = assert_problem(place(api, "O-1", [("P-1", 1)], channel="retail"), 409)
    assert body["errors"][0]["reason"] == "channel_not_allowed"
    assert place(api, "O-2", [("P-1", 1)], channel="web").status_code == 201


def test_when_incoming_accepts_only_units_covered_by_unpromised_incoming_supply(api):
    put_product(api, "P-1", policy={"mode": "when_incoming"})
    put_customer(api)
    body = assert_problem(place(api, "O-0", [("P-1", 1)]), 409)
    assert body["errors"][0]["reason"] == "not_covered_by_incoming"
    po = {"po_number": "PO-1", "supplier": "S", "lines": [{"sku": "P-1", "qty": 4, "expected_date": "2031-01-01"}]}
    assert api.post("/purchase-orders", po).status_code == 201
    assert place(api, "O-1", [("P-1", 3)]).status_code == 201
    body = assert_problem(place(api, "O-2", [("P-1", 2)]), 409)
    assert refusals(body) == [
        {"sku": "P-1", "requested": 2, "available": 0, "backorderable": 1, "reason": "not_covered_by_incoming"}
    ]
    assert place(api, "O-3", [("P-1", 1)]).status_code == 201


def test_preorder_is_accepted_until_preorder_ends_at(api):
    put_customer(api)
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    put_product(api, "OPEN", policy={"mode": "preorder", "preorder_ends_at": future})
    put_product(api, "SHUT", policy={"mode": "preorder", "preorder_ends_at": past})
    r = place(api, "O-1", [("OPEN", 2)])
    assert r.status_code == 201, r.text
    assert r.json()["lines"][0]["backordered_qty"] == 2
    body = assert_problem(place(api, "O-2", [("SHUT", 2)]), 409)
    assert refusals(body) == [
        {"sku": "SHUT", "requested": 2, "available": 0, "backorderable": 0, "reason": "preorder_closed"}
    ]


def test_stock_block_follows_adjustments_orders_purchase_orders_and_receipts(api):
    put_product(api, "P-1")
    put_customer(api)
    assert stock(api, "P-1") == EMPTY_STOCK

    adjust(api, "P-1", 5)
    assert stock(api, "P-1") == {"on_hand": 5, "allocated": 0, "available": 5, "backordered": 0, "incoming": 0}

    assert place(api, "O-1", [("P-1", 3)], placed_at=at(1)).status_code == 201
    assert stock(api, "P-1") == {"on_hand": 5, "allocated": 3, "available": 2, "backordered": 0, "incoming": 0}

    assert place(api, "O-2", [("P-1", 4)], placed_at=at(2)).status_code == 201
    assert stock(api, "P-1") == {"on_hand": 5, "allocated": 5, "available": 0, "backordered": 2, "incoming": 0}

    po = {"po_number": "PO-1", "supplier": "S", "lines": [{"sku": "P-1", "qty": 10, "expected_date": "2031-01-01"}]}
    assert api.post("/purchase-orders", po).status_code == 201
    assert stock(api, "P-1") == {"on_hand": 5, "allocated": 5, "available": 0, "backordered": 2, "incoming": 10}

    r = api.post("/receipts", {"grn_number": "G-1", "po_number": "PO-1", "lines": [{"sku": "P-1", "qty": 6}]})
    assert r.status_code == 201, r.text
    assert stock(api, "P-1") == {"on_hand": 11, "allocated": 7, "available": 4, "backordered": 0, "incoming": 4}

    assert adjust(api, "P-1", -4).status_code == 201
    assert stock(api, "P-1") == {"on_hand": 7, "allocated": 7, "available": 0, "backordered": 0, "incoming": 4}


def test_unknown_product_is_a_404_problem(api):
    r = api.get("/products/NOPE-1")
    body = assert_problem(r, 404)
    assert body["type"] == "/problems/not-found"
    assert "NOPE-1" in body["detail"]


def test_bad_unit_price_or_unknown_field_is_refused_with_422_and_nothing_stored(api):
    for price in ["1.234", 12.345, "-1.00", -1, "abc", ""]:
        r = api.put("/products/P-1", {"name": "P", "unit_price": price})
        body = assert_problem(r, 422)
        assert [e["field"] for e in body["errors"]] == ["unit_price"], price
    body = assert_problem(api.put("/products/P-1", {"name": "P", "unit_price": "1.00", "colour": "red"}), 422)
    assert [e["field"] for e in body["errors"]] == ["colour"]  # unknown fields are refused too
    assert api.get("/products/P-1").status_code == 404
    put_product(api, "P-1", price="12.3")
    r = api.put("/products/P-1", {"name": "P", "unit_price": "0.999"})
    assert_problem(r, 422)
    assert api.get("/products/P-1").json()["unit_price"] == "12.30"  # a refused replace changes nothing


# ---- settings -----------------------------------------------------------------------------------


def test_default_backorder_policy_starts_as_always_and_can_be_replaced(api):
    r = api.get("/settings/default-backorder-policy")
    assert r.status_code == 200
    assert r.json() == DEFAULT_POLICY
    body = assert_problem(api.put("/settings/default-backorder-policy", {"mode": "sometimes"}), 422)
    assert [e["field"] for e in body["errors"]] == ["mode"]
    assert api.get("/settings/default-backorder-policy").json() == DEFAULT_POLICY
    new = {**DEFAULT_POLICY, "mode": "when_incoming", "max_backorder_qty": 10, "channels": ["web"]}
    r = api.put("/settings/default-backorder-policy", new)
    assert r.status_code == 200, r.text
    assert r.json() == new
    assert api.get("/settings/default-backorder-policy").json() == new


def test_a_product_without_its_own_policy_follows_the_default_policy(api):
    put_product(api, "FOLLOWS")
    put_product(api, "OWN", policy={"mode": "always"})
    put_customer(api)
    assert place(api, "O-1", [("FOLLOWS", 1)]).status_code == 201  # default: always

    r = api.put("/settings/default-backorder-policy", {"mode": "never"})
    assert r.status_code == 200, r.text
    assert api.get("/products/FOLLOWS").json()["backorder_policy"] is None

    body = assert_problem(place(api, "O-2", [("FOLLOWS", 1)]), 409)
    assert refusals(body) == [
        {"sku": "FOLLOWS", "requested": 1, "available": 0, "backorderable": 0, "reason": "backorder_not_allowed"}
    ]
    assert api.get("/orders/O-2").status_code == 404
    assert place(api, "O-3", [("OWN", 1)]).status_code == 201  # its own policy wins
    assert stock(api, "FOLLOWS")["backordered"] == 1

    # Replacing OWN without a policy hands it over to the default as well.
    r = api.put("/products/OWN", {"name": "Own", "unit_price": "1.00"})
    assert r.status_code == 200, r.text
    assert r.json()["backorder_policy"] is None
    assert assert_problem(place(api, "O-4", [("OWN", 1)]), 409)["errors"][0]["reason"] == "backorder_not_allowed"


def test_allocation_rule_defaults_to_priority_then_placed_at_and_can_be_changed(api):
    r = api.get("/settings/allocation-rule")
    assert r.status_code == 200
    assert r.json() == {"keys": ["priority", "placed_at"]}
    keys = ["customer_tier", "order_value", "promised_date", "priority", "placed_at"]
    r = api.put("/settings/allocation-rule", {"keys": keys})
    assert r.status_code == 200, r.text
    assert r.json() == {"keys": keys}
    assert api.get("/settings/allocation-rule").json() == {"keys": keys}


def test_allocation_rule_with_unknown_empty_or_repeated_keys_is_refused(api):
    body = assert_problem(api.put("/settings/allocation-rule", {"keys": ["priority", "fastest"]}), 422)
    assert [e["field"] for e in body["errors"]] == ["keys.1"]
    for keys in (["fastest"], [], ["priority", "priority"]):
        assert_problem(api.put("/settings/allocation-rule", {"keys": keys}), 422)
    assert api.get("/settings/allocation-rule").json() == {"keys": ["priority", "placed_at"]}


def test_a_tier_ranked_rule_gives_found_units_to_the_higher_tier_first(api):
    put_product(api, "P-1")
    put_customer(api, "STD", "standard")
    put_customer(api, "GLD", "gold")
    assert place(api, "O-STD", [("P-1", 2)], customer_id="STD", placed_at=at(1)).status_code == 201
    assert place(api, "O-GLD", [("P-1", 2)], customer_id="GLD", placed_at=at(2)).status_code == 201
    assert api.put("/settings/allocation-rule", {"keys": ["customer_tier", "placed_at"]}).status_code == 200

    r = adjust(api, "P-1", 2)
    assert r.status_code == 201, r.text
    assert r.json()["allocations"] == [{"order_number": "O-GLD", "line_no": 1, "sku": "P-1", "qty": 2}]
    assert line(api, "O-STD")["backordered_qty"] == 2


# ---- customers ----------------------------------------------------------------------------------


def test_customer_is_created_with_each_tier_then_updated(api):
    for tier in ["standard", "silver", "gold", "platinum"]:
        cid = f"CUST-{tier}"
        r = api.put(f"/customers/{cid}", {"name": "Ann", "email": "ann@example.com", "tier": tier})
        assert r.status_code == 201, r.text
        assert pick(r.json(), "customer_id", "name", "email", "tier") == {
            "customer_id": cid,
            "name": "Ann",
            "email": "ann@example.com",
            "tier": tier,
        }
        assert api.get(f"/customers/{cid}").json()["tier"] == tier
    r = api.put("/customers/CUST-gold", {"name": "Ann B", "email": "annb@example.com", "tier": "silver"})
    assert r.status_code == 200, r.text
    assert pick(r.json(), "customer_id", "name", "email", "tier") == {
        "customer_id": "CUST-gold",
        "name": "Ann B",
        "email": "annb@example.com",
        "tier": "silver",
    }
    assert api.get("/customers/CUST-gold").json()["tier"] == "silver"
    r = api.put("/customers/CUST-plain", {"name": "Bo", "email": "bo@example.com"})
    assert r.status_code == 201
    assert r.json()["tier"] == "standard"  # the default tier


def test_bad_customer_tier_is_refused_naming_the_field(api):
    body = assert_problem(api.put("/customers/CUST-1", {"name": "Ann", "email": "a@b", "tier": "diamond"}), 422)
    assert [e["field"] for e in body["errors"]] == ["tier"]
    assert api.get("/customers/CUST-1").status_code == 404


# ---- stock adjustments --------------------------------------------------------------------------


def test_adjustment_up_gives_found_units_at_once_to_waiting_back_orders_in_queue_order(api):
    put_product(api, "P-1")
    put_customer(api)
    assert place(api, "O-1", [("P-1", 3)], placed_at=at(1)).status_code == 201
    assert place(api, "O-2", [("P-1", 2)], placed_at=at(2)).status_code == 201

    r = adjust(api, "P-1", 4)
    assert r.status_code == 201, r.text
    assert pick(r.json(), "sku", "qty_delta", "on_hand", "allocations") == {
        "sku": "P-1",
        "qty_delta": 4,
        "on_hand": 4,
        "allocations": [
            {"order_number": "O-1", "line_no": 1, "sku": "P-1", "qty": 3},
            {"order_number": "O-2", "line_no": 1, "sku": "P-1", "qty": 1},
        ],
    }
    assert stock(api, "P-1") == {"on_hand": 4, "allocated": 4, "available": 0, "backordered": 1, "incoming": 0}
    first, second = line(api, "O-1"), line(api, "O-2")
    assert (first["allocated_qty"], first["backordered_qty"]) == (3, 0)
    assert (second["allocated_qty"], second["backordered_qty"]) == (1, 1)
    assert api.get("/orders/O-1").json()["status"] == "in_fulfillment"
    assert api.get("/orders/O-2").json()["status"] == "backordered"


def test_adjustments_without_a_queue_move_on_hand_up_and_down(api):
    put_product(api, "P-1")
    r = adjust(api, "P-1", 5)
    assert r.status_code == 201
    assert pick(r.json(), "sku", "qty_delta", "on_hand", "allocations") == {
        "sku": "P-1",
        "qty_delta": 5,
        "on_hand": 5,
        "allocations": [],
    }
    assert stock(api, "P-1") == {**EMPTY_STOCK, "on_hand": 5, "available": 5}
    r = adjust(api, "P-1", -2)
    assert r.status_code == 201, r.text
    assert r.json()["on_hand"] == 3
    assert stock(api, "P-1") == {**EMPTY_STOCK, "on_hand": 3, "available": 3}
    assert_problem(adjust(api, "P-1", -4), 409)  # never below zero (allocated)
    assert_problem(adjust(api, "NOPE", 1), 404)
    assert stock(api, "P-1")["on_hand"] == 3


def test_adjustment_below_allocated_is_a_409_and_changes_nothing(api):
    put_product(api, "P-1")
    put_customer(api)
    adjust(api, "P-1", 5)
    assert place(api, "O-1", [("P-1", 4)]).status_code == 201
    before = stock(api, "P-1")
    assert before == {"on_hand": 5, "allocated": 4, "available": 1, "backordered": 0, "incoming": 0}

    body = assert_problem(adjust(api, "P-1", -2), 409)
    assert body["errors"][0]["min_qty_delta"] == -1
    assert stock(api, "P-1") == before
    assert line(api, "O-1")["allocated_qty"] == 4

    assert adjust(api, "P-1", -1).status_code == 201  # exactly down to allocated is fine
    assert stock(api, "P-1") == {"on_hand": 4, "allocated": 4, "available": 0, "backordered": 0, "incoming": 0}
