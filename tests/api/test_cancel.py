"""Cancelling orders and re-prioritising them through the API (PRODUCT.md rules 2, 4, 6, 8, 10)."""

from __future__ import annotations

from typing import Any

from oms.domain.access import Role

from .. import builders
from ..builders import order_json, put_customer, put_product, stock

PROBLEM = "application/problem+json"


# ---- local setup helpers ------------------------------------------------------------------------


def place(api: Any, number: str, lines: list[tuple[str, int]], day: int, **extra: Any) -> dict[str, Any]:
    """An order placed on the given day of November 2026, at 09:00."""
    return builders.place(api, number, lines, placed_at=f"2026-11-{day:02d}T09:00:00Z", **extra)


def cancel(api: Any, number: str, reason: str, lines: list[tuple[int, int]] | None = None) -> Any:
    body: dict[str, Any] = {"reason": reason}
    if lines is not None:
        body["lines"] = [{"line_no": n, "qty": q} for n, q in lines]
    return api.post(f"/orders/{number}/cancel", body)


def quantities(o: dict[str, Any]) -> list[tuple[int, int, int, int, int]]:
    """(line_no, allocated, backordered, shipped, cancelled) per line."""
    return [
        (x["line_no"], x["allocated_qty"], x["backordered_qty"], x["shipped_qty"], x["cancelled_qty"])
        for x in o["lines"]
    ]


def queue(api: Any, sku: str) -> list[tuple[str, int, int]]:
    r = api.get("/backorders", params={"sku": sku})
    assert r.status_code == 200, r.text
    return [(x["order_number"], x["backordered_qty"], x["queue_position"]) for x in r.json()["items"]]


def shipments(api: Any, number: str) -> list[tuple[str, list[tuple[int, int]]]]:
    found = builders.shipments(api, order_number=number)
    return [(s["status"], [(x["line_no"], x["qty"]) for x in s["lines"]]) for s in found]


def shipment_ids(api: Any, number: str) -> list[int]:
    return [s["id"] for s in builders.shipments(api, order_number=number)]


def advance(api: Any, shipment_id: int) -> dict[str, Any]:
    r = api.post(f"/shipments/{shipment_id}/advance", {})
    assert r.status_code == 200, r.text
    return r.json()


def events(api: Any, number: str) -> list[dict[str, Any]]:
    r = api.get(f"/orders/{number}/events")
    assert r.status_code == 200, r.text
    return r.json()["items"]


# ---- cancelling the whole order -----------------------------------------------------------------


def test_cancelling_a_whole_order_frees_its_units_for_the_next_waiting_order(api):
    put_customer(api)
    put_product(api, "A", on_hand=2)
    put_product(api, "B")
    place(api, "O-1", [("A", 5), ("B", 1)], day=1)  # A: 2 allocated (in pick), 3 waiting; B: 1 waiting
    place(api, "O-2", [("A", 2)], day=2)  # waits behind O-1
    assert queue(api, "A") == [("O-1", 3, 1), ("O-2", 2, 2)]

    r = cancel(api, "O-1", "customer request")

    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert cancelled["status"] == "cancelled"
    assert quantities(cancelled) == [(1, 0, 0, 0, 5), (2, 0, 0, 0, 1)]
    assert order_json(api, "O-1") == cancelled
    # the 2 freed units went straight to O-2, which now ships
    o2 = order_json(api, "O-2")
    assert o2["status"] == "in_fulfillment"
    assert quantities(o2) == [(1, 2, 0, 0, 0)]
    assert shipments(api, "O-2") == [("pick", [(1, 2)])]
    assert [status for status, _ in shipments(api, "O-1")] == ["cancelled"]
    assert queue(api, "A") == []
    assert queue(api, "B") == []
    assert stock(api, "A") == {"on_hand": 2, "allocated": 2, "available": 0, "backordered": 0, "incoming": 0}
    assert stock(api, "B") == {"on_hand": 0, "allocated": 0, "available": 0, "backordered": 0, "incoming": 0}
    allocated = [e["data"] for e in events(api, "O-2") if e["type"] == "allocated"]
    assert allocated == [
        {"source": "cancellation", "ref": "O-1", "lines": [{"line_no": 1, "sku": "A", "qty": 2, "backordered_qty": 0}]}
    ]


