"""Moving shipments through pick, pack, awaiting shipment and dispatch (PRODUCT.md rule 7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from oms import engine
from oms.domain.errors import NotFound
from oms.domain.fulfillment import ShipmentStatus, advance
from oms.engine import WorkingSet
from oms.store.bulk import update_rows
from oms.store.tables import order_lines, shipment_lines, shipments
from oms.store.uow import UnitOfWork


@dataclass
class Shipment:
    """A shipment as the use case leaves it; `views.shipment_json` shapes it."""

    id: int
    channel: str
    order_number: str
    status: str
    carrier: str | None
    tracking_number: str | None
    created_at: datetime
    updated_at: datetime
    lines: list[dict[str, Any]] = field(default_factory=list)


def advance_shipment(
    uow: UnitOfWork,
    shipment_id: int,
    carrier: str | None = None,
    tracking_number: str | None = None,
    channel: str | None = None,
) -> Shipment:
    """Move a shipment one step. Dispatch takes its units off the shelf: on hand and allocated go down."""
    ws = WorkingSet(uow)
    q = (
        select(shipments.c.order_id, shipment_lines.c.sku)
        .join(shipment_lines, shipment_lines.c.shipment_id == shipments.c.id, isouter=True)
        .where(shipments.c.id == shipment_id)
    )
    if channel is not None:
        q = q.where(shipments.c.channel == channel)
    found = uow.conn.execute(q).all()
    if not found:
        raise NotFound(f"No shipment {shipment_id}.")
    engine.lock_products(ws, {r.sku for r in found if r.sku is not None})
    order = engine.lock_orders(ws, [found[0].order_id])[0]  # a shipment changes under its order's lock
    rows = uow.conn.execute(
        select(
            shipments, shipment_lines.c.line_id, shipment_lines.c.line_no, shipment_lines.c.sku, shipment_lines.c.qty
        )
        .join(shipment_lines, shipment_lines.c.shipment_id == shipments.c.id, isouter=True)
        .where(shipments.c.id == shipment_id)
        .order_by(shipment_lines.c.line_no)
    ).all()
    head = rows[0]
    nxt = advance(ShipmentStatus(head.status), carrier, tracking_number)
    parts = [r for r in rows if r.qty]
    out = Shipment(
        id=shipment_id,
        channel=head.channel,
        order_number=head.order_number,
        status=nxt.value,
        carrier=head.carrier,
        tracking_number=head.tracking_number,
        created_at=head.created_at,
        updated_at=uow.now,
        lines=[{"line_no": r.line_no, "sku": r.sku, "qty": r.qty} for r in rows if r.line_id is not None],
    )
    values: dict[str, Any] = {"id": shipment_id, "status": nxt.value, "updated_at": uow.now}
    if nxt is ShipmentStatus.DISPATCHED:
        out.carrier, out.tracking_number = carrier, tracking_number
        values |= {"carrier": carrier, "tracking_number": tracking_number, "dispatched_at": uow.now}
        lines = {line.id: line for line in order.lines}
        for r in parts:
            line = lines[r.line_id]
            line.allocated_qty -= r.qty
            line.released_qty -= r.qty
            line.shipped_qty += r.qty
            line.dispatched_at = uow.now
            product = ws.products[r.sku]
            product.on_hand -= r.qty
            product.allocated -= r.qty
        per_sku: dict[str, int] = {}
        for r in parts:
            per_sku[r.sku] = per_sku.get(r.sku, 0) + r.qty
        for sku, qty in sorted(per_sku.items()):
            ws.move(sku, -qty, "dispatch", f"shipment:{shipment_id}")
    update_rows(uow.conn, shipments, "id", [values])
    uow.event(
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
    engine.settle(ws, [order])
    engine.flush(ws)
    return out


def release_due(uow: UnitOfWork) -> int:
    """Release units held back by a pre-order release date that has now come. Returns orders settled."""
    ws = WorkingSet(uow)
    rows = uow.conn.execute(
        select(order_lines.c.order_id, order_lines.c.sku).where(
            order_lines.c.order_id.in_(
                select(order_lines.c.order_id).where(order_lines.c.allocated_qty > order_lines.c.released_qty)
            )
        )
    ).all()
    ids = sorted({r.order_id for r in rows})
    engine.lock_products(ws, {r.sku for r in rows})
    engine.settle(ws, engine.lock_orders(ws, ids))
    engine.flush(ws)
    return len(ids)
