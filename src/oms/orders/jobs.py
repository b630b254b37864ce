"""Scheduled jobs the worker runs: re-date SKUs waiting on late POs, cancel aged-out back orders.

Both are idempotent and safe on several workers at once: each unit of work is its own transaction
that locks the SKUs first and then re-reads what it is about to change, so a second run (or a
concurrent twin) finds nothing left to do.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from oms import engine
from oms.domain.fulfillment import CancelReason
from oms.domain.policy import policy_from_json
from oms.orders.use_cases import cancel_order
from oms.store.db import Store
from oms.store.reads import default_policy
from oms.store.tables import order_lines, orders, po_lines, products, purchase_orders
from oms.store.uow import UnitOfWork

AGED_OUT_REASON = "aged out"
BATCH_SKUS = 50
MAX_ORDERS_PER_RUN = 10_000


def _order_id(order_number: str) -> Any:
    """The order's id as a subquery: order lines are indexed by order_id, not by order_number."""
    return select(orders.c.id).where(orders.c.order_number == order_number).scalar_subquery()


def late_po_skus(conn: Connection, now: datetime) -> list[str]:
    """SKUs with waiting lines and an open PO line whose expected date has passed."""
    q = (
        select(po_lines.c.sku)
        .join(purchase_orders, purchase_orders.c.id == po_lines.c.po_id)
        .join(products, products.c.sku == po_lines.c.sku)
        .where(
            purchase_orders.c.status == "open",
            po_lines.c.open == 1,
            po_lines.c.qty > po_lines.c.received_qty,
            po_lines.c.expected_date < now.date(),
            products.c.backordered > 0,
        )
        .distinct()
        .order_by(po_lines.c.sku)
    )
    return list(conn.scalars(q))


def redate_late_po_skus(store: Store, now: datetime) -> int:
    """Re-date every SKU waiting on a late PO (its supply now counts at the grace date); returns SKUs."""
    skus = store.read(lambda c: late_po_skus(c, now))
    for i in range(0, len(skus), BATCH_SKUS):
        chunk = skus[i : i + BATCH_SKUS]

        def tx(uow: UnitOfWork, chunk: list[str] = chunk) -> None:
            engine.recompute_etas(uow, chunk)

        store.write(tx, actor="worker:late-po", now=now)
    return len(skus)


def _aged_lines(conn: Connection, now: datetime, order_number: str | None = None) -> dict[str, list[tuple[int, int]]]:
    """Per order: (line_no, back-ordered units) of lines waiting longer than their SKU's policy allows."""
    fallback = default_policy(conn)
    limits: dict[str, int] = {}
    for sku, pol in conn.execute(select(products.c.sku, products.c.backorder_policy).where(products.c.backordered > 0)):
        days = (policy_from_json(pol) or fallback).auto_cancel_after_days
        if days is not None:
            limits[sku] = days
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    if not limits:
        return out
    since = func.coalesce(order_lines.c.backordered_at, order_lines.c.placed_at)
    q = select(
        order_lines.c.order_number, order_lines.c.line_no, order_lines.c.sku, order_lines.c.backordered_qty, since
    ).where(order_lines.c.backordered_qty > 0, order_lines.c.sku.in_(sorted(limits)))
    if order_number is not None:
        q = q.where(order_lines.c.order_id == _order_id(order_number))
    for r in conn.execute(q.order_by(order_lines.c.order_number, order_lines.c.line_no)):
        if r[4] <= now - timedelta(days=limits[r.sku]):
            out[r.order_number].append((r.line_no, r.backordered_qty))
    return out


def cancel_aged_order(uow: UnitOfWork, order_number: str) -> bool:
    """Cancel the order's aged-out back-ordered units, checked again under the SKUs' locks."""
    skus = uow.conn.scalars(select(order_lines.c.sku).where(order_lines.c.order_id == _order_id(order_number))).all()
    engine.lock_products(engine.WorkingSet(uow), skus)
    lines = _aged_lines(uow.conn, uow.now, order_number).get(order_number)
    if not lines:
        return False  # a twin worker (or an earlier run) got here first, or the units were filled
    cancel_order(uow, order_number, AGED_OUT_REASON, lines, reason_code=CancelReason.AGED_OUT)
    return True


def cancel_aged_backorders(store: Store, now: datetime) -> int:
    """Cancel back-ordered units older than the policy's auto_cancel_after_days; returns orders touched."""
    candidates = sorted(store.read(lambda c: _aged_lines(c, now)))[:MAX_ORDERS_PER_RUN]
    done = 0
    for order_number in candidates:

        def tx(uow: UnitOfWork, order_number: str = order_number) -> bool:
            return cancel_aged_order(uow, order_number)

        done += store.write(tx, actor="worker:aged-out", now=now)
    return done