def test_the_cancellation_event_records_the_reason_and_where_the_units_came_from(api):
    put_customer(api)
    put_product(api, "A", on_hand=2)
    place(api, "O-1", [("A", 5)], day=1)

    r = cancel(api, "O-1", "found it cheaper elsewhere")

    assert r.status_code == 200, r.text
    [event] = [e for e in events(api, "O-1") if e["type"] == "cancelled"]
    assert event["actor"] == "test-admin"
    assert event["data"] == {
        "reason": "found it cheaper elsewhere",
        "reason_code": "operations",  # sent without a code, and the text names no customer or age
        "lines": [{"line_no": 1, "sku": "A", "qty": 5, "backordered": 3, "allocated": 2}],
    }
    # nobody waited: the 2 freed units are available again
    assert stock(api, "A") == {"on_hand": 2, "allocated": 0, "available": 2, "backordered": 0, "incoming": 0}


def test_a_cancelled_order_cannot_be_cancelled_again(api):
    put_customer(api)
    put_product(api, "A")
    place(api, "O-1", [("A", 2)], day=1)
    assert cancel(api, "O-1", "first").status_code == 200

    r = cancel(api, "O-1", "second")

    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == PROBLEM
    assert [e["data"]["reason"] for e in events(api, "O-1") if e["type"] == "cancelled"] == ["first"]


# ---- cancelling some units ----------------------------------------------------------------------


def test_cancelling_some_units_takes_back_ordered_units_first_and_they_leave_the_queue(api):
    put_customer(api)
    put_product(api, "A", on_hand=2)
    place(api, "O-1", [("A", 5)], day=1)
    place(api, "O-2", [("A", 1)], day=2)

    r = cancel(api, "O-1", "over-ordered", [(1, 2)])

    assert r.status_code == 200, r.text
    assert r.json()["status"] == "backordered"
    assert quantities(r.json()) == [(1, 2, 1, 0, 2)]
    assert queue(api, "A") == [("O-1", 1, 1), ("O-2", 1, 2)]
    assert stock(api, "A") == {"on_hand": 2, "allocated": 2, "available": 0, "backordered": 2, "incoming": 0}
    assert shipments(api, "O-1") == [("pick", [(1, 2)])]
    [event] = [e["data"] for e in events(api, "O-1") if e["type"] == "cancelled"]
    assert event == {
        "reason": "over-ordered",
        "reason_code": "operations",
        "lines": [{"line_no": 1, "sku": "A", "qty": 2, "backordered": 2, "allocated": 0}],
    }


def test_cancelling_allocated_units_gives_them_at_once_to_the_next_waiting_line(api):
    put_customer(api)
    put_product(api, "A", on_hand=4)
    put_product(api, "B", on_hand=5)
    place(api, "O-1", [("B", 1), ("A", 4)], day=1)  # all allocated, one shipment in pick
    place(api, "O-2", [("A", 2)], day=2)  # waits for 2
    place(api, "O-3", [("A", 3)], day=3)  # waits for 3

    r = cancel(api, "O-1", "damaged on shelf", [(2, 3)])

    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_fulfillment"
    assert quantities(r.json()) == [(1, 1, 0, 0, 0), (2, 1, 0, 0, 3)]
    # the shipment in pick shrank to what is left
    assert shipments(api, "O-1") == [("pick", [(1, 1), (2, 1)])]
    # 3 freed units: O-2 is filled (2), O-3 gets the third
    assert quantities(order_json(api, "O-2")) == [(1, 2, 0, 0, 0)]
    assert order_json(api, "O-2")["status"] == "in_fulfillment"
    assert quantities(order_json(api, "O-3")) == [(1, 1, 2, 0, 0)]
    assert queue(api, "A") == [("O-3", 2, 1)]
    assert shipments(api, "O-2") == [("pick", [(1, 2)])]
    assert shipments(api, "O-3") == [("pick", [(1, 1)])]
    assert stock(api, "A") == {"on_hand": 4, "allocated": 4, "available": 0, "backordered": 2, "incoming": 0}


