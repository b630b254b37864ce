"""Purchase orders, goods receipts, ETAs, promises and the shortfall through the real API (rules 4, 9)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from .. import builders
from ..builders import adjust, po_body, purchase_order, put_customer, put_product, stock

PROBLEM = "application/problem+json"


# ---- small local helpers ------------------------------------------------------------------------


def today() -> date:
    return datetime.now(UTC).date()


def day(n: int) -> str:
    return (today() + timedelta(days=n)).isoformat()


def at(minutes: int) -> str:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    return (base + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def place(api, number: str, lines: list[tuple[str, int]], minute: int, **extra) -> dict[str, Any]:
    return builders.place(api, number, lines, placed_at=at(minute), **extra)


def line(api, number: str, line_no: int = 1) -> dict[str, Any]:
    r = api.get(f"/orders/{number}")
    assert r.status_code == 200, r.text
    return r.json()["lines"][line_no - 1]


def eta(api, number: str, line_no: int = 1) -> str | None:
    return line(api, number, line_no)["eta"]


def create_po(api, number: str, lines: list[tuple[str, int, str]]) -> dict[str, Any]:
    return dict(purchase_order(api, number, lines))


def receipt(api, grn: str, lines: list[tuple[str, int]], po: str | None = None) -> Any:
    body: dict[str, Any] = {"grn_number": grn, "lines": [{"sku": s, "qty": q} for s, q in lines]}
    if po is not None:
        body["po_number"] = po
    return api.post("/receipts", body)


def contract(r_json: dict[str, Any]) -> dict[str, Any]:
    """The receipt fields API.md names."""
    return {k: r_json[k] for k in ("grn_number", "allocations", "unallocated")}


def alloc(order_number: str, line_no: int, sku: str, qty: int) -> dict[str, Any]:
    return {"order_number": order_number, "line_no": line_no, "sku": sku, "qty": qty}


def assert_problem(r, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status
    return body


def po_numbers(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [p["po_number"] for p in r.json()["items"]]


# ---- purchase orders ----------------------------------------------------------------------------


def test_purchase_order_is_created_with_its_lines_and_adds_incoming(api):
    put_product(api, "A")
    put_product(api, "B")
    r = api.post("/purchase-orders", po_body("PO-1", [("A", 10, day(7)), ("B", 3, day(9))]))
    assert r.status_code == 201, r.text
    po = r.json()
    assert po["po_number"] == "PO-1"
    assert po["supplier"] == "Acme"
    assert po["status"] == "open"
    assert po["overdue"] is False
    keys = ("line_no", "sku", "qty", "received_qty", "open_qty", "expected_date")
    assert [{k: x[k] for k in keys} for x in po["lines"]] == [
        {"line_no": 1, "sku": "A", "qty": 10, "received_qty": 0, "open_qty": 10, "expected_date": day(7)},
        {"line_no": 2, "sku": "B", "qty": 3, "received_qty": 0, "open_qty": 3, "expected_date": day(9)},
    ]
    assert api.get("/purchase-orders/PO-1").json() == po
    assert stock(api, "A")["incoming"] == 10
    assert stock(api, "B")["incoming"] == 3


def test_duplicate_po_number_is_a_409_and_the_first_po_is_kept(api):
    put_product(api, "A")
    create_po(api, "PO-1", [("A", 10, day(7))])
    body = assert_problem(api.post("/purchase-orders", po_body("PO-1", [("A", 99, day(1))])), 409)
    assert body["errors"][0]["field"] == "po_number"
    assert api.get("/purchase-orders/PO-1").json()["lines"][0]["qty"] == 10
    assert stock(api, "A")["incoming"] == 10


def test_purchase_order_naming_an_unknown_or_repeated_sku_is_a_422_naming_it_and_nothing_stored(api):
    put_product(api, "A")
    r = api.post("/purchase-orders", po_body("PO-1", [("A", 5, day(7)), ("GHOST-9", 2, day(7))]))
    body = assert_problem(r, 422)
    assert body["errors"] == [{"field": "lines[].sku", "sku": "GHOST-9", "reason": "unknown sku"}]
    assert "GHOST-9" in body["detail"]
    assert_problem(api.get("/purchase-orders/PO-1"), 404)
    assert stock(api, "A")["incoming"] == 0

    body = assert_problem(api.post("/purchase-orders", po_body("PO-1", [("A", 1, day(2)), ("A", 2, day(3))])), 422)
    assert body["errors"] == [{"field": "lines[].sku", "sku": "A", "reason": "repeated sku"}]
    assert_problem(api.get("/purchase-orders/PO-1"), 404)


def test_purchase_orders_are_listed_by_status_sku_and_overdue(api):
    put_product(api, "A")
    put_product(api, "B")
    create_po(api, "PO-LATE", [("A", 5, day(-3))])  # open units, expected in the past: overdue
    create_po(api, "PO-SOON", [("B", 5, day(4))])
    create_po(api, "PO-GONE", [("A", 5, day(-3))])
    assert api.post("/purchase-orders/PO-GONE/cancel").status_code == 200
    create_po(api, "PO-DONE", [("A", 2, day(-3))])  # late, but all received: not overdue
    assert receipt(api, "G-1", [("A", 2)], po="PO-DONE").status_code == 201

    assert po_numbers(api.get("/purchase-orders")) == ["PO-LATE", "PO-SOON", "PO-GONE", "PO-DONE"]
    assert po_numbers(api.get("/purchase-orders", params={"status": "open"})) == ["PO-LATE", "PO-SOON"]
    assert po_numbers(api.get("/purchase-orders", params={"status": "cancelled"})) == ["PO-GONE"]
    assert po_numbers(api.get("/purchase-orders", params={"status": "received"})) == ["PO-DONE"]
    assert po_numbers(api.get("/purchase-orders", params={"sku": "A"})) == ["PO-LATE", "PO-GONE", "PO-DONE"]
    assert po_numbers(api.get("/purchase-orders", params={"sku": "B"})) == ["PO-SOON"]
    assert po_numbers(api.get("/purchase-orders", params={"overdue": "true"})) == ["PO-LATE"]
    assert po_numbers(api.get("/purchase-orders", params={"overdue": "false"})) == ["PO-SOON", "PO-GONE", "PO-DONE"]
    assert po_numbers(api.get("/purchase-orders", params={"overdue": "true", "sku": "B"})) == []
    assert api.get("/purchase-orders/PO-LATE").json()["overdue"] is True
    assert api.get("/purchase-orders/PO-DONE").json()["overdue"] is False
    assert_problem(api.get("/purchase-orders", params={"status": "lost"}), 422)


def test_unknown_purchase_order_is_404(api):
    body = assert_problem(api.get("/purchase-orders/PO-NONE"), 404)
    assert "PO-NONE" in body["detail"]
    assert_problem(api.patch("/purchase-orders/PO-NONE", {"lines": [{"sku": "A", "qty": 1}]}), 404)
    assert_problem(api.post("/purchase-orders/PO-NONE/cancel"), 404)


def test_patching_expected_date_and_qty_moves_the_etas_of_waiting_lines(api):
    put_product(api, "A", lead_time_days=30)
    put_customer(api)
    place(api, "O-1", [("A", 3)], minute=1)
    assert eta(api, "O-1") == day(30)  # no PO yet: lead time

    create_po(api, "PO-1", [("A", 5, day(10))])
    assert eta(api, "O-1") == day(10)

    r = api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "A", "expected_date": day(20)}]})
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0]["expected_date"] == day(20)
    assert r.json()["lines"][0]["qty"] == 5
    assert eta(api, "O-1") == day(20)

    r = api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "A", "qty": 2}]})
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0]["qty"] == 2
    assert r.json()["lines"][0]["expected_date"] == day(20)
    assert stock(api, "A")["incoming"] == 2
    assert eta(api, "O-1") == day(30)  # 2 incoming no longer cover 3 waiting: back to lead time

    r = api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "A", "qty": 3, "expected_date": day(12)}]})
    assert r.status_code == 200, r.text
    assert eta(api, "O-1") == day(12)


def test_patching_qty_below_the_received_qty_or_a_sku_not_on_the_po_is_a_422_and_changes_nothing(api):
    put_product(api, "A")
    create_po(api, "PO-1", [("A", 10, day(5))])
    assert receipt(api, "G-1", [("A", 4)], po="PO-1").status_code == 201
    before = api.get("/purchase-orders/PO-1").json()

    body = assert_problem(api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "A", "qty": 3}]}), 422)
    assert body["errors"] == [
        {"field": "lines[].qty", "sku": "A", "qty": 3, "received_qty": 4, "reason": "below the received quantity"}
    ]
    put_product(api, "B")
    body = assert_problem(api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "B", "qty": 3}]}), 422)
    assert body["errors"] == [{"field": "lines[].sku", "sku": "B", "reason": "not on this purchase order"}]
    assert api.get("/purchase-orders/PO-1").json() == before
    assert stock(api, "A")["incoming"] == 6

    r = api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "A", "qty": 4}]})  # equal to received: closes it
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "received"
    assert stock(api, "A")["incoming"] == 0


def test_cancelling_a_po_drops_incoming_and_redates_waiting_lines(api):
    put_product(api, "A", lead_time_days=25)
    put_customer(api)
    create_po(api, "PO-1", [("A", 5, day(6))])
    place(api, "O-1", [("A", 2)], minute=1)
    assert eta(api, "O-1") == day(6)
    assert stock(api, "A")["incoming"] == 5

    r = api.post("/purchase-orders/PO-1/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert r.json()["lines"][0]["open_qty"] == 0
    assert stock(api, "A")["incoming"] == 0
    assert eta(api, "O-1") == day(25)

    body = assert_problem(api.post("/purchase-orders/PO-1/cancel"), 409)
    assert body["errors"][0]["value"] == "cancelled"
    assert_problem(api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "A", "qty": 9}]}), 409)
    assert_problem(receipt(api, "G-1", [("A", 1)], po="PO-1"), 409)
    assert stock(api, "A")["on_hand"] == 0


# ---- receipts -----------------------------------------------------------------------------------


def test_partial_receipt_keeps_the_po_open_and_counts_received_units(api):
    put_product(api, "A")
    create_po(api, "PO-1", [("A", 10, day(5))])
    r = receipt(api, "G-1", [("A", 4)], po="PO-1")
    assert r.status_code == 201, r.text
    assert contract(r.json()) == {"grn_number": "G-1", "allocations": [], "unallocated": [{"sku": "A", "qty": 4}]}
    po = api.get("/purchase-orders/PO-1").json()
    assert po["status"] == "open"
    assert po["lines"][0]["received_qty"] == 4
    assert po["lines"][0]["open_qty"] == 6
    assert stock(api, "A") == {"on_hand": 4, "allocated": 0, "available": 4, "backordered": 0, "incoming": 6}

    assert receipt(api, "G-2", [("A", 6)], po="PO-1").status_code == 201
    po = api.get("/purchase-orders/PO-1").json()
    assert po["status"] == "received"
    assert po["lines"][0]["received_qty"] == 10
    assert stock(api, "A")["incoming"] == 0


def test_over_receipt_closes_the_po_and_the_excess_still_becomes_stock(api):
    put_product(api, "A")
    put_customer(api)
    create_po(api, "PO-1", [("A", 5, day(5))])
    place(api, "O-1", [("A", 6)], minute=1)
    r = receipt(api, "G-1", [("A", 8)], po="PO-1")
    assert r.status_code == 201, r.text
    assert contract(r.json()) == {
        "grn_number": "G-1",
        "allocations": [alloc("O-1", 1, "A", 6)],  # the excess serves the queue too
        "unallocated": [{"sku": "A", "qty": 2}],
    }
    po = api.get("/purchase-orders/PO-1").json()
    assert po["status"] == "received"
    assert po["lines"][0]["received_qty"] == 5
    assert po["lines"][0]["open_qty"] == 0
    assert stock(api, "A") == {"on_hand": 8, "allocated": 6, "available": 2, "backordered": 0, "incoming": 0}


def test_unplanned_sku_on_a_po_receipt_becomes_stock_without_touching_the_po(api):
    put_product(api, "A")
    put_product(api, "B")
    create_po(api, "PO-1", [("A", 5, day(5))])
    r = receipt(api, "G-1", [("A", 2), ("B", 3)], po="PO-1")
    assert r.status_code == 201, r.text
    assert contract(r.json())["unallocated"] == [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 3}]
    po = api.get("/purchase-orders/PO-1").json()
    assert [(x["sku"], x["received_qty"], x["open_qty"]) for x in po["lines"]] == [("A", 2, 3)]
    assert po["status"] == "open"
    assert stock(api, "B") == {"on_hand": 3, "allocated": 0, "available": 3, "backordered": 0, "incoming": 0}
    assert stock(api, "A")["incoming"] == 3


def test_receipt_without_a_po_adds_stock_and_allocates_to_the_queue(api):
    put_product(api, "A")
    put_customer(api)
    place(api, "O-1", [("A", 2)], minute=1)
    r = receipt(api, "G-1", [("A", 5)])
    assert r.status_code == 201, r.text
    assert contract(r.json()) == {
        "grn_number": "G-1",
        "allocations": [alloc("O-1", 1, "A", 2)],
        "unallocated": [{"sku": "A", "qty": 3}],
    }
    assert stock(api, "A") == {"on_hand": 5, "allocated": 2, "available": 3, "backordered": 0, "incoming": 0}


def test_receipt_with_unknown_po_or_sku_is_a_422_and_books_nothing(api):
    put_product(api, "A")
    body = assert_problem(receipt(api, "G-1", [("A", 1)], po="PO-NONE"), 422)
    assert body["errors"][0]["field"] == "po_number"
    body = assert_problem(receipt(api, "G-2", [("A", 1), ("GHOST", 1)]), 422)
    assert body["errors"] == [{"field": "lines[].sku", "sku": "GHOST", "reason": "unknown sku"}]
    assert stock(api, "A")["on_hand"] == 0
    assert receipt(api, "G-1", [("A", 1)]).status_code == 201  # the GRN number was not used up


def test_receipt_allocates_to_a_hand_built_queue_in_rule_order_per_sku(api):
    put_product(api, "A")
    put_product(api, "B")
    put_customer(api)
    place(api, "O-1", [("A", 3)], minute=1)
    place(api, "O-2", [("A", 2), ("B", 4)], minute=2)
    place(api, "O-3", [("A", 4)], minute=3)
    create_po(api, "PO-1", [("A", 6, day(5)), ("B", 5, day(5))])

    r = receipt(api, "G-1", [("B", 5), ("A", 6)], po="PO-1")
    assert r.status_code == 201, r.text
    assert contract(r.json()) == {
        "grn_number": "G-1",
        "allocations": [
            alloc("O-1", 1, "A", 3),
            alloc("O-2", 1, "A", 2),
            alloc("O-3", 1, "A", 1),
            alloc("O-2", 2, "B", 4),
        ],
        "unallocated": [{"sku": "B", "qty": 1}],
    }
    assert stock(api, "A") == {"on_hand": 6, "allocated": 6, "available": 0, "backordered": 3, "incoming": 0}
    assert stock(api, "B") == {"on_hand": 5, "allocated": 4, "available": 1, "backordered": 0, "incoming": 0}
    o3 = line(api, "O-3")
    assert (o3["allocated_qty"], o3["backordered_qty"]) == (1, 3)


def test_default_rule_serves_priority_first_then_fifo_and_fills_a_line_in_parts(api):
    put_product(api, "A")
    put_customer(api)
    place(api, "O-OLD", [("A", 5)], minute=1)
    place(api, "O-NEW", [("A", 2)], minute=2)
    place(api, "O-VIP", [("A", 1)], minute=3, priority=5)

    r = receipt(api, "G-1", [("A", 4)])
    assert r.status_code == 201, r.text
    assert contract(r.json())["allocations"] == [alloc("O-VIP", 1, "A", 1), alloc("O-OLD", 1, "A", 3)]
    old = line(api, "O-OLD")
    assert (old["allocated_qty"], old["backordered_qty"]) == (3, 2)

    r = receipt(api, "G-2", [("A", 3)])
    assert r.status_code == 201, r.text
    assert contract(r.json()) == {
        "grn_number": "G-2",
        "allocations": [alloc("O-OLD", 1, "A", 2), alloc("O-NEW", 1, "A", 1)],
        "unallocated": [],
    }
    old, new = line(api, "O-OLD"), line(api, "O-NEW")
    assert (old["allocated_qty"], old["backordered_qty"]) == (5, 0)
    assert (new["allocated_qty"], new["backordered_qty"]) == (1, 1)
    assert stock(api, "A") == {"on_hand": 7, "allocated": 7, "available": 0, "backordered": 1, "incoming": 0}


def test_the_same_grn_again_returns_the_stored_result_and_a_different_body_is_a_409(api):
    put_product(api, "A")
    put_customer(api)
    create_po(api, "PO-1", [("A", 10, day(5))])
    place(api, "O-1", [("A", 2)], minute=1)
    body = {"grn_number": "G-1", "po_number": "PO-1", "lines": [{"sku": "A", "qty": 3}]}
    first = api.post("/receipts", body)
    assert first.status_code == 201, first.text
    after_first = stock(api, "A")
    assert after_first == {"on_hand": 3, "allocated": 2, "available": 1, "backordered": 0, "incoming": 7}

    again = api.post("/receipts", body)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert stock(api, "A") == after_first
    assert api.get("/purchase-orders/PO-1").json()["lines"][0]["received_qty"] == 3

    body = assert_problem(api.post("/receipts", {**body, "lines": [{"sku": "A", "qty": 4}]}), 409)
    assert body["errors"][0]["field"] == "grn_number"
    assert stock(api, "A") == after_first
    assert api.get("/purchase-orders/PO-1").json()["lines"][0]["received_qty"] == 3


# ---- ETAs ---------------------------------------------------------------------------------------


def test_eta_is_the_date_of_the_first_po_line_whose_running_incoming_covers_the_running_demand(api):
    put_product(api, "A", lead_time_days=30)
    put_customer(api)
    # Created out of date order: the walk goes by expected date.
    create_po(api, "PO-LATER", [("A", 4, day(10))])
    create_po(api, "PO-FIRST", [("A", 3, day(5))])
    # Running demand 2, 4, 7, 8 against running incoming 3 (day 5), 7 (day 10).
    place(api, "O-1", [("A", 2)], minute=1)
    place(api, "O-2", [("A", 2)], minute=2)
    place(api, "O-3", [("A", 3)], minute=3)
    place(api, "O-4", [("A", 1)], minute=4)
    assert [eta(api, n) for n in ("O-1", "O-2", "O-3", "O-4")] == [day(5), day(10), day(10), day(30)]

    r = api.get("/backorders", params={"sku": "A"})
    assert [(i["order_number"], i["queue_position"], i["eta"]) for i in r.json()["items"]] == [
        ("O-1", 1, day(5)),
        ("O-2", 2, day(10)),
        ("O-3", 3, day(10)),
        ("O-4", 4, day(30)),
    ]

    # A receipt of 3 against the first PO fills O-1 and one unit of O-2; the walk restarts.
    r = receipt(api, "G-1", [("A", 3)], po="PO-FIRST")
    assert contract(r.json())["allocations"] == [alloc("O-1", 1, "A", 2), alloc("O-2", 1, "A", 1)]
    assert eta(api, "O-1") is None  # no longer waits
    # Waiting now 1, 3, 1 (running 1, 4, 5) against PO-LATER's 4 on day 10.
    assert [eta(api, n) for n in ("O-2", "O-3", "O-4")] == [day(10), day(10), day(30)]


def test_a_new_po_pulls_etas_in_and_a_higher_priority_order_pushes_others_back(api):
    put_product(api, "A", lead_time_days=30)
    put_customer(api)
    place(api, "O-1", [("A", 3)], minute=1)
    assert eta(api, "O-1") == day(30)
    create_po(api, "PO-1", [("A", 3, day(8))])
    assert eta(api, "O-1") == day(8)
    place(api, "O-VIP", [("A", 1)], minute=2, priority=9)  # goes ahead: 1 + 3 > 3 incoming
    assert eta(api, "O-VIP") == day(8)
    assert eta(api, "O-1") == day(30)


def test_eta_beyond_all_pos_follows_the_products_lead_time_when_it_changes(api):
    put_product(api, "A", lead_time_days=30)
    put_customer(api)
    place(api, "O-1", [("A", 2)], minute=1)
    assert eta(api, "O-1") == day(30)
    assert api.put("/products/A", {"name": "A", "unit_price": "10.00", "lead_time_days": 12}).status_code == 200
    assert eta(api, "O-1") == day(12)
    assert api.put("/products/A", {"name": "A", "unit_price": "10.00"}).status_code == 200
    assert eta(api, "O-1") is None


def test_eta_from_an_overdue_po_is_today_never_a_past_date(api):
    put_product(api, "A", lead_time_days=30)
    put_customer(api)
    create_po(api, "PO-LATE", [("A", 5, day(-4))])
    place(api, "O-1", [("A", 2)], minute=1)
    assert eta(api, "O-1") == day(0)


def test_eta_without_po_and_without_lead_time_is_null(api):
    put_product(api, "A")
    put_customer(api)
    order = place(api, "O-1", [("A", 2)], minute=1)
    assert order["lines"][0]["backordered_qty"] == 2
    assert order["lines"][0]["eta"] is None
    create_po(api, "PO-1", [("A", 1, day(4))])  # does not cover 2 units
    assert eta(api, "O-1") is None
    api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "A", "qty": 2}]})
    assert eta(api, "O-1") == day(4)


# ---- promise ------------------------------------------------------------------------------------


def test_promise_quotes_now_backorderable_and_eta_without_reserving_anything(api):
    put_product(api, "A", lead_time_days=20)
    put_product(api, "NEVER", policy={"mode": "never"})
    put_product(api, "PLENTY")
    put_customer(api)
    adjust(api, "NEVER", 1)
    adjust(api, "PLENTY", 10)
    create_po(api, "PO-1", [("A", 5, day(7))])
    place(api, "O-1", [("A", 4)], minute=1)  # 4 of the 5 incoming are promised to O-1
    before = {s: stock(api, s) for s in ("A", "NEVER", "PLENTY")}
    orders_before = api.get("/orders").json()

    r = api.post(
        "/promise",
        {
            "channel": "web",
            "customer_id": "C1",
            "lines": [{"sku": "A", "qty": 1}, {"sku": "NEVER", "qty": 3}, {"sku": "PLENTY", "qty": 4}],
        },
    )
    assert r.status_code == 200, r.text
    keys = ("sku", "qty", "available_now", "backorderable", "eta")
    assert [{k: x[k] for k in keys} for x in r.json()["lines"]] == [
        {"sku": "A", "qty": 1, "available_now": 0, "backorderable": True, "eta": day(7)},
        {"sku": "NEVER", "qty": 3, "available_now": 1, "backorderable": False, "eta": None},
        {"sku": "PLENTY", "qty": 4, "available_now": 4, "backorderable": True, "eta": day(0)},
    ]
    # Two units behind O-1's four are not covered by the five incoming: lead time.
    r = api.post("/promise", {"channel": "web", "lines": [{"sku": "A", "qty": 2}]})
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0]["eta"] == day(20)

    assert {s: stock(api, s) for s in ("A", "NEVER", "PLENTY")} == before
    assert api.get("/orders").json() == orders_before


def test_promise_shares_a_skus_stock_across_lines_as_placement_does(api):
    # Placement gives a SKU's available units to its lines in line order (lines of the same SKU
    # share availability); a promise, "what an order would get now", must split the same way.
    put_product(api, "A", lead_time_days=20)
    put_customer(api)
    adjust(api, "A", 3)
    create_po(api, "PO-1", [("A", 5, day(7))])
    lines = [{"sku": "A", "qty": 2}, {"sku": "A", "qty": 3}]
    r = api.post("/promise", {"channel": "web", "customer_id": "C1", "lines": lines})
    assert r.status_code == 200, r.text
    quoted = [(x["available_now"], x["backorderable"], x["eta"]) for x in r.json()["lines"]]

    order = place(api, "O-1", [("A", 2), ("A", 3)], minute=1)
    placed = [(x["allocated_qty"], x["backordered_qty"], x["eta"]) for x in order["lines"]]
    assert placed == [(2, 0, None), (1, 2, day(7))]  # 3 on hand: 2 + 1 now, 2 wait for PO-1
    assert quoted == [(2, True, day(0)), (1, True, day(7))]


def test_promise_for_an_unknown_sku_or_customer_is_a_422_naming_it(api):
    body = assert_problem(api.post("/promise", {"channel": "web", "lines": [{"sku": "GHOST", "qty": 1}]}), 422)
    assert body["errors"] == [{"field": "lines[].sku", "sku": "GHOST", "reason": "unknown sku"}]
    put_product(api, "A")
    r = api.post("/promise", {"channel": "web", "customer_id": "NOBODY", "lines": [{"sku": "A", "qty": 1}]})
    body = assert_problem(r, 422)
    assert body["errors"] == [{"field": "customer_id", "value": "NOBODY", "reason": "unknown customer"}]


# ---- shortfall ----------------------------------------------------------------------------------


def test_shortfall_report_lists_waiting_skus_with_uncovered_units(api):
    for sku in ("A", "B", "C", "D"):
        put_product(api, sku)
    put_customer(api)
    place(api, "O-1", [("A", 6), ("B", 3), ("C", 2)], minute=1)
    create_po(api, "PO-1", [("A", 4, day(5)), ("C", 5, day(5)), ("D", 9, day(5))])
    create_po(api, "PO-2", [("A", 1, day(9))])
    assert receipt(api, "G-1", [("A", 1)], po="PO-2").status_code == 201  # fills a unit, closes PO-2

    r = api.get("/reports/shortfall")
    assert r.status_code == 200, r.text
    keys = ("sku", "backordered", "incoming", "shortfall", "suggested_order_qty")
    assert [{k: x[k] for k in keys} for x in r.json()["items"]] == [
        {"sku": "A", "backordered": 5, "incoming": 4, "shortfall": 1, "suggested_order_qty": 1},
        {"sku": "B", "backordered": 3, "incoming": 0, "shortfall": 3, "suggested_order_qty": 3},
        {"sku": "C", "backordered": 2, "incoming": 5, "shortfall": 0, "suggested_order_qty": 0},
    ]
