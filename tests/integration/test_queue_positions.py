"""Queue positions and keyset pages of the Back Orders listing against the domain's own queue order.

The listing counts who is ahead through disjoint index ranges and reads the rows after a cursor as
merged ranges (store/queue.py). Here every position and every page, under rules that use every key
(NULL promised dates included), with every filter and both sorts, page sizes 1, 2 and 500, is
checked against `order_queue` applied to the lines read back from the store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from oms.domain.allocation import QueueLine, order_queue, parse_rule
from oms.store.tables import order_lines

from ..api.test_backorders import set_rule
from ..builders import place, put_customer, put_product, rfc3339

RULES = [
    ["priority", "placed_at"],
    ["customer_tier", "order_value"],
    ["promised_date", "priority"],
    ["order_value", "promised_date", "customer_tier"],
]


def _world(api: Any) -> datetime:
    """Three SKUs, 24 orders with many ties (same time, same priority, same value), two channels.

    R has a PO for 5 units and no lead time, so its first lines are promised a date and the rest
    none (NULL promised dates sort last); S has a lead time, T neither.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    for cid, tier in [("C1", "standard"), ("C2", "silver"), ("C3", "gold"), ("C4", "platinum")]:
        put_customer(api, cid, tier)
    put_product(api, "R")
    r = api.put("/products/S", {"name": "S", "unit_price": "10.00", "lead_time_days": 9})
    assert r.status_code == 201, r.text
    put_product(api, "T")
    r = api.post(
        "/purchase-orders",
        {"po_number": "PO-R", "supplier": "Acme", "lines": [{"sku": "R", "qty": 5, "expected_date": "2027-03-01"}]},
    )
    assert r.status_code == 201, r.text
    for i in range(24):
        skus = ["R", "S", "T"][i % 3 :] + ["R", "S", "T"][: i % 3]
        lines = [(sku, 1 + (i + k) % 2, ["5.00", "7.50"][(i // 2 + k) % 2]) for k, sku in enumerate(skus[: 1 + i % 3])]
        place(
            api,
            f"O-{i:02d}",
            lines,
            customer_id=f"C{1 + i % 4}",
            channel=["web", "pos"][i // 3 % 2],
            placed_at=rfc3339(now - timedelta(days=[40, 40, 20, 10, 10, 1][i % 6], hours=1)),
            priority=[0, 0, 2, 0, 5, 2][i // 4 % 6],
        )
    return now


def _oracle(api: Any, keys: list[str]) -> tuple[dict[tuple[str, int], int], list[Any]]:
    """(order number, line no) -> position by the domain's order, and every waiting line's row."""
    rows = api.store.read(lambda c: c.execute(select(order_lines).where(order_lines.c.backordered_qty > 0)).all())
    rule = parse_rule(keys)
    by_sku: dict[str, list[QueueLine]] = {}
    for r in rows:
        line = QueueLine(r.id, r.order_number, r.line_no, r.sku, r.backordered_qty, r.priority, r.tier_rank,
                         r.order_value, r.placed_at, r.promised_date)  # fmt: skip
        by_sku.setdefault(r.sku, []).append(line)
    out = {}
    for lines in by_sku.values():
        for pos, line in enumerate(order_queue(rule, lines), start=1):
            out[(line.order_number, line.line_no)] = pos
    return out, rows


def _pages(api: Any, limit: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):
        query = {"limit": limit, **params} | ({"cursor": cursor} if cursor else {})
        r = api.get("/backorders", params=query)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("paging does not end")


FILTERS: list[dict[str, Any]] = [
    {},
    {"sku": "R"},
    {"customer_id": "C2"},
    {"channel": "pos"},
    {"channel": "web", "min_age_days": 15},
    {"order_number": "O-05"},
]


@pytest.mark.parametrize("keys", RULES, ids=["-".join(k) for k in RULES])
def test_every_position_and_page_is_the_domains_queue_order(api, keys):
    now = _world(api)
    set_rule(api, keys)
    expected, rows = _oracle(api, keys)
    assert any(r.promised_date is None for r in rows if r.sku == "R")
    assert any(r.promised_date is not None for r in rows if r.sku == "R")
    rule = parse_rule(keys)

    for params in FILTERS:
        wanted = [
            r for r in rows
            if all(getattr(r, k) == v for k, v in params.items() if k != "min_age_days")
            and ("min_age_days" not in params or now - r.placed_at >= timedelta(days=params["min_age_days"]))
        ]  # fmt: skip
        by_queue = [
            (q.order_number, q.line_no)
            for q in order_queue(rule, [QueueLine(r.id, r.order_number, r.line_no, r.sku, r.backordered_qty,
                                                  r.priority, r.tier_rank, r.order_value, r.placed_at,
                                                  r.promised_date) for r in wanted])
        ]  # fmt: skip
        by_age = [
            (r.order_number, r.line_no) for r in sorted(wanted, key=lambda r: (r.placed_at, r.order_number, r.line_no))
        ]
        for sort, order in (("queue", by_queue), ("age", by_age)):
            for limit in (1, 2, 500):
                items = _pages(api, limit, params | {"sort": sort})
                got = [(x["order_number"], x["line_no"]) for x in items]
                assert got == order, (params, sort, limit)
                assert {k: x["queue_position"] for k, x in zip(got, items, strict=True)} == {
                    k: expected[k] for k in got
                }


def test_positions_of_lines_deep_in_a_queue_with_a_boosted_line_between_them(api):
    """A SKU's lines on one page far apart in its queue: the gap between them is counted, not assumed."""
    put_customer(api, "C1")
    put_customer(api, "C2")
    put_product(api, "P")
    base = datetime(2026, 10, 1, 9, tzinfo=UTC)
    for i in range(30):
        place(api, f"N-{i:02d}", [("P", 1)], customer_id="C2" if i in (3, 17, 29) else "C1",
              placed_at=rfc3339(base + timedelta(hours=i)), priority=5 if i == 17 else 0)  # fmt: skip

    items = _pages(api, 50, {"customer_id": "C2", "sort": "age"})

    # N-17 is boosted to the head; N-03 has N-17 and N-00..N-02 ahead; N-29 has all 29 others ahead
    assert [(x["order_number"], x["queue_position"]) for x in items] == [("N-03", 5), ("N-17", 1), ("N-29", 30)]