def test_cancelling_the_waiting_rest_of_a_dispatched_order_makes_it_dispatched(api):
    put_customer(api)
    put_product(api, "A", on_hand=1)
    place(api, "O-1", [("A", 3)], day=1)
    [shipment_id] = shipment_ids(api, "O-1")
    advance(api, shipment_id)
    advance(api, shipment_id)
    r = api.post(f"/shipments/{shipment_id}/advance", {"carrier": "DHL", "tracking_number": "TRK-1"})
    assert r.status_code == 200, r.text
    assert order_json(api, "O-1")["status"] == "backordered"

    r = cancel(api, "O-1", "will not wait")

    assert r.status_code == 200, r.text
    assert r.json()["status"] == "dispatched"
    assert quantities(r.json()) == [(1, 0, 0, 1, 2)]
    assert queue(api, "A") == []


def test_cancelling_a_waiting_line_of_a_ship_complete_order_releases_the_rest(api):
    put_customer(api)
    put_product(api, "A", on_hand=2)
    put_product(api, "B")
    place(api, "O-1", [("A", 2), ("B", 3)], day=1, ship_policy="complete")
    assert shipments(api, "O-1") == []

    r = cancel(api, "O-1", "B discontinued", [(2, 3)])

    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_fulfillment"
    assert quantities(r.json()) == [(1, 2, 0, 0, 0), (2, 0, 0, 0, 3)]
    assert shipments(api, "O-1") == [("pick", [(1, 2)])]


def test_unreleased_units_of_a_ship_complete_order_can_be_cancelled_and_go_to_the_queue(api):
    put_customer(api)
    put_product(api, "A", on_hand=2)
    put_product(api, "B")
    place(api, "O-1", [("A", 2), ("B", 1)], day=1, ship_policy="complete")  # A held, reserved
    place(api, "O-2", [("A", 1)], day=2)

    r = cancel(api, "O-1", "wrong colour", [(1, 1)])

    assert r.status_code == 200, r.text
    assert quantities(r.json()) == [(1, 1, 0, 0, 1), (2, 0, 1, 0, 0)]
    assert quantities(order_json(api, "O-2")) == [(1, 1, 0, 0, 0)]
    assert shipments(api, "O-1") == []
    assert shipments(api, "O-2") == [("pick", [(1, 1)])]


# ---- what cannot be cancelled -------------------------------------------------------------------


def _packed_order(api: Any) -> int:
    """O-1: 3 units of A allocated and packed; 2 units of B waiting. O-2 waits for A."""
    put_customer(api)
    put_product(api, "A", on_hand=3)
    put_product(api, "B")
    place(api, "O-1", [("A", 3), ("B", 2)], day=1)
    place(api, "O-2", [("A", 1)], day=2)
    [shipment_id] = shipment_ids(api, "O-1")
    assert advance(api, shipment_id)["status"] == "pack"
    return shipment_id


def test_packed_units_cannot_be_cancelled_and_nothing_changes(api):
    shipment_id = _packed_order(api)
    before = (order_json(api, "O-1"), order_json(api, "O-2"), stock(api, "A"), stock(api, "B"), events(api, "O-1"))

    r = cancel(api, "O-1", "too late", [(1, 1)])

    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["line_no"] == 1
    # a request mixing a cancellable line with a packed one is refused whole
    r = cancel(api, "O-1", "too late", [(2, 2), (1, 3)])
    assert r.status_code == 409, r.text
    after = (order_json(api, "O-1"), order_json(api, "O-2"), stock(api, "A"), stock(api, "B"), events(api, "O-1"))
    assert after == before
    assert quantities(after[0]) == [(1, 3, 0, 0, 0), (2, 0, 2, 0, 0)]
    assert api.get(f"/shipments/{shipment_id}").json()["lines"] == [{"line_no": 1, "sku": "A", "qty": 3}]
    assert api.get(f"/shipments/{shipment_id}").json()["status"] == "pack"
    assert queue(api, "B") == [("O-1", 2, 1)]


