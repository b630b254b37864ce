"""Shipments: release on allocation, the pick-pack-dispatch flow and its effect on stock (rules 6, 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .. import builders
from ..builders import put_customer, put_product, shipments, stock

PROBLEM = "application/problem+json"
CARRIER = {"carrier": "DHL", "tracking_number": "JD0001"}


# ---- small local helpers ------------------------------------------------------------------------


def day(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def at(minutes: int) -> str:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    return (base + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def setup(api, stock_by_sku: dict[str, int], policy: dict | None = None) -> None:
    """Products with stock on hand, and customer C1."""
    for sku, qty in stock_by_sku.items():
        put_product(api, sku, on_hand=qty, price="5.00", policy=policy)
    put_customer(api, "C1")


def place(api, number: str, lines: list[tuple[str, int]], channel: str = "web", minute: int = 1, **extra) -> Any:
    return builders.place(api, number, lines, channel=channel, placed_at=at(minute), **extra)


def only_shipment(api, order_number: str) -> dict[str, Any]:
    found = shipments(api, order_number=order_number)
    assert len(found) == 1, found
    return found[0]


def advance(api, shipment_id: int | str, body: dict[str, Any] | None = None) -> Any:
    return api.post(f"/shipments/{shipment_id}/advance", body or {})


def to_awaiting_shipment(api, shipment_id: int) -> None:
    for expected in ("pack", "awaiting_shipment"):
        r = advance(api, shipment_id)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == expected


def shape(s: dict[str, Any]) -> dict[str, Any]:
    """The shipment fields API.md names."""
    return {k: s[k] for k in ("id", "channel", "order_number", "status", "lines", "carrier", "tracking_number")}


def assert_problem(r, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status
    return body


# ---- release into shipments ---------------------------------------------------------------------


def test_allocated_units_of_a_partial_order_are_released_at_once_into_a_pick_shipment(api):
    setup(api, {"A": 3, "B": 1})
    place(api, "O-1", [("A", 5), ("B", 1)])
    s = only_shipment(api, "O-1")
    assert shape(s) == {
        "id": s["id"],
        "channel": "web",
        "order_number": "O-1",
        "status": "pick",
        "lines": [{"line_no": 1, "sku": "A", "qty": 3}, {"line_no": 2, "sku": "B", "qty": 1}],
        "carrier": None,
        "tracking_number": None,
    }
    r = api.get(f"/shipments/{s['id']}")
    assert r.status_code == 200
    assert shape(r.json()) == shape(s)

    # The two back-ordered units of line 1 arrive: a second shipment for just them.
    assert api.post("/receipts", {"grn_number": "G-1", "lines": [{"sku": "A", "qty": 2}]}).status_code == 201
    found = shipments(api, order_number="O-1")
    assert [(x["status"], x["lines"]) for x in found] == [
        ("pick", [{"line_no": 1, "sku": "A", "qty": 3}, {"line_no": 2, "sku": "B", "qty": 1}]),
        ("pick", [{"line_no": 1, "sku": "A", "qty": 2}]),
    ]


def test_a_fully_backordered_order_has_no_shipment(api):
    setup(api, {"A": 0})
    place(api, "O-1", [("A", 2)])
    assert shipments(api, order_number="O-1") == []


def test_a_ship_complete_order_is_released_only_once_every_line_is_allocated(api):
    setup(api, {"A": 3, "B": 0})
    place(api, "O-1", [("A", 2), ("B", 1)], ship_policy="complete")
    assert shipments(api, order_number="O-1") == []
    assert stock(api, "A")["allocated"] == 2  # reserved meanwhile
    assert api.post("/receipts", {"grn_number": "G-1", "lines": [{"sku": "B", "qty": 1}]}).status_code == 201
    assert only_shipment(api, "O-1")["lines"] == [
        {"line_no": 1, "sku": "A", "qty": 2},
        {"line_no": 2, "sku": "B", "qty": 1},
    ]


def test_shipments_are_filtered_by_status_channel_and_order_number(api):
    setup(api, {"A": 10})
    place(api, "O-WEB", [("A", 1)], channel="web", minute=1)
    place(api, "O-SHOP", [("A", 2)], channel="retail", minute=2)
    place(api, "O-WEB2", [("A", 3)], channel="web", minute=3)
    web, shop, web2 = (only_shipment(api, n)["id"] for n in ("O-WEB", "O-SHOP", "O-WEB2"))
    assert advance(api, shop).status_code == 200  # now in pack

    def ids(**params: str) -> list[int]:
        return [s["id"] for s in shipments(api, **params)]

    assert ids() == [web, shop, web2]
    assert ids(status="pick") == [web, web2]
    assert ids(status="pack") == [shop]
    assert ids(status="dispatched") == []
    assert ids(channel="web") == [web, web2]
    assert ids(channel="retail") == [shop]
    assert ids(order_number="O-WEB2") == [web2]
    assert ids(channel="retail", status="pick") == []
    assert_problem(api.get("/shipments", params={"status": "lost"}), 422)


# ---- advancing ----------------------------------------------------------------------------------


def test_a_shipment_advances_one_step_at_a_time_to_dispatched(api):
    setup(api, {"A": 2})
    place(api, "O-1", [("A", 2)])
    sid = only_shipment(api, "O-1")["id"]
    seen = []
    for body in ({}, {}, CARRIER):
        r = advance(api, sid, body)
        assert r.status_code == 200, r.text
        seen.append(r.json()["status"])
    assert seen == ["pack", "awaiting_shipment", "dispatched"]
    s = api.get(f"/shipments/{sid}").json()
    assert (s["status"], s["carrier"], s["tracking_number"]) == ("dispatched", "DHL", "JD0001")


def test_advancing_without_any_body_moves_pick_to_pack(api):
    # API.md: `POST /shipments/{id}/advance {carrier?, tracking_number?}`: both fields optional,
    # so a bare POST is a valid "next step" for every step but dispatch.
    setup(api, {"A": 1})
    place(api, "O-1", [("A", 1)])
    sid = only_shipment(api, "O-1")["id"]
    r = api.client.post(f"/api/v1/shipments/{sid}/advance", headers=api.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pack"


def test_dispatch_without_carrier_or_tracking_is_a_422_naming_them_and_changes_nothing(api):
    setup(api, {"A": 2})
    place(api, "O-1", [("A", 2)])
    sid = only_shipment(api, "O-1")["id"]
    to_awaiting_shipment(api, sid)

    body = assert_problem(advance(api, sid, {}), 422)
    assert [e["field"] for e in body["errors"]] == ["carrier", "tracking_number"]
    body = assert_problem(advance(api, sid, {"carrier": "DHL"}), 422)
    assert [e["field"] for e in body["errors"]] == ["tracking_number"]
    body = assert_problem(advance(api, sid, {"tracking_number": "JD0001"}), 422)
    assert [e["field"] for e in body["errors"]] == ["carrier"]

    s = api.get(f"/shipments/{sid}").json()
    assert (s["status"], s["carrier"], s["tracking_number"]) == ("awaiting_shipment", None, None)
    assert stock(api, "A") == {"on_hand": 2, "allocated": 2, "available": 0, "backordered": 0, "incoming": 0}
    line = api.get("/orders/O-1").json()["lines"][0]
    assert (line["allocated_qty"], line["shipped_qty"]) == (2, 0)


def test_a_dispatched_shipment_cannot_advance(api):
    setup(api, {"A": 1})
    place(api, "O-1", [("A", 1)])
    sid = only_shipment(api, "O-1")["id"]
    to_awaiting_shipment(api, sid)
    assert advance(api, sid, CARRIER).status_code == 200
    body = assert_problem(advance(api, sid, {"carrier": "UPS", "tracking_number": "1Z"}), 409)
    assert body["type"] == "/problems/illegal-transition"
    s = api.get(f"/shipments/{sid}").json()
    assert (s["status"], s["carrier"], s["tracking_number"]) == ("dispatched", "DHL", "JD0001")
    assert stock(api, "A")["on_hand"] == 0


def test_a_cancelled_shipment_cannot_advance(api):
    setup(api, {"A": 2})
    place(api, "O-1", [("A", 2)])
    sid = only_shipment(api, "O-1")["id"]
    r = api.post("/orders/O-1/cancel", {"reason": "customer changed mind"})
    assert r.status_code == 200, r.text
    assert api.get(f"/shipments/{sid}").json()["status"] == "cancelled"
    assert_problem(advance(api, sid), 409)
    assert stock(api, "A") == {"on_hand": 2, "allocated": 0, "available": 2, "backordered": 0, "incoming": 0}


def test_dispatch_takes_units_off_on_hand_and_allocated_and_marks_lines_shipped(api):
    setup(api, {"A": 5, "B": 2})
    place(api, "O-1", [("A", 3), ("B", 2)])
    assert api.get("/orders/O-1").json()["status"] == "in_fulfillment"
    sid = only_shipment(api, "O-1")["id"]
    to_awaiting_shipment(api, sid)
    assert stock(api, "A") == {"on_hand": 5, "allocated": 3, "available": 2, "backordered": 0, "incoming": 0}

    assert advance(api, sid, CARRIER).status_code == 200
    assert stock(api, "A") == {"on_hand": 2, "allocated": 0, "available": 2, "backordered": 0, "incoming": 0}
    assert stock(api, "B") == {"on_hand": 0, "allocated": 0, "available": 0, "backordered": 0, "incoming": 0}
    order = api.get("/orders/O-1").json()
    assert order["status"] == "dispatched"
    assert [(x["shipped_qty"], x["allocated_qty"], x["backordered_qty"]) for x in order["lines"]] == [
        (3, 0, 0),
        (2, 0, 0),
    ]


def test_an_order_is_dispatched_only_once_its_back_ordered_rest_has_shipped_too(api):
    setup(api, {"A": 2})
    place(api, "O-1", [("A", 5)])
    first = only_shipment(api, "O-1")["id"]
    to_awaiting_shipment(api, first)
    assert advance(api, first, CARRIER).status_code == 200
    order = api.get("/orders/O-1").json()
    assert order["status"] == "backordered"
    assert (order["lines"][0]["shipped_qty"], order["lines"][0]["backordered_qty"]) == (2, 3)

    assert api.post("/receipts", {"grn_number": "G-1", "lines": [{"sku": "A", "qty": 3}]}).status_code == 201
    assert api.get("/orders/O-1").json()["status"] == "in_fulfillment"
    second = shipments(api, order_number="O-1", status="pick")
    assert [s["lines"] for s in second] == [[{"line_no": 1, "sku": "A", "qty": 3}]]
    to_awaiting_shipment(api, second[0]["id"])
    assert advance(api, second[0]["id"], {"carrier": "UPS", "tracking_number": "1Z9"}).status_code == 200
    order = api.get("/orders/O-1").json()
    assert order["status"] == "dispatched"
    assert (order["lines"][0]["shipped_qty"], order["lines"][0]["allocated_qty"]) == (5, 0)
    assert stock(api, "A") == {"on_hand": 0, "allocated": 0, "available": 0, "backordered": 0, "incoming": 0}


def test_unknown_or_non_numeric_shipment_id_is_404(api):
    setup(api, {"A": 1})
    for sid in ("999999", "abc", "0", "-1", "99999999999999999999"):
        body = assert_problem(api.get(f"/shipments/{sid}"), 404)
        assert body["type"] == "/problems/not-found"
        assert_problem(advance(api, sid, CARRIER), 404)


# ---- pre-orders ---------------------------------------------------------------------------------


def test_preorder_units_are_not_released_before_the_release_date(api):
    setup(api, {"PRE": 3}, policy={"mode": "preorder", "release_date": day(10)})
    order = place(api, "O-1", [("PRE", 2)], minute=1)
    assert (order["lines"][0]["allocated_qty"], order["lines"][0]["backordered_qty"]) == (2, 0)
    place(api, "O-2", [("PRE", 4)], minute=2)  # 1 allocated now, 3 wait
    r = api.post("/receipts", {"grn_number": "G-1", "lines": [{"sku": "PRE", "qty": 3}]})
    assert r.status_code == 201, r.text
    assert r.json()["allocations"] == [{"order_number": "O-2", "line_no": 1, "sku": "PRE", "qty": 3}]

    assert shipments(api) == []
    assert stock(api, "PRE") == {"on_hand": 6, "allocated": 6, "available": 0, "backordered": 0, "incoming": 0}
    assert api.get("/orders/O-2").json()["lines"][0]["allocated_qty"] == 4
    assert api.get("/orders/O-2").json()["status"] == "in_fulfillment"


def test_preorder_units_are_released_once_the_release_date_has_come(api):
    setup(api, {"PRE": 3}, policy={"mode": "preorder", "release_date": day(0)})
    place(api, "O-1", [("PRE", 2)])
    assert only_shipment(api, "O-1")["lines"] == [{"line_no": 1, "sku": "PRE", "qty": 2}]


def test_held_preorder_units_are_released_by_release_due_once_the_date_has_come(api):
    setup(api, {"PRE": 3}, policy={"mode": "preorder", "release_date": day(10)})
    place(api, "O-1", [("PRE", 2)])
    assert shipments(api) == []
    r = api.post("/shipments/release-due")
    assert r.status_code == 200, r.text
    assert shipments(api) == []  # still ten days to go

    body = {"name": "PRE", "unit_price": "5.00", "backorder_policy": {"mode": "preorder", "release_date": day(0)}}
    assert api.put("/products/PRE", body).status_code == 200
    r = api.post("/shipments/release-due")
    assert r.status_code == 200, r.text
    assert only_shipment(api, "O-1")["lines"] == [{"line_no": 1, "sku": "PRE", "qty": 2}]
