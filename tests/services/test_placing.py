"""Placing an order: each line takes what is on the shelf, the rest waits in the SKU's queue, as the
SKU's back-order policy allows; a refused order stores nothing (PRODUCT.md rules 1-3)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from oms.domain.errors import Conflict, InsufficientStock, Invalid
from oms.domain.fulfillment import ShipPolicy
from oms.domain.policy import BackorderMode, BackorderPolicy
from oms.store.tables import events, order_lines, orders

from ..builders import Shop


def counts(shop: Shop) -> tuple[int, int, int]:
    """(orders, order lines, events) stored."""

    def q(conn):
        return tuple(conn.scalar(select(func.count()).select_from(t)) for t in (orders, order_lines, events))

    return shop.read(q)


def quantities(order) -> list[tuple[str, int, int]]:
    return [(x.sku, x.allocated_qty, x.backordered_qty) for x in order.lines]


def test_each_line_takes_the_shelf_and_the_rest_waits(shop: Shop) -> None:
    shop.product("A", on_hand=3)
    shop.product("B", on_hand=10)
    placed = shop.order("O-1", [("A", 5), ("B", 2)])
    assert quantities(placed) == [("A", 3, 2), ("B", 2, 0)]
    assert quantities(shop.load("O-1")) == [("A", 3, 2), ("B", 2, 0)]


def test_the_order_value_is_the_sum_of_its_lines_at_the_catalogue_or_given_price(shop: Shop) -> None:
    shop.product("A", price="2.50", on_hand=10)
    shop.product("B", price="4.00", on_hand=10)
    placed = shop.order("O-1", [("A", 2), ("B", 1, "3.00")])
    assert str(placed.order_value) == "8.00"


def test_a_sku_that_never_back_orders_refuses_the_whole_order_and_stores_nothing(shop: Shop) -> None:
    shop.product("A", on_hand=5)
    shop.product("N", on_hand=1, policy=BackorderPolicy(BackorderMode.NEVER))
    before = counts(shop)
    with pytest.raises(InsufficientStock) as refused:
        shop.order("O-1", [("A", 1), ("N", 2)])
    assert "N" in str(refused.value)
    assert counts(shop) == before


def test_the_back_order_cap_counts_what_already_waits(shop: Shop) -> None:
    shop.product("A", policy=BackorderPolicy(max_backorder_qty=5))
    shop.order("O-1", [("A", 4)])
    with pytest.raises(InsufficientStock):
        shop.order("O-2", [("A", 2)])
    assert quantities(shop.order("O-3", [("A", 1)])) == [("A", 0, 1)]


def test_when_incoming_back_orders_only_what_open_purchase_orders_still_cover(shop: Shop) -> None:
    shop.product("A", policy=BackorderPolicy(BackorderMode.WHEN_INCOMING))
    with pytest.raises(InsufficientStock):
        shop.order("O-0", [("A", 1)])
    shop.purchase_order("PO-1", [("A", 3, shop.now.date())])
    shop.order("O-1", [("A", 2)])
    with pytest.raises(InsufficientStock):
        shop.order("O-2", [("A", 2)])
    assert quantities(shop.order("O-3", [("A", 1)])) == [("A", 0, 1)]


def test_an_unknown_sku_or_customer_is_refused(shop: Shop) -> None:
    shop.product("A", on_hand=1)
    with pytest.raises(Invalid):
        shop.order("O-1", [("NOPE", 1)])
    with pytest.raises(Invalid):
        shop.order("O-2", [("A", 1)], customer="NOBODY")
    assert counts(shop)[0] == 0


def test_the_same_order_again_is_the_stored_one_and_a_different_one_under_its_number_is_refused(shop: Shop) -> None:
    shop.product("A", on_hand=1)
    first = shop.order("O-1", [("A", 1)])
    again = shop.order("O-1", [("A", 1)])
    assert again.id == first.id and quantities(again) == [("A", 1, 0)]
    with pytest.raises(Conflict):
        shop.order("O-1", [("A", 2)])
    assert counts(shop)[:2] == (1, 1)


def test_ship_complete_holds_the_allocated_units_until_every_line_is_covered(shop: Shop) -> None:
    shop.product("A", on_hand=2)
    shop.product("B")
    held = shop.order("O-1", [("A", 2), ("B", 1)], ship_policy=ShipPolicy.COMPLETE)
    assert [x.released_qty for x in held.lines] == [0, 0]
    shop.receive("GRN-1", [("B", 1)])
    released = shop.load("O-1")
    assert [(x.allocated_qty, x.released_qty) for x in released.lines] == [(2, 2), (1, 1)]


def test_every_placement_leaves_its_events(shop: Shop) -> None:
    shop.product("A", on_hand=1)
    shop.order("O-1", [("A", 3)])
    kinds = shop.read(lambda conn: list(conn.scalars(select(events.c.type).where(events.c.order_number == "O-1"))))
    assert sorted(kinds) == ["backordered", "order_placed", "shipment_created"]