def test_cancelling_a_whole_order_with_packed_units_cancels_only_the_outstanding_ones(api):
    shipment_id = _packed_order(api)

    r = cancel(api, "O-1", "customer request")

    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_fulfillment"
    assert quantities(r.json()) == [(1, 3, 0, 0, 0), (2, 0, 0, 0, 2)]
    assert api.get(f"/shipments/{shipment_id}").json()["status"] == "pack"
    assert queue(api, "B") == []
    assert queue(api, "A") == [("O-2", 1, 1)]


def test_an_order_whose_units_are_all_packed_has_nothing_to_cancel(api):
    put_customer(api)
    put_product(api, "A", on_hand=3)
    place(api, "O-1", [("A", 3)], day=1)
    [shipment_id] = shipment_ids(api, "O-1")
    advance(api, shipment_id)

    r = cancel(api, "O-1", "too late")

    assert r.status_code == 409, r.text
    assert quantities(order_json(api, "O-1")) == [(1, 3, 0, 0, 0)]
    assert stock(api, "A") == {"on_hand": 3, "allocated": 3, "available": 0, "backordered": 0, "incoming": 0}


def test_dispatched_units_cannot_be_cancelled(api):
    put_customer(api)
    put_product(api, "A", on_hand=3)
    place(api, "O-1", [("A", 3)], day=1)
    [shipment_id] = shipment_ids(api, "O-1")
    advance(api, shipment_id)
    advance(api, shipment_id)
    r = api.post(f"/shipments/{shipment_id}/advance", {"carrier": "DHL", "tracking_number": "TRK-1"})
    assert r.status_code == 200, r.text
    assert order_json(api, "O-1")["status"] == "dispatched"

    r = cancel(api, "O-1", "too late", [(1, 1)])

    assert r.status_code == 409, r.text
    assert quantities(order_json(api, "O-1")) == [(1, 0, 0, 3, 0)]
    assert stock(api, "A") == {"on_hand": 0, "allocated": 0, "available": 0, "backordered": 0, "incoming": 0}


def test_cancelling_more_units_than_are_outstanding_is_refused(api):
    put_customer(api)
    put_product(api, "A", on_hand=1)
    place(api, "O-1", [("A", 3)], day=1)

    r = cancel(api, "O-1", "typo", [(1, 4)])

    assert r.status_code == 409, r.text
    assert r.json()["errors"] == [{"line_no": 1, "sku": "A", "requested": 4, "cancellable": 3}]
    assert quantities(order_json(api, "O-1")) == [(1, 1, 2, 0, 0)]


def test_cancelling_an_unknown_line_is_refused_with_422_and_nothing_changes(api):
    put_customer(api)
    put_product(api, "A")
    place(api, "O-1", [("A", 3)], day=1)

    r = cancel(api, "O-1", "typo", [(1, 1), (7, 1)])

    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert [e["value"] for e in r.json()["errors"]] == [7]
    assert quantities(order_json(api, "O-1")) == [(1, 0, 3, 0, 0)]
    assert queue(api, "A") == [("O-1", 3, 1)]
    assert [e["type"] for e in events(api, "O-1") if e["type"] == "cancelled"] == []


def test_a_cancellation_needs_a_reason_and_known_fields(api):
    put_customer(api)
    put_product(api, "A")
    place(api, "O-1", [("A", 3)], day=1)

    assert api.post("/orders/O-1/cancel", {}).status_code == 422
    assert api.post("/orders/O-1/cancel", {"reason": ""}).status_code == 422
    assert api.post("/orders/O-1/cancel", {"reason": "x", "lines": [{"line_no": 1, "qty": 0}]}).status_code == 422
    assert api.post("/orders/O-1/cancel", {"reason": "x", "refund": True}).status_code == 422
    assert api.post("/orders/NOPE/cancel", {"reason": "x"}).status_code == 404
    assert quantities(order_json(api, "O-1")) == [(1, 0, 3, 0, 0)]


