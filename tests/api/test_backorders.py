"""The Back Orders tab through the API: filters, both sorts, cursor paging, and queue positions that
are exactly the order the engine allocates in under every allocation rule (PRODUCT.md rules 2, 4, 5, 9)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ..builders import place, put_customer, put_product

PROBLEM = "application/problem+json"


# ---- local setup helpers ------------------------------------------------------------------------


def set_rule(api: Any, keys: list[str]) -> None:
    r = api.put("/settings/allocation-rule", {"keys": keys})
    assert r.status_code == 200, r.text
    assert api.get("/settings/allocation-rule").json() == {"keys": keys}


def backorders(api: Any, **params: Any) -> list[dict[str, Any]]:
    r = api.get("/backorders", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return r.json()["items"]


def keys_of(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(x["order_number"], x["line_no"]) for x in items]


def positions(items: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return [(x["order_number"], x["line_no"], x["queue_position"]) for x in items]


def all_pages(api: Any, limit: int, **params: Any) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": limit, **params}
        if cursor is not None:
            query["cursor"] = cursor
        r = api.get("/backorders", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
        assert pages < 50, "paging does not end"


# ---- filters and sorts --------------------------------------------------------------------------


def _filter_world(api: Any) -> datetime:
    """Two waiting SKUs, four orders of different ages, channels and customers."""
    now = datetime.now(UTC)
    put_customer(api, "C1", "standard")
    put_customer(api, "C2", "gold")
    put_product(api, "S1")
    put_product(api, "S2")
    put_product(api, "S3", on_hand=10)
    place(api, "O-1", [("S1", 2)], placed_at=now - timedelta(days=10, hours=1))
    place(
        api,
        "O-2",
        [("S1", 3), ("S2", 1)],
        customer_id="C2",
        channel="pos",
        placed_at=now - timedelta(days=5, hours=1),
    )
    place(api, "O-3", [("S2", 4), ("S3", 1)], customer_id="C2", placed_at=now - timedelta(days=1, hours=1))
    place(api, "O-4", [("S1", 1)], channel="marketplace", priority=5)  # placed now, boosted
    return now


def test_backorders_list_every_waiting_line_with_its_fields(api):
    _filter_world(api)

    items = backorders(api, sort="age")

    # S3 was in stock: O-3 line 2 does not wait and is not listed
    assert keys_of(items) == [("O-1", 1), ("O-2", 1), ("O-2", 2), ("O-3", 1), ("O-4", 1)]
    first = items[1]
    assert set(first) >= {
        "order_number",
        "channel",
        "line_no",
        "sku",
        "customer_id",
        "customer_tier",
        "placed_at",
        "qty",
        "backordered_qty",
        "queue_position",
        "eta",
        "age_days",
    }
    assert {k: first[k] for k in ["order_number", "channel", "line_no", "sku", "customer_id", "customer_tier"]} == {
        "order_number": "O-2",
        "channel": "pos",
        "line_no": 1,
        "sku": "S1",
        "customer_id": "C2",
        "customer_tier": "gold",
    }
    assert (first["qty"], first["backordered_qty"], first["queue_position"], first["eta"]) == (3, 3, 3, None)
    assert first["placed_at"] == api.get("/orders/O-2").json()["placed_at"]
    assert [x["age_days"] for x in items] == [10, 5, 5, 1, 0]
    assert [x["customer_tier"] for x in items] == ["standard", "gold", "gold", "gold", "standard"]


def test_backorders_are_filtered_by_sku_customer_order_channel_and_age(api):
    _filter_world(api)

    assert positions(backorders(api, sku="S1")) == [("O-4", 1, 1), ("O-1", 1, 2), ("O-2", 1, 3)]
    assert positions(backorders(api, sku="S2")) == [("O-2", 2, 1), ("O-3", 1, 2)]
    assert keys_of(backorders(api, customer_id="C2")) == [("O-2", 1), ("O-2", 2), ("O-3", 1)]
    assert keys_of(backorders(api, customer_id="C1")) == [("O-4", 1), ("O-1", 1)]
    # positions stay those within the whole SKU queue, whatever the filter
    assert positions(backorders(api, order_number="O-2")) == [("O-2", 1, 3), ("O-2", 2, 1)]
    assert keys_of(backorders(api, channel="web")) == [("O-1", 1), ("O-3", 1)]
    assert keys_of(backorders(api, channel="marketplace")) == [("O-4", 1)]
    assert keys_of(backorders(api, min_age_days=0)) == [("O-4", 1), ("O-1", 1), ("O-2", 1), ("O-2", 2), ("O-3", 1)]
    assert keys_of(backorders(api, min_age_days=1)) == [("O-1", 1), ("O-2", 1), ("O-2", 2), ("O-3", 1)]
    assert keys_of(backorders(api, min_age_days=5)) == [("O-1", 1), ("O-2", 1), ("O-2", 2)]
    assert keys_of(backorders(api, min_age_days=6)) == [("O-1", 1)]
    assert keys_of(backorders(api, min_age_days=11)) == []
    assert keys_of(backorders(api, sku="S2", customer_id="C2", channel="web")) == [("O-3", 1)]
    assert keys_of(backorders(api, sku="S1", min_age_days=5, sort="age")) == [("O-1", 1), ("O-2", 1)]
    assert backorders(api, order_number="NOPE") == []


def test_backorders_sort_by_queue_order_or_by_age(api):
    _filter_world(api)

    by_queue = backorders(api, sort="queue")
    by_age = backorders(api, sort="age")
    default = backorders(api)

    # queue order under [priority, placed_at]: the boosted O-4 first, then oldest first
    assert positions(by_queue) == [("O-4", 1, 1), ("O-1", 1, 2), ("O-2", 1, 3), ("O-2", 2, 1), ("O-3", 1, 2)]
    assert default == by_queue
    # age order: oldest placed first, whatever the priority
    assert positions(by_age) == [("O-1", 1, 2), ("O-2", 1, 3), ("O-2", 2, 1), ("O-3", 1, 2), ("O-4", 1, 1)]
    r = api.get("/backorders", params={"sort": "value"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    r = api.get("/backorders", params={"min_age_days": -1})
    assert r.status_code == 422, r.text


# ---- queue position == allocation order ---------------------------------------------------------


def _queue_world(api: Any) -> None:
    """Five orders of 2 units of Q each; tiers, values, priorities and ages all differ.

    order  customer tier  placed_at   priority  order_value
    O-A    standard       11-01       0         100.00
    O-B    platinum       11-02       0          20.00
    O-C    gold           11-03       3         160.00
    O-D    silver         11-04       0          60.00
    O-E    platinum       11-05       3         160.00
    """
    put_customer(api, "CS", "standard")
    put_customer(api, "CV", "silver")
    put_customer(api, "CG", "gold")
    put_customer(api, "CP", "platinum")
    put_product(api, "Q")
    place(api, "O-A", [("Q", 2, "50.00")], customer_id="CS", placed_at="2026-11-01T09:00:00Z")
    place(api, "O-B", [("Q", 2, "10.00")], customer_id="CP", placed_at="2026-11-02T09:00:00Z")
    place(api, "O-C", [("Q", 2, "80.00")], customer_id="CG", placed_at="2026-11-03T09:00:00Z", priority=3)
    place(api, "O-D", [("Q", 2, "30.00")], customer_id="CV", placed_at="2026-11-04T09:00:00Z")
    place(api, "O-E", [("Q", 2, "80.00")], customer_id="CP", placed_at="2026-11-05T09:00:00Z", priority=3)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (["customer_tier", "placed_at"], ["O-B", "O-E", "O-C", "O-D", "O-A"]),
        (["order_value"], ["O-C", "O-E", "O-A", "O-D", "O-B"]),
        (["priority", "placed_at"], ["O-C", "O-E", "O-A", "O-B", "O-D"]),
    ],
    ids=["tier", "value", "priority"],
)
def test_queue_positions_are_the_order_the_engine_allocates_in(api, rule, expected):
    _queue_world(api)
    set_rule(api, rule)

    queue = backorders(api, sku="Q")
    assert [(x["order_number"], x["queue_position"]) for x in queue] == [(n, i) for i, n in enumerate(expected, 1)]

    # 5 units for 10 waiting: the first two lines are filled, the third gets one unit
    r = api.post("/receipts", {"grn_number": "GRN-1", "lines": [{"sku": "Q", "qty": 5}]})

    assert r.status_code == 201, r.text
    assert r.json()["allocations"] == [
        {"order_number": expected[0], "line_no": 1, "sku": "Q", "qty": 2},
        {"order_number": expected[1], "line_no": 1, "sku": "Q", "qty": 2},
        {"order_number": expected[2], "line_no": 1, "sku": "Q", "qty": 1},
    ]
    assert r.json()["unallocated"] == []
    allocated = {n: api.get(f"/orders/{n}").json()["lines"][0]["allocated_qty"] for n in expected}
    assert allocated == {expected[0]: 2, expected[1]: 2, expected[2]: 1, expected[3]: 0, expected[4]: 0}
    after = backorders(api, sku="Q")
    assert [(x["order_number"], x["backordered_qty"], x["queue_position"]) for x in after] == [
        (expected[2], 1, 1),
        (expected[3], 2, 2),
        (expected[4], 2, 3),
    ]
    stock = api.get("/products/Q").json()["stock"]
    assert stock == {"on_hand": 5, "allocated": 5, "available": 0, "backordered": 5, "incoming": 0}


def test_changing_the_rule_reorders_the_queue_and_its_etas(api):
    _queue_world(api)
    r = api.post(
        "/purchase-orders",
        {
            "po_number": "PO-1",
            "supplier": "Acme",
            "lines": [{"sku": "Q", "qty": 4, "expected_date": "2027-01-10"}],
        },
    )
    assert r.status_code == 201, r.text
    r = api.post(
        "/purchase-orders",
        {
            "po_number": "PO-2",
            "supplier": "Acme",
            "lines": [{"sku": "Q", "qty": 4, "expected_date": "2027-02-10"}],
        },
    )
    assert r.status_code == 201, r.text

    # default [priority, placed_at]: C, E take PO-1's 4 units; A, B PO-2's; D is not covered (no lead time)
    queue = backorders(api, sku="Q")
    assert [(x["order_number"], x["eta"]) for x in queue] == [
        ("O-C", "2027-01-10"),
        ("O-E", "2027-01-10"),
        ("O-A", "2027-02-10"),
        ("O-B", "2027-02-10"),
        ("O-D", None),
    ]

    set_rule(api, ["customer_tier", "placed_at"])

    queue = backorders(api, sku="Q")
    assert [(x["order_number"], x["queue_position"], x["eta"]) for x in queue] == [
        ("O-B", 1, "2027-01-10"),
        ("O-E", 2, "2027-01-10"),
        ("O-C", 3, "2027-02-10"),
        ("O-D", 4, "2027-02-10"),
        ("O-A", 5, None),
    ]
    assert api.get("/orders/O-A").json()["lines"][0]["eta"] is None
    assert api.get("/orders/O-D").json()["lines"][0]["eta"] == "2027-02-10"


def test_a_customer_tier_change_moves_their_lines_in_a_tier_ranked_queue(api):
    _queue_world(api)
    set_rule(api, ["customer_tier", "placed_at"])

    r = api.put("/customers/CS", {"name": "Customer CS", "email": "CS@example.com", "tier": "platinum"})
    assert r.status_code == 200, r.text

    queue = backorders(api, sku="Q")
    assert [(x["order_number"], x["customer_tier"], x["queue_position"]) for x in queue] == [
        ("O-A", "platinum", 1),
        ("O-B", "platinum", 2),
        ("O-E", "platinum", 3),
        ("O-C", "gold", 4),
        ("O-D", "silver", 5),
    ]
    r = api.post("/receipts", {"grn_number": "GRN-1", "lines": [{"sku": "Q", "qty": 2}]})
    assert r.status_code == 201, r.text
    assert r.json()["allocations"] == [{"order_number": "O-A", "line_no": 1, "sku": "Q", "qty": 2}]


def test_queue_positions_count_only_lines_of_the_same_sku(api):
    put_customer(api, "C1")
    put_product(api, "P")
    put_product(api, "R")
    place(api, "O-1", [("P", 1), ("R", 1)], placed_at="2026-11-01T09:00:00Z")
    place(api, "O-2", [("R", 1)], placed_at="2026-11-02T09:00:00Z")
    place(api, "O-3", [("P", 1), ("R", 1)], placed_at="2026-11-03T09:00:00Z")

    assert [(x["order_number"], x["sku"], x["queue_position"]) for x in backorders(api)] == [
        ("O-1", "P", 1),
        ("O-1", "R", 1),
        ("O-2", "R", 2),
        ("O-3", "P", 2),
        ("O-3", "R", 3),
    ]


# ---- cursor paging ------------------------------------------------------------------------------


def _paging_world(api: Any) -> None:
    """Eleven waiting lines (5 of P, 6 of R), with ties on placed_at, value, tier and priority."""
    put_customer(api, "CS", "standard")
    put_customer(api, "CG", "gold")
    put_product(api, "P", price="5.00")
    put_product(api, "R", price="7.50")
    same_time = "2026-11-10T12:00:00Z"
    place(api, "O-01", [("P", 1), ("R", 2)], customer_id="CS", placed_at=same_time)
    place(api, "O-02", [("P", 2)], customer_id="CG", placed_at=same_time)
    place(api, "O-03", [("R", 1), ("P", 1), ("R", 1)], customer_id="CG", placed_at="2026-11-09T12:00:00Z")
    place(api, "O-04", [("P", 3)], customer_id="CS", priority=2)
    place(api, "O-05", [("R", 4)], customer_id="CG")
    place(api, "O-06", [("P", 1)], customer_id="CS", placed_at="2026-11-11T00:00:00.123456Z")
    place(api, "O-07", [("R", 1)], customer_id="CS", placed_at="2026-11-11T00:00:00.123457Z", priority=-1)
    place(api, "O-08", [("R", 2)], customer_id="CG", placed_at=same_time)


def _lines(spec: str) -> list[tuple[str, int]]:
    return [(f"O-{x.split('/')[0]}", int(x.split("/")[1])) for x in spec.split()]


@pytest.mark.parametrize(
    ("rule", "sort", "expected"),
    [
        # priority 2 first, then oldest first (ties: order number, line number), priority -1 last
        (["priority", "placed_at"], "queue", "04/1 03/1 03/2 03/3 01/1 01/2 02/1 08/1 06/1 05/1 07/1"),
        # order value high first: 30.00, 20.00 (11-09, then 11-10), 15.00 (11-10, then today), 10, 7.50, 5
        (["order_value"], "queue", "05/1 03/1 03/2 03/3 01/1 01/2 08/1 04/1 02/1 07/1 06/1"),
        # oldest placed first, whatever the rule
        (["priority", "placed_at"], "age", "03/1 03/2 03/3 01/1 01/2 02/1 08/1 06/1 07/1 04/1 05/1"),
    ],
    ids=["queue-priority", "queue-value", "age"],
)
def test_cursor_paging_returns_every_line_exactly_once(api, rule, sort, expected):
    _paging_world(api)
    set_rule(api, rule)
    whole = backorders(api, sort=sort)

    paged, pages = all_pages(api, 3, sort=sort)

    assert keys_of(whole) == _lines(expected)
    assert paged == whole
    assert pages == 4
    filtered, _ = all_pages(api, 2, sort=sort, sku="R")
    assert keys_of(filtered) == [k for k, x in zip(keys_of(whole), whole, strict=True) if x["sku"] == "R"]
    assert sorted(x["queue_position"] for x in filtered) == [1, 2, 3, 4, 5, 6]


def test_the_last_page_is_exact_when_lines_divide_evenly(api):
    put_customer(api, "C1")
    put_product(api, "P")
    for i in range(4):
        place(api, f"O-{i}", [("P", 1)], placed_at=f"2026-11-0{i + 1}T09:00:00Z")

    first = api.get("/backorders", params={"limit": 2}).json()
    second = api.get("/backorders", params={"limit": 2, "cursor": first["next_cursor"]}).json()

    assert keys_of(first["items"]) == [("O-0", 1), ("O-1", 1)]
    assert keys_of(second["items"]) == [("O-2", 1), ("O-3", 1)]
    assert second["next_cursor"] is None


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_an_invalid_cursor_is_refused_with_422(api):
    _filter_world(api)

    for cursor in ["not a cursor", "%%%", _b64({"a": 1}), _b64([1, 2]), _b64("x")]:
        r = api.get("/backorders", params={"cursor": cursor})

        assert r.status_code == 422, (cursor, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["errors"] == [{"field": "cursor", "reason": "invalid cursor"}]


def test_a_cursor_with_values_of_the_wrong_type_is_refused_with_422(api):
    _filter_world(api)
    # [priority, placed_at] + order_number, line_no for the queue; the 3 age fields for age
    for sort, n in [("queue", 4), ("age", 3)]:
        r = api.get("/backorders", params={"sort": sort, "cursor": _b64(["yesterday"] * n)})

        assert r.status_code == 422, (sort, r.text)
        assert r.headers["content-type"] == PROBLEM


def test_a_cursor_given_out_before_the_rule_changed_is_refused_not_crashed(api):
    _filter_world(api)
    first = api.get("/backorders", params={"limit": 2}).json()
    assert keys_of(first["items"]) == [("O-4", 1), ("O-1", 1)]
    set_rule(api, ["promised_date", "placed_at"])

    r = api.get("/backorders", params={"limit": 2, "cursor": first["next_cursor"]})

    # the old cursor holds (priority, placed_at, order_number, line_no); the new order wants a date first
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "cursor", "reason": "invalid cursor"}]
