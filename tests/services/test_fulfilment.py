"""Allocated units move Pick → Pack → Awaiting Shipment → Dispatched; dispatch takes them off the
shelf (PRODUCT.md rule 9)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from oms.domain.errors import Conflict, IllegalTransition, Invalid
from oms.store.tables import products, shipments

from ..builders import Shop


def shipment_of(shop: Shop, number: str) -> int:
    ids = shop.read(lambda conn: list(conn.scalars(select(shipments.c.id).where(shipments.c.order_number == number))))
    assert len(ids) == 1, ids
    return int(ids[0])


def stock(shop: Shop, sku: str) -> tuple[int, int, int]:
    row = shop.read(
        lambda conn: conn.execute(
            select(products.c.on_hand, products.c.allocated, products.c.backordered).where(products.c.sku == sku)
        ).one()
    )
    return tuple(row)


def test_a_shipment_walks_its_states_and_dispatch_takes_the_units_off_the_shelf(shop: Shop) -> None:
    shop.product("A", on_hand=5)
    shop.order("O-1", [("A", 2)])
    sid = shipment_of(shop, "O-1")
    assert [shop.advance(sid).status for _ in range(2)] == ["pack", "awaiting_shipment"]
    assert stock(shop, "A") == (5, 2, 0)
    with pytest.raises(Invalid):
        shop.advance(sid)  # dispatch wants a carrier and a tracking number
    assert shop.advance(sid, "DHL", "TRACK-1").status == "dispatched"
    assert stock(shop, "A") == (3, 0, 0)
    assert shop.load("O-1").lines[0].shipped_qty == 2
    with pytest.raises(IllegalTransition):
        shop.advance(sid)


def test_packed_units_can_no_longer_be_cancelled(shop: Shop) -> None:
    shop.product("A", on_hand=1)
    shop.order("O-1", [("A", 1)])
    shop.advance(shipment_of(shop, "O-1"))
    with pytest.raises(Conflict):
        shop.cancel("O-1")
    assert shop.load("O-1").lines[0].cancelled_qty == 0


def test_units_in_pick_can_be_cancelled_and_return_to_the_shelf(shop: Shop) -> None:
    shop.product("A", on_hand=1)
    shop.order("O-1", [("A", 1)])
    sid = shipment_of(shop, "O-1")
    shop.cancel("O-1")
    assert stock(shop, "A") == (1, 0, 0)
    status = shop.read(lambda conn: conn.scalar(select(shipments.c.status).where(shipments.c.id == sid)))
    assert status == "cancelled"