def test_a_channel_cannot_cancel_another_channels_order(api):
    put_customer(api)
    put_product(api, "A")
    place(api, "O-1", [("A", 3)], day=1, channel="web")
    pos = api.as_role(Role.CHANNEL, channel="pos")

    r = pos.post("/orders/O-1/cancel", {"reason": "not mine"})

    assert r.status_code == 404, r.text
    assert quantities(order_json(api, "O-1")) == [(1, 0, 3, 0, 0)]


# ---- priority -----------------------------------------------------------------------------------


def test_raising_an_orders_priority_moves_its_lines_up_the_queue(api):
    put_customer(api)
    put_product(api, "A")
    put_product(api, "B")
    place(api, "O-1", [("A", 2)], day=1)
    place(api, "O-2", [("A", 2)], day=2)
    place(api, "O-3", [("B", 1), ("A", 2)], day=3)
    assert queue(api, "A") == [("O-1", 2, 1), ("O-2", 2, 2), ("O-3", 2, 3)]

    r = api.post("/orders/O-3/priority", {"priority": 7})

    assert r.status_code == 200, r.text
    assert r.json()["priority"] == 7
    assert order_json(api, "O-3")["priority"] == 7
    assert queue(api, "A") == [("O-3", 2, 1), ("O-1", 2, 2), ("O-2", 2, 3)]
    assert queue(api, "B") == [("O-3", 1, 1)]
    changed = [e["data"] for e in events(api, "O-3") if e["type"] == "priority_changed"]
    assert changed == [{"from": 0, "to": 7}]

    r = api.post("/receipts", {"grn_number": "GRN-1", "lines": [{"sku": "A", "qty": 3}]})

    assert r.status_code == 201, r.text
    assert r.json()["allocations"] == [
        {"order_number": "O-3", "line_no": 2, "sku": "A", "qty": 2},
        {"order_number": "O-1", "line_no": 1, "sku": "A", "qty": 1},
    ]


def test_a_new_priority_re_dates_the_queue(api):
    put_customer(api)
    put_product(api, "A")
    place(api, "O-1", [("A", 2)], day=1)
    place(api, "O-2", [("A", 2)], day=2)
    r = api.post(
        "/purchase-orders",
        {"po_number": "PO-1", "supplier": "Acme", "lines": [{"sku": "A", "qty": 2, "expected_date": "2027-01-20"}]},
    )
    assert r.status_code == 201, r.text
    assert [x["eta"] for x in (order_json(api, "O-1")["lines"][0], order_json(api, "O-2")["lines"][0])] == [
        "2027-01-20",
        None,
    ]

    assert api.post("/orders/O-2/priority", {"priority": 1}).status_code == 200

    assert order_json(api, "O-2")["lines"][0]["eta"] == "2027-01-20"
    assert order_json(api, "O-1")["lines"][0]["eta"] is None


def test_lowering_a_priority_moves_the_order_down_and_bad_priorities_are_refused(api):
    put_customer(api)
    put_product(api, "A")
    place(api, "O-1", [("A", 1)], day=1)
    place(api, "O-2", [("A", 1)], day=2)

    assert api.post("/orders/O-1/priority", {"priority": -3}).status_code == 200
    assert queue(api, "A") == [("O-2", 1, 1), ("O-1", 1, 2)]

    assert api.post("/orders/O-1/priority", {"priority": 5000}).status_code == 422
    assert api.post("/orders/O-1/priority", {"priority": 1, "why": "vip"}).status_code == 422
    assert api.post("/orders/NOPE/priority", {"priority": 1}).status_code == 404
    assert order_json(api, "O-1")["priority"] == -3


def test_a_cancellation_records_the_reason_code_it_was_sent_with(api):
    put_customer(api)
    put_product(api, "A")
    place(api, "O-1", [("A", 2)], day=1)
    r = api.post("/orders/O-1/cancel", {"reason": "phoned in: wants the blue one", "reason_code": "customer"})
    assert r.status_code == 200, r.text
    [event] = [e["data"] for e in events(api, "O-1") if e["type"] == "cancelled"]
    assert (event["reason"], event["reason_code"]) == ("phoned in: wants the blue one", "customer")
    refused = api.post("/orders/O-1/cancel", {"reason": "x", "reason_code": "whim"})
    assert refused.status_code == 422 and "reason_code" in refused.text
