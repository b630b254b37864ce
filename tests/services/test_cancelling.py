"""Cancelling: waiting units leave the queue, allocated units go to the next in line, and every
cancellation keeps its reason and code (PRODUCT.md rules 2, 8, 10)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from oms.domain.errors import Conflict, Invalid
from oms.domain.fulfillment import CancelReason
from oms.store.tables import events

from ..builders import Shop


def line_state(shop: Shop, number: str) -> tuple[int, int, int]:
    """(allocated, back-ordered, cancelled) of the order's first line."""
    x = shop.load(number).lines[0]
    return x.allocated_qty, x.backordered_qty, x.cancelled_qty


def test_cancelling_waiting_units_takes_them_out_of_the_queue(shop: Shop) -> None:
    shop.product("A")
    shop.order("O-1", [("A", 3)])
    shop.order("O-2", [("A", 1)])
    shop.cancel("O-1", lines=[(1, 2)])
    assert line_state(shop, "O-1") == (0, 1, 2)
    shop.receive("GRN-1", [("A", 2)])
    assert line_state(shop, "O-1") == (1, 0, 2) and line_state(shop, "O-2") == (1, 0, 0)


def test_cancelled_allocated_units_go_to_the_next_in_line(shop: Shop) -> None:
    shop.product("A", on_hand=2)
    shop.order("O-1", [("A", 2)])
    shop.tick(minutes=1)
    shop.order("O-2", [("A", 2)])
    shop.cancel("O-1")
    assert line_state(shop, "O-1") == (0, 0, 2)
    assert line_state(shop, "O-2") == (2, 0, 0)


def test_a_cancellation_keeps_its_reason_and_code(shop: Shop) -> None:
    shop.product("A")
    shop.order("O-1", [("A", 1)])
    shop.order("O-2", [("A", 1)])
    shop.cancel("O-1", "duplicate order", code=CancelReason.OPERATIONS)
    shop.cancel("O-2", "customer changed their mind")  # no code: read from the text
    cancelled = shop.read(lambda conn: list(conn.scalars(select(events.c.data).where(events.c.type == "cancelled"))))
    found = sorted((d if isinstance(d, dict) else json.loads(d))["reason_code"] for d in cancelled)
    assert found == ["customer", "operations"]


def test_an_unknown_line_or_too_many_units_is_refused_and_changes_nothing(shop: Shop) -> None:
    shop.product("A")
    shop.order("O-1", [("A", 2)])
    with pytest.raises(Invalid):
        shop.cancel("O-1", lines=[(9, 1)])
    with pytest.raises(Conflict):
        shop.cancel("O-1", lines=[(1, 3)])
    assert line_state(shop, "O-1") == (0, 2, 0)
