"""The scheduled jobs, on a clock the test moves: aged-out back orders are cancelled, waiting lines
behind a late purchase order are re-dated, pre-orders are released on their date (PRODUCT.md rules 8, 9, 11)."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from oms.domain.policy import BackorderMode, BackorderPolicy
from oms.fulfillment import use_cases as fulfillment
from oms.orders import jobs
from oms.store.tables import events

from ..builders import Shop


def test_units_that_waited_longer_than_the_policy_allows_are_cancelled_as_aged_out(shop: Shop) -> None:
    shop.product("A", on_hand=1, policy=BackorderPolicy(auto_cancel_after_days=3))
    shop.order("O-1", [("A", 3)])
    assert jobs.cancel_aged_backorders(shop.store, shop.now + timedelta(days=2, hours=23)) == 0
    assert jobs.cancel_aged_backorders(shop.store, shop.now + timedelta(days=3)) == 1
    line = shop.load("O-1").lines[0]
    assert (line.allocated_qty, line.backordered_qty, line.cancelled_qty) == (1, 0, 2)
    data = shop.read(lambda conn: conn.scalar(select(events.c.data).where(events.c.type == "cancelled")))
    assert (data if isinstance(data, dict) else json.loads(data))["reason_code"] == "aged_out"
    assert jobs.cancel_aged_backorders(shop.store, shop.now + timedelta(days=30)) == 0  # nothing left to cancel


def test_lines_behind_a_late_purchase_order_are_dated_again(shop: Shop) -> None:
    shop.product("A")
    due = shop.now.date() + timedelta(days=1)
    shop.purchase_order("PO-1", [("A", 5, due)])
    shop.order("O-1", [("A", 2)])
    assert shop.load("O-1").lines[0].eta == due
    assert jobs.redate_late_po_skus(shop.store, shop.now) == 0  # not late yet
    later = shop.now + timedelta(days=4)
    assert jobs.redate_late_po_skus(shop.store, later) == 1
    # Without a grace period a late PO's units count from today: never a date in the past.
    assert shop.load("O-1").lines[0].eta == later.date()


def test_pre_ordered_units_are_released_on_their_release_date(shop: Shop) -> None:
    release = shop.now.date() + timedelta(days=2)
    policy = BackorderPolicy(
        BackorderMode.PREORDER, preorder_ends_at=shop.now + timedelta(days=1), release_date=release
    )
    shop.product("P", on_hand=5, policy=policy)
    shop.order("O-1", [("P", 2)])
    shop.run(fulfillment.release_due)
    assert shop.load("O-1").lines[0].released_qty == 0  # held until the release date
    shop.tick(days=2)
    shop.run(fulfillment.release_due)
    assert shop.load("O-1").lines[0].released_qty == 2
