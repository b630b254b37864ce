"""Placing orders through the API: split into allocated and back-ordered units, refusals, idempotency,
ship-complete, manual priority, the order listing and the order's event history (PRODUCT.md rules 1-6, 10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..builders import order_body, place, put_customer, put_product, receive, shipments, stock

PROBLEM = "application/problem+json"
ZERO_STOCK = {"on_hand": 0, "allocated": 0, "available": 0, "backordered": 0, "incoming": 0}


# ---- local reading helpers ----------------------------------------------------------------------


def line_quantities(order: dict[str, Any]) -> list[tuple[int, str, int, int, int, int, int]]:
    return [
        (
            x["line_no"],
            x["sku"],
            x["qty"],
            x["allocated_qty"],
            x["backordered_qty"],
            x["shipped_qty"],
            x["cancelled_qty"],
        )
        for x in order["lines"]
    ]


def waiting_order_numbers(api: Any, sku: str) -> list[tuple[str, int]]:
    r = api.get("/backorders", params={"sku": sku, "sort": "queue"})
    assert r.status_code == 200, r.text
    return [(x["order_number"], x["queue_position"]) for x in r.json()["items"]]


# ---- placement ----------------------------------------------------------------------------------


def test_each_line_takes_what_is_available_and_the_rest_is_backordered(api):
    put_customer(api, "C1")
    put_product(api, "A", on_hand=5, price="12.50")
    put_product(api, "B", on_hand=10, price="3.00")
    put_product(api, "C", price="7.25", lead_time_days=7)
    r = api.post(
        "/purchase-orders",
        {"po_number": "PO-A", "supplier": "Acme", "lines": [{"sku": "A", "qty": 10, "expected_date": "2027-01-15"}]},
    )
    assert r.status_code == 201, r.text

    r = api.post(
        "/orders",
        order_body("O-1", [("A", 8), ("B", 2), ("C", 4)], placed_at="2026-11-20T10:30:00Z"),
    )

    assert r.status_code == 201, r.text
    order = r.json()
    today = datetime.now(UTC).date()
    assert order["order_number"] == "O-1"
    assert order["channel"] == "web"
    assert order["customer_id"] == "C1"
    assert order["status"] == "backordered"
    assert order["ship_policy"] == "partial"
    assert order["placed_at"] == "2026-11-20T10:30:00Z"
    assert order["priority"] == 0
    # 8 x 12.50 + 2 x 3.00 + 4 x 7.25 = 100.00 + 6.00 + 29.00
    assert order["order_value"] == "135.00"
    assert line_quantities(order) == [
        (1, "A", 8, 5, 3, 0, 0),
        (2, "B", 2, 2, 0, 0, 0),
        (3, "C", 4, 0, 4, 0, 0),
    ]
    # A waits for the PO that covers it; B waits for nothing; C has no PO, so today + lead time.
    assert [x["eta"] for x in order["lines"]] == ["2027-01-15", None, (today + timedelta(days=7)).isoformat()]
    assert api.get("/orders/O-1").json() == order

    assert stock(api, "A") == {"on_hand": 5, "allocated": 5, "available": 0, "backordered": 3, "incoming": 10}
    assert stock(api, "B") == {"on_hand": 10, "allocated": 2, "available": 8, "backordered": 0, "incoming": 0}
    assert stock(api, "C") == {"on_hand": 0, "allocated": 0, "available": 0, "backordered": 4, "incoming": 0}
    # ship partial: what was allocated is released into one shipment at once
    [shipment] = shipments(api, order_number="O-1")
    assert shipment["status"] == "pick"
    assert shipment["lines"] == [{"line_no": 1, "sku": "A", "qty": 5}, {"line_no": 2, "sku": "B", "qty": 2}]


def test_a_new_line_is_dated_at_its_place_in_the_queue(api):
    put_customer(api, "C1")
    put_product(api, "A")
    for po, qty, day in [("PO-1", 4, "2027-01-10"), ("PO-2", 10, "2027-02-10")]:
        r = api.post(
            "/purchase-orders",
            {"po_number": po, "supplier": "Acme", "lines": [{"sku": "A", "qty": qty, "expected_date": day}]},
        )
        assert r.status_code == 201, r.text

    first = place(api, "O-1", [("A", 3)])
    second = place(api, "O-2", [("A", 2)])  # 3 + 2 = 5 units: past PO-1's 4
    assert first["lines"][0]["eta"] == "2027-01-10"
    assert second["lines"][0]["eta"] == "2027-02-10"

    # a boosted order jumps the queue: it takes PO-1's units and pushes O-1 onto PO-2
    boosted = place(api, "O-3", [("A", 2)], priority=5)

    assert boosted["lines"][0]["eta"] == "2027-01-10"
    assert api.get("/orders/O-1").json()["lines"][0]["eta"] == "2027-02-10"
    assert api.get("/orders/O-2").json()["lines"][0]["eta"] == "2027-02-10"


def test_an_order_fully_in_stock_is_in_fulfillment_and_a_line_price_overrides_the_catalogue(api):
    put_customer(api, "C1")
    put_product(api, "A", on_hand=4, price="20.00")

    r = api.post(
        "/orders",
        {
            "order_number": "O-2",
            "channel": "pos",
            "customer_id": "C1",
            "lines": [{"sku": "A", "qty": 3, "unit_price": "15.99"}],
        },
    )

    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "in_fulfillment"
    assert order["order_value"] == "47.97"
    assert line_quantities(order) == [(1, "A", 3, 3, 0, 0, 0)]
    assert order["lines"][0]["eta"] is None
    assert stock(api, "A") == {"on_hand": 4, "allocated": 3, "available": 1, "backordered": 0, "incoming": 0}


def test_lines_of_the_same_sku_share_its_availability_in_line_order(api):
    put_customer(api, "C1")
    put_product(api, "A", on_hand=3)

    order = place(api, "O-3", [("A", 2), ("A", 2)])

    assert line_quantities(order) == [(1, "A", 2, 2, 0, 0, 0), (2, "A", 2, 1, 1, 0, 0)]
    assert stock(api, "A") == {"on_hand": 3, "allocated": 3, "available": 0, "backordered": 1, "incoming": 0}


def test_a_refused_order_names_every_refused_sku_and_stores_nothing(api):
    put_customer(api, "C1")
    put_product(api, "OK", on_hand=5)
    put_product(api, "NEVER", on_hand=2, policy={"mode": "never"})
    put_product(api, "CAPPED", policy={"mode": "always", "max_backorder_qty": 3})
    put_product(api, "WEBONLY", on_hand=1, policy={"mode": "always", "channels": ["web"]})
    put_product(api, "INCOMING", policy={"mode": "when_incoming"})
    r = api.post(
        "/purchase-orders",
        {
            "po_number": "PO-1",
            "supplier": "Acme",
            "lines": [{"sku": "INCOMING", "qty": 5, "expected_date": "2027-02-01"}],
        },
    )
    assert r.status_code == 201, r.text
    before = {sku: stock(api, sku) for sku in ["OK", "NEVER", "CAPPED", "WEBONLY", "INCOMING"]}

    r = api.post(
        "/orders",
        order_body(
            "O-REFUSED",
            [("OK", 1), ("NEVER", 5), ("CAPPED", 4), ("WEBONLY", 3), ("INCOMING", 7)],
            channel="pos",
        ),
    )

    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["status"] == 409
    assert problem["type"] == "/problems/insufficient-stock"
    assert {"title", "detail"} <= problem.keys()
    by_sku = {e["sku"]: e for e in problem["errors"]}
    assert sorted(by_sku) == ["CAPPED", "INCOMING", "NEVER", "WEBONLY"]
    assert {sku: (e["available"], e["reason"]) for sku, e in by_sku.items()} == {
        "NEVER": (2, "backorder_not_allowed"),
        "CAPPED": (0, "max_backorder_qty"),
        "WEBONLY": (1, "channel_not_allowed"),
        "INCOMING": (0, "not_covered_by_incoming"),
    }
    assert {sku: e["backorderable"] for sku, e in by_sku.items()} == {
        "NEVER": 0,
        "CAPPED": 3,
        "WEBONLY": 0,
        "INCOMING": 5,
    }

    assert api.get("/orders/O-REFUSED").status_code == 404
    assert api.get("/orders/O-REFUSED/events").status_code == 404
    assert {sku: stock(api, sku) for sku in before} == before
    assert api.get("/backorders").json()["items"] == []
    assert shipments(api, order_number="O-REFUSED") == []
    # nothing was reserved: the same SKUs can still be ordered within what the policies allow
    ok = place(api, "O-AFTER", [("OK", 5), ("NEVER", 2), ("CAPPED", 3)], channel="pos")
    assert line_quantities(ok) == [(1, "OK", 5, 5, 0, 0, 0), (2, "NEVER", 2, 2, 0, 0, 0), (3, "CAPPED", 3, 0, 3, 0, 0)]


def test_back_ordering_within_the_policy_is_accepted(api):
    put_customer(api, "C1")
    put_product(api, "CAPPED", on_hand=1, policy={"mode": "always", "max_backorder_qty": 10, "max_qty_per_line": 2})
    put_product(api, "INCOMING", policy={"mode": "when_incoming"})
    r = api.post(
        "/purchase-orders",
        {
            "po_number": "PO-1",
            "supplier": "Acme",
            "lines": [{"sku": "INCOMING", "qty": 5, "expected_date": "2027-02-01"}],
        },
    )
    assert r.status_code == 201, r.text

    first = place(api, "O-1", [("CAPPED", 3), ("INCOMING", 3)])
    assert line_quantities(first) == [(1, "CAPPED", 3, 1, 2, 0, 0), (2, "INCOMING", 3, 0, 3, 0, 0)]

    # one more unit of CAPPED is fine; 3 more INCOMING would exceed the 5 incoming (3 already promised)
    r = api.post("/orders", order_body("O-2", [("CAPPED", 1), ("INCOMING", 3)]))
    assert r.status_code == 409, r.text
    assert [(e["sku"], e["backorderable"], e["reason"]) for e in r.json()["errors"]] == [
        ("INCOMING", 2, "not_covered_by_incoming")
    ]
    # a single line may back-order at most 2 units
    r = api.post("/orders", order_body("O-3", [("CAPPED", 3)]))
    assert r.status_code == 409, r.text
    assert [(e["sku"], e["reason"]) for e in r.json()["errors"]] == [("CAPPED", "max_qty_per_line")]

    second = place(api, "O-4", [("CAPPED", 1), ("INCOMING", 2)])
    assert line_quantities(second) == [(1, "CAPPED", 1, 0, 1, 0, 0), (2, "INCOMING", 2, 0, 2, 0, 0)]
    assert stock(api, "INCOMING")["backordered"] == 5


def test_unknown_customer_and_unknown_skus_are_named_and_nothing_is_stored(api):
    put_customer(api, "C1")
    put_product(api, "A", on_hand=5)

    r = api.post(
        "/orders",
        order_body("O-BAD", [("A", 2), ("NOPE-1", 1), ("NOPE-2", 1)], customer_id="GHOST"),
    )

    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    errors = r.json()["errors"]
    assert {"field": "customer_id", "value": "GHOST", "reason": "unknown customer"} in errors
    assert sorted(e["sku"] for e in errors if e.get("reason") == "unknown sku") == ["NOPE-1", "NOPE-2"]
    assert api.get("/orders/O-BAD").status_code == 404
    assert stock(api, "A") == {"on_hand": 5, "allocated": 0, "available": 5, "backordered": 0, "incoming": 0}


def test_an_unknown_sku_alone_is_refused_with_422(api):
    put_customer(api, "C1")

    r = api.post("/orders", order_body("O-BAD", [("NOPE", 1)]))

    assert r.status_code == 422, r.text
    assert [e["sku"] for e in r.json()["errors"]] == ["NOPE"]
    assert api.get("/orders/O-BAD").status_code == 404


def test_unknown_body_fields_are_refused(api):
    put_customer(api, "C1")
    put_product(api, "A", on_hand=5)

    r = api.post("/orders", order_body("O-X", [("A", 1)], gift_wrap=True))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert [e["field"] for e in r.json()["errors"]] == ["gift_wrap"]

    body = order_body("O-X", [("A", 1)])
    body["lines"][0]["colour"] = "red"
    r = api.post("/orders", body)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["lines.0.colour"]

    assert api.get("/orders/O-X").status_code == 404
    assert stock(api, "A")["allocated"] == 0


def test_zero_and_negative_quantities_are_refused(api):
    put_customer(api, "C1")
    put_product(api, "A", on_hand=5)

    for qty in (0, -1):
        r = api.post("/orders", order_body("O-Q", [("A", 2), ("A", qty)]))
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["lines.1.qty"]

    r = api.post("/orders", order_body("O-Q", []))
    assert r.status_code == 422, r.text
    assert api.get("/orders/O-Q").status_code == 404
    assert stock(api, "A")["allocated"] == 0


# ---- idempotency --------------------------------------------------------------------------------


def test_the_same_order_sent_again_returns_the_stored_order_without_placing_it_twice(api):
    put_customer(api, "C1")
    put_product(api, "A", on_hand=3)
    body = order_body("O-1", [("A", 5)], placed_at="2026-11-01T08:00:00Z")

    first = api.post("/orders", body)
    again = api.post("/orders", body)

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert line_quantities(again.json()) == [(1, "A", 5, 3, 2, 0, 0)]
    assert stock(api, "A") == {"on_hand": 3, "allocated": 3, "available": 0, "backordered": 2, "incoming": 0}
    assert len(shipments(api, order_number="O-1")) == 1
    assert len(api.get("/orders").json()["items"]) == 1


def test_the_same_order_number_with_a_different_body_or_channel_is_a_conflict(api):
    put_customer(api, "C1")
    put_product(api, "A", on_hand=3)
    stored = place(api, "O-1", [("A", 2)])

    different_qty = api.post("/orders", order_body("O-1", [("A", 1)]))
    other_channel = api.post("/orders", order_body("O-1", [("A", 2)], channel="marketplace"))

    for r in (different_qty, other_channel):
        assert r.status_code == 409, r.text
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["errors"][0]["field"] == "order_number"
    assert api.get("/orders/O-1").json() == stored
    assert stock(api, "A") == {"on_hand": 3, "allocated": 2, "available": 1, "backordered": 0, "incoming": 0}


# ---- ship policy --------------------------------------------------------------------------------


def test_ship_complete_holds_every_unit_until_all_lines_are_fully_allocated(api):
    put_customer(api, "C1")
    put_product(api, "A", on_hand=2)
    put_product(api, "B", on_hand=1)

    order = place(api, "O-1", [("A", 2), ("B", 3)], ship_policy="complete")

    assert order["ship_policy"] == "complete"
    assert order["status"] == "backordered"
    assert line_quantities(order) == [(1, "A", 2, 2, 0, 0, 0), (2, "B", 3, 1, 2, 0, 0)]
    assert shipments(api, order_number="O-1") == []
    # the held units stay reserved: nobody else can take them
    assert stock(api, "A") == {"on_hand": 2, "allocated": 2, "available": 0, "backordered": 0, "incoming": 0}

    receive(api, "GRN-1", [("B", 1)])
    assert line_quantities(api.get("/orders/O-1").json())[1] == (2, "B", 3, 2, 1, 0, 0)
    assert shipments(api, order_number="O-1") == []

    receive(api, "GRN-2", [("B", 1)])
    order = api.get("/orders/O-1").json()
    assert order["status"] == "in_fulfillment"
    assert line_quantities(order) == [(1, "A", 2, 2, 0, 0, 0), (2, "B", 3, 3, 0, 0, 0)]
    [shipment] = shipments(api, order_number="O-1")
    assert shipment["status"] == "pick"
    assert shipment["lines"] == [{"line_no": 1, "sku": "A", "qty": 2}, {"line_no": 2, "sku": "B", "qty": 3}]


def test_ship_partial_releases_each_allocation_into_its_own_shipment(api):
    put_customer(api, "C1")
    put_product(api, "A", on_hand=1)

    place(api, "O-1", [("A", 3)])
    receive(api, "GRN-1", [("A", 2)])

    found = shipments(api, order_number="O-1")
    assert [(s["status"], s["lines"]) for s in found] == [
        ("pick", [{"line_no": 1, "sku": "A", "qty": 1}]),
        ("pick", [{"line_no": 1, "sku": "A", "qty": 2}]),
    ]
    assert api.get("/orders/O-1").json()["status"] == "in_fulfillment"


# ---- manual priority ----------------------------------------------------------------------------


def test_a_higher_manual_priority_is_served_before_older_orders(api):
    put_customer(api, "C1")
    put_product(api, "A")
    place(api, "O-OLD", [("A", 2)], placed_at="2026-11-01T08:00:00Z")
    place(api, "O-MID", [("A", 2)], placed_at="2026-11-02T08:00:00Z", priority=-5)
    boosted = place(api, "O-VIP", [("A", 2)], placed_at="2026-11-03T08:00:00Z", priority=10)

    assert boosted["priority"] == 10
    assert waiting_order_numbers(api, "A") == [("O-VIP", 1), ("O-OLD", 2), ("O-MID", 3)]

    grn = receive(api, "GRN-1", [("A", 3)])

    assert grn["allocations"] == [
        {"order_number": "O-VIP", "line_no": 1, "sku": "A", "qty": 2},
        {"order_number": "O-OLD", "line_no": 1, "sku": "A", "qty": 1},
    ]
    assert grn["unallocated"] == []
    assert line_quantities(api.get("/orders/O-OLD").json()) == [(1, "A", 2, 1, 1, 0, 0)]
    assert line_quantities(api.get("/orders/O-MID").json()) == [(1, "A", 2, 0, 2, 0, 0)]


# ---- the order listing --------------------------------------------------------------------------


def _listing_world(api: Any) -> None:
    put_customer(api, "C1")
    put_customer(api, "C2")
    put_product(api, "A", on_hand=2)
    put_product(api, "B", on_hand=10)
    place(api, "O-1", [("A", 2)], placed_at="2026-11-01T08:00:00Z")  # in_fulfillment
    place(api, "O-2", [("A", 1), ("B", 1)], placed_at="2026-11-02T08:00:00Z", channel="pos")  # backordered
    place(api, "O-3", [("B", 2)], placed_at="2026-11-03T08:00:00Z", customer_id="C2")  # in_fulfillment
    place(api, "O-4", [("A", 4)], placed_at="2026-11-04T08:00:00Z", customer_id="C2", channel="pos")  # backordered
    place(api, "O-5", [("B", 1)], placed_at="2026-11-05T08:00:00Z", channel="marketplace")  # in_fulfillment


def _numbers(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [o["order_number"] for o in r.json()["items"]]


def test_orders_are_listed_oldest_first_and_filtered(api):
    _listing_world(api)

    assert _numbers(api.get("/orders")) == ["O-1", "O-2", "O-3", "O-4", "O-5"]
    assert _numbers(api.get("/orders", params={"status": "backordered"})) == ["O-2", "O-4"]
    assert _numbers(api.get("/orders", params={"status": "in_fulfillment"})) == ["O-1", "O-3", "O-5"]
    assert _numbers(api.get("/orders", params={"status": "cancelled"})) == []
    assert _numbers(api.get("/orders", params={"channel": "pos"})) == ["O-2", "O-4"]
    assert _numbers(api.get("/orders", params={"customer_id": "C2"})) == ["O-3", "O-4"]
    assert _numbers(api.get("/orders", params={"sku": "A"})) == ["O-1", "O-2", "O-4"]
    assert _numbers(api.get("/orders", params={"sku": "B", "customer_id": "C1"})) == ["O-2", "O-5"]
    assert _numbers(api.get("/orders", params={"channel": "pos", "status": "backordered", "sku": "B"})) == ["O-2"]
    listed = api.get("/orders", params={"channel": "marketplace"}).json()["items"]
    assert listed == [api.get("/orders/O-5").json()]


def test_order_listing_pages_by_cursor_without_gaps_or_repeats(api):
    _listing_world(api)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = api.get("/orders", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [o["order_number"] for o in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10

    assert seen == ["O-1", "O-2", "O-3", "O-4", "O-5"]
    assert pages == 3
    filtered = api.get("/orders", params={"sku": "A", "limit": 2}).json()
    assert [o["order_number"] for o in filtered["items"]] == ["O-1", "O-2"]
    rest = api.get("/orders", params={"sku": "A", "limit": 2, "cursor": filtered["next_cursor"]}).json()
    assert [o["order_number"] for o in rest["items"]] == ["O-4"]
    assert rest["next_cursor"] is None
    r = api.get("/orders", params={"cursor": "garbage!"})
    assert r.status_code == 422, r.text


def test_an_unknown_order_is_404_problem(api):
    r = api.get("/orders/NOPE")
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    assert api.get("/orders/NOPE/events").status_code == 404


# ---- the order's history ------------------------------------------------------------------------


def test_the_events_of_an_order_are_listed_oldest_first(api):
    put_customer(api, "C1")
    put_product(api, "A", on_hand=1)
    put_product(api, "B", lead_time_days=3)
    place(api, "O-1", [("A", 3), ("B", 2)])
    r = api.post(
        "/purchase-orders",
        {"po_number": "PO-B", "supplier": "Acme", "lines": [{"sku": "B", "qty": 5, "expected_date": "2027-03-01"}]},
    )
    assert r.status_code == 201, r.text
    receive(api, "GRN-1", [("A", 2)])
    r = api.post("/orders/O-1/cancel", {"reason": "customer changed mind", "lines": [{"line_no": 2, "qty": 2}]})
    assert r.status_code == 200, r.text

    r = api.get("/orders/O-1/events")

    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert {k for item in items for k in item} == {"at", "type", "actor", "data"}
    types = [e["type"] for e in items]
    interesting = [t for t in types if t in {"order_placed", "backordered", "eta_changed", "allocated", "cancelled"}]
    assert interesting == ["order_placed", "backordered", "eta_changed", "allocated", "cancelled"]
    assert types[0] == "order_placed"
    assert [e["at"] for e in items] == sorted(e["at"] for e in items)
    assert {e["actor"] for e in items} == {"test-admin"}
    by_type = {e["type"]: e["data"] for e in items}
    today = datetime.now(UTC).date()
    # The event carries each line's ETA as placed (the confirmation email shows it): A has no lead time.
    assert by_type["order_placed"]["lines"] == [
        {"line_no": 1, "sku": "A", "qty": 3, "allocated_qty": 1, "backordered_qty": 2, "eta": None},
        {
            "line_no": 2,
            "sku": "B",
            "qty": 2,
            "allocated_qty": 0,
            "backordered_qty": 2,
            "eta": (today + timedelta(days=3)).isoformat(),
        },
    ]
    assert by_type["backordered"]["lines"] == [
        {"line_no": 1, "sku": "A", "qty": 2},
        {"line_no": 2, "sku": "B", "qty": 2},
    ]
    # B was first dated by its lead time (today + 3), then by the PO's later date
    eta = by_type["eta_changed"]
    assert (eta["line_no"], eta["sku"], eta["from"], eta["to"]) == (
        2,
        "B",
        (today + timedelta(days=3)).isoformat(),
        "2027-03-01",
    )
    assert eta["later"] is True
    assert by_type["allocated"] == {
        "source": "receipt",
        "ref": "GRN-1",
        "lines": [{"line_no": 1, "sku": "A", "qty": 2, "backordered_qty": 0}],  # what still waits after it
    }
    assert by_type["cancelled"]["reason"] == "customer changed mind"
    assert [(x["line_no"], x["sku"], x["qty"]) for x in by_type["cancelled"]["lines"]] == [(2, "B", 2)]
    # one shipment at placement (1 unit of A), one when the receipt allocated 2 more
    assert [e["data"]["lines"] for e in items if e["type"] == "shipment_created"] == [
        [{"line_no": 1, "qty": 1}],
        [{"line_no": 1, "qty": 2}],
    ]
