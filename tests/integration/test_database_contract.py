"""What the database does on its own, and what the code must leave alone for it.

The report rollups' triggers (migrations 0009, 0010) file each order line's sums under its
placement facts (`tables.ORDER_LINE_FACTS`): written at placement, never updated. These tests send
every kind of use case through the real services on both stores and check every UPDATE of
order_lines against that list, and that the triggers' sums still equal a recount afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import event, select

from oms.catalog import use_cases as catalog
from oms.domain.allocation import Tier
from oms.domain.policy import BackorderMode, BackorderPolicy
from oms.engine import MUTABLE
from oms.fulfillment import use_cases as fulfillment
from oms.orders import jobs
from oms.orders import use_cases as orders
from oms.replenishment import use_cases as replenishment
from oms.reports import rollups
from oms.store.db import Store
from oms.store.tables import ORDER_LINE_FACTS, shipments

T0 = datetime(2030, 5, 4, 9, 0, tzinfo=UTC)
SET = re.compile(r"UPDATE order_lines SET (.*?) (?:FROM|WHERE) ", re.S)


@contextmanager
def order_line_updates(store: Store) -> Iterator[list[str]]:
    """The columns each UPDATE of order_lines sets while inside."""
    seen: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        for m in SET.finditer(statement):
            seen.extend(part.split("=")[0].strip() for part in m.group(1).split(","))

    event.listen(store.engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", on_execute)


def test_the_columns_use_cases_may_change_are_never_placement_facts():
    assert set(MUTABLE).isdisjoint(ORDER_LINE_FACTS)


def _history(store: Store) -> None:
    """Every kind of write a line goes through: placement, receipts, cancellations, shipping,
    priority, tier changes, purchase orders, adjustments, the aged-out and late-PO jobs."""
    at = [T0]

    def do(use_case: Any) -> Any:
        at[0] += timedelta(minutes=5)
        return store.write(use_case, actor="test", now=at[0])

    aging = BackorderPolicy(mode=BackorderMode.ALWAYS, auto_cancel_after_days=3)
    do(lambda u: catalog.put_product(u, catalog.ProductSpec("A", "A", Decimal("10.00"), 5)))
    do(lambda u: catalog.put_product(u, catalog.ProductSpec("B", "B", Decimal("4.50"), None, aging)))
    for cid, tier in (("C1", Tier.GOLD), ("C2", Tier.STANDARD)):
        do(lambda u, c=cid, t=tier: catalog.put_customer(u, catalog.CustomerSpec(c, c, f"{c}@x.test", t)))
    do(lambda u: catalog.adjust_stock(u, "A", 3, "count"))
    do(lambda u: replenishment.create_po(u, "PO-1", "Acme", [replenishment.PoLine("A", 6, date(2030, 6, 1))]))
    for n, (cid, lines) in enumerate((("C1", [("A", 2), ("B", 1)]), ("C2", [("A", 4)]), ("C2", [("B", 3)]))):
        cmd = orders.PlaceOrder(f"SO-{n}", "web", cid, [orders.NewLine(s, q) for s, q in lines])
        do(lambda u, c=cmd: orders.place_order(u, c))
    do(lambda u: orders.set_priority(u, "SO-1", 5))
    do(lambda u: catalog.put_customer(u, catalog.CustomerSpec("C2", "C2", "C2@x.test", Tier.PLATINUM)))
    do(lambda u: catalog.set_allocation_rule(u, ["customer_tier", "placed_at"]))
    do(lambda u: replenishment.patch_po(u, "PO-1", [replenishment.PoLineChange("A", date(2030, 6, 9), 5)]))
    do(lambda u: replenishment.receive_goods(u, "G-1", [replenishment.ReceiptLine("A", 3)], "PO-1"))
    do(lambda u: orders.cancel_order(u, "SO-0", "changed mind", [(2, 1)]))
    do(lambda u: catalog.adjust_stock(u, "B", 1, "found one"))
    ids = store.read(lambda c: list(c.scalars(select(shipments.c.id).order_by(shipments.c.id))))
    for _ in range(3):
        do(lambda u: fulfillment.advance_shipment(u, ids[0], "DHL", "T-1"))
    do(lambda u: replenishment.cancel_po(u, "PO-1"))
    jobs.cancel_aged_backorders(store, at[0] + timedelta(days=10))
    jobs.redate_late_po_skus(store, at[0] + timedelta(days=40))
    do(fulfillment.release_due)


def test_no_use_case_updates_a_placement_fact_and_the_rollups_stay_exact(store):
    with order_line_updates(store) as updated:
        _history(store)
    assert updated, "the history should have updated order lines"
    assert set(updated) <= set(MUTABLE) | {"tier_rank"}, sorted(set(updated))
    assert set(updated).isdisjoint(ORDER_LINE_FACTS)
    assert store.read(rollups.current) == store.read(rollups.recount)
