"""Moving shipments through pick, pack, awaiting shipment and dispatch (PRODUCT.md rule 7)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from oms.domain.errors import NotFound
from oms.domain.fulfillment import ShipmentStatus, advance
from oms.store.tables import order_lines, products, shipment_lines, shipments, stock_movements
from oms.views import shipment_view

from . import engine
from .common import Ctx, lock_products


def advance_shipment(
    ctx: Ctx,
    shipment_id: int,
    carrier: str | None = None,
    tracking_number: str | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
    """Move a shipment one step. Dispatch takes its units off the shelf: on hand and allocated go down."""
    q = select(shipments).where(shipments.c.id == shipment_id)
    if channel is not None:
        q = q.where(shipments.c.channel == channel)
    if ctx.conn.execute(q).first() is None:
        raise NotFound(f"No shipment {shipment_id}.")
    lines = list(
        ctx.conn.execute(
            select(shipment_lines).where(shipment_lines.c.shipment_id == shipment_id, shipment_lines.c.qty > 0)
        )
    )
    lock_products(ctx, [r.sku for r in lines])
    if ctx.dialect == "postgresql":
        q = q.with_for_update()
    head = ctx.conn.execute(q).one()
    nxt = advance(ShipmentStatus(head.status), carrier, tracking_number)
    values: dict[str, Any] = {"status": nxt.value, "updated_at": ctx.now}
    if nxt is ShipmentStatus.DISPATCHED:
        values |= {"carrier": carrier, "tracking_number": tracking_number, "dispatched_at": ctx.now}
        _dispatch(ctx, shipment_id, lines)
    ctx.conn.execute(update(shipments).where(shipments.c.id == shipment_id).values(**values))
    ctx.event(
        "shipment_advanced",
        {
            "shipment_id": shipment_id,
            "from": head.status,
            "to": nxt.value,
            "carrier": carrier,
            "tracking_number": tracking_number,
        },
        order_number=head.order_number,
    )
    engine.settle_orders(ctx, [head.order_id])
    ctx.flush_events()
    return shipment_view(ctx.conn, shipment_id)


def _dispatch(ctx: Ctx, shipment_id: int, lines: list[Any]) -> None:
    ctx.conn.execute(
        update(order_lines)
        .where(order_lines.c.id == bindparam("b_id"))
        .values(
            allocated_qty=order_lines.c.allocated_qty - bindparam("b_qty"),
            released_qty=order_lines.c.released_qty - bindparam("b_qty"),
            shipped_qty=order_lines.c.shipped_qty + bindparam("b_qty"),
            dispatched_at=ctx.now,
        ),
        [{"b_id": r.line_id, "b_qty": r.qty} for r in lines],
    )
    per_sku: dict[str, int] = defaultdict(int)
    for r in lines:
        per_sku[r.sku] += r.qty
    ctx.conn.execute(
        update(products)
        .where(products.c.sku == bindparam("b_sku"))
        .values(on_hand=products.c.on_hand - bindparam("b_qty"), allocated=products.c.allocated - bindparam("b_qty")),
        [{"b_sku": s, "b_qty": q} for s, q in sorted(per_sku.items())],
    )
    ctx.conn.execute(
        insert(stock_movements),
        [
            {"sku": s, "qty_delta": -q, "kind": "dispatch", "ref": f"shipment:{shipment_id}", "at": ctx.now}
            for s, q in sorted(per_sku.items())
        ],
    )


def release_due(ctx: Ctx) -> int:
    """Release units held back by a pre-order release date that has now come. Returns orders settled."""
    q = select(order_lines.c.order_id).where(order_lines.c.allocated_qty > order_lines.c.released_qty).distinct()
    ids = sorted(ctx.conn.scalars(q))
    skus = ctx.conn.scalars(select(order_lines.c.sku).where(order_lines.c.order_id.in_(ids)).distinct()).all()
    lock_products(ctx, skus)
    engine.settle_orders(ctx, ids)
    ctx.flush_events()
    return len(ids)
