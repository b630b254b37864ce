"""Placing, cancelling and re-prioritising orders (PRODUCT.md rules 1-3, 8)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from oms.domain.allocation import Tier
from oms.domain.errors import Conflict, DomainError, Invalid, NotFound
from oms.domain.fulfillment import CancelPlan, OrderStatus, ShipmentStatus, ShipPolicy, plan_cancel
from oms.domain.policy import LineRequest, decide_placement
from oms.store.tables import allocations, customers, order_lines, orders, products, shipment_lines, shipments
from oms.views import order_view

from . import engine
from .common import Ctx, lock_products, request_hash, require_products, sku_stock


@dataclass(frozen=True)
class NewLine:
    sku: str
    qty: int
    unit_price: Decimal | None = None


@dataclass(frozen=True)
class PlaceOrder:
    order_number: str
    channel: str
    customer_id: str
    lines: list[NewLine]
    ship_policy: ShipPolicy = ShipPolicy.PARTIAL
    placed_at: datetime | None = None
    priority: int = 0
    body: dict[str, Any] | None = None  # the request as sent, to tell a retry from a different order


def place_order(ctx: Ctx, cmd: PlaceOrder) -> tuple[dict[str, Any], bool]:
    """Accept an order: each line takes what is available, the rest waits in its SKU's queue.

    Returns the order and whether it was created now (False: the same order number was sent again).
    """
    digest = request_hash(cmd.body if cmd.body is not None else {"cmd": repr(cmd)})
    existing = ctx.conn.execute(
        select(orders.c.request_hash, orders.c.channel).where(orders.c.order_number == cmd.order_number)
    ).first()
    if existing is not None:
        return _replay(ctx, cmd, existing.request_hash, digest), False

    customer = ctx.conn.execute(select(customers.c.tier).where(customers.c.customer_id == cmd.customer_id)).first()
    problems: list[dict[str, Any]] = []
    if customer is None:
        problems.append({"field": "customer_id", "value": cmd.customer_id, "reason": "unknown customer"})
    skus = [line.sku for line in cmd.lines]
    try:
        locked = require_products(ctx, skus)
    except Invalid as exc:
        problems.extend(exc.errors)
        locked = {}
    if problems:
        raise Invalid(
            "The order names unknown customers or products: "
            + ", ".join(str(p.get("value", p.get("sku"))) for p in problems)
            + ".",
            problems,
        )
    assert customer is not None

    placed_at = cmd.placed_at or ctx.now
    requests = [LineRequest(i, line.sku, line.qty) for i, line in enumerate(cmd.lines, start=1)]
    decisions = decide_placement(requests, sku_stock(ctx.conn, locked, ctx.fallback_policy()), cmd.channel, ctx.now)

    prices = [line.unit_price if line.unit_price is not None else locked[line.sku].unit_price for line in cmd.lines]
    value = sum((p * line.qty for p, line in zip(prices, cmd.lines, strict=True)), Decimal("0"))
    tier_rank = Tier(customer.tier).rank
    order_id = ctx.conn.execute(
        insert(orders)
        .returning(orders.c.id)
        .values(
            order_number=cmd.order_number,
            channel=cmd.channel,
            customer_id=cmd.customer_id,
            ship_policy=cmd.ship_policy.value,
            placed_at=placed_at,
            priority=cmd.priority,
            order_value=value,
            status=(
                OrderStatus.BACKORDERED if any(d.backorder_qty for d in decisions) else OrderStatus.IN_FULFILLMENT
            ).value,
            request_hash=digest,
            created_at=ctx.now,
        )
    ).scalar_one()
    line_ids = (
        ctx.conn.execute(
            insert(order_lines).returning(order_lines.c.id, sort_by_parameter_order=True),
            [
                {
                    "order_id": order_id,
                    "line_no": d.line_no,
                    "sku": d.sku,
                    "qty": d.qty,
                    "unit_price": price,
                    "allocated_qty": d.allocate_qty,
                    "backordered_qty": d.backorder_qty,
                    "backordered_at": ctx.now if d.backorder_qty else None,
                    "order_number": cmd.order_number,
                    "channel": cmd.channel,
                    "customer_id": cmd.customer_id,
                    "placed_at": placed_at,
                    "priority": cmd.priority,
                    "tier_rank": tier_rank,
                    "order_value": value,
                }
                for d, price in zip(decisions, prices, strict=True)
            ],
        )
        .scalars()
        .all()
    )

    per_sku: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for d in decisions:
        per_sku[d.sku][0] += d.allocate_qty
        per_sku[d.sku][1] += d.backorder_qty
    ctx.conn.execute(
        update(products)
        .where(products.c.sku == bindparam("b_sku"))
        .values(
            allocated=products.c.allocated + bindparam("b_alloc"),
            backordered=products.c.backordered + bindparam("b_back"),
        ),
        [{"b_sku": s, "b_alloc": a, "b_back": b} for s, (a, b) in sorted(per_sku.items())],
    )
    taken = [(lid, d) for lid, d in zip(line_ids, decisions, strict=True) if d.allocate_qty]
    if taken:
        ctx.conn.execute(
            insert(allocations),
            [
                {
                    "line_id": lid,
                    "sku": d.sku,
                    "qty": d.allocate_qty,
                    "source": "placement",
                    "ref": cmd.order_number,
                    "at": ctx.now,
                }
                for lid, d in taken
            ],
        )
    ctx.event(
        "order_placed",
        {
            "channel": cmd.channel,
            "customer_id": cmd.customer_id,
            "ship_policy": cmd.ship_policy.value,
            "priority": cmd.priority,
            "order_value": str(value),
            "lines": [
                {
                    "line_no": d.line_no,
                    "sku": d.sku,
                    "qty": d.qty,
                    "allocated_qty": d.allocate_qty,
                    "backordered_qty": d.backorder_qty,
                }
                for d in decisions
            ],
        },
        order_number=cmd.order_number,
    )
    waiting = [d for d in decisions if d.backorder_qty]
    if waiting:
        ctx.event(
            "backordered",
            {"lines": [{"line_no": d.line_no, "sku": d.sku, "qty": d.backorder_qty} for d in waiting]},
            order_number=cmd.order_number,
        )
    engine.settle_orders(ctx, [order_id])
    engine.date_new_lines(
        ctx,
        {d.sku: locked[d.sku].backordered for d in waiting},
        [(lid, d.sku, d.backorder_qty) for lid, d in zip(line_ids, decisions, strict=True) if d.backorder_qty],
    )
    ctx.flush_events()
    return order_view(ctx.conn, cmd.order_number), True


def _replay(ctx: Ctx, cmd: PlaceOrder, stored_hash: str, digest: str) -> dict[str, Any]:
    if stored_hash != digest:
        raise Conflict(
            f"Order number '{cmd.order_number}' is already taken by a different order. "
            "Send the identical body to fetch it again, or use a new order number.",
            [{"field": "order_number", "value": cmd.order_number, "reason": "already used with another body"}],
        )
    return order_view(ctx.conn, cmd.order_number)


def _locked_order(ctx: Ctx, order_number: str, channel: str | None) -> tuple[Any, list[Any]]:
    q = select(orders).where(orders.c.order_number == order_number)
    if channel is not None:
        q = q.where(orders.c.channel == channel)
    head = ctx.conn.execute(q).first()
    if head is None:
        raise NotFound(f"No order '{order_number}'.")
    skus = ctx.conn.scalars(select(order_lines.c.sku).where(order_lines.c.order_id == head.id)).all()
    lock_products(ctx, skus)
    if ctx.dialect == "postgresql":
        head = ctx.conn.execute(select(orders).where(orders.c.id == head.id).with_for_update()).one()
    lines = ctx.conn.execute(
        select(order_lines).where(order_lines.c.order_id == head.id).order_by(order_lines.c.line_no)
    ).all()
    return head, list(lines)


def cancel_order(
    ctx: Ctx, order_number: str, reason: str, lines: list[tuple[int, int]] | None, channel: str | None = None
) -> dict[str, Any]:
    """Cancel outstanding units (all, or some per line) with a reason; freed units go to the queue."""
    head, rows = _locked_order(ctx, order_number, channel)
    by_no = {r.line_no: r for r in rows}
    unknown = [no for no, _ in lines or [] if no not in by_no]
    if unknown:
        raise Invalid(
            f"Order {order_number} has no line(s) {unknown}; its lines are {sorted(by_no)}.",
            [{"field": "lines[].line_no", "value": n, "reason": "unknown line"} for n in unknown],
        )
    wanted: dict[int, int | None] = {}
    for no, qty in lines or []:
        wanted[no] = (wanted.get(no) or 0) + qty
    if lines is None:
        wanted = dict.fromkeys(by_no, None)

    in_pick = _units_in_pick(ctx, head.id)
    plans: list[tuple[Any, CancelPlan]] = []
    problems: list[dict[str, Any]] = []
    for no, want in sorted(wanted.items()):
        try:
            plan = plan_cancel(engine.line_qty(by_no[no]), want, sum(q for _, q in in_pick.get(by_no[no].id, [])))
        except DomainError as exc:
            problems.extend(exc.errors)
            continue
        if plan.total:
            plans.append((by_no[no], plan))
    if problems:
        raise Conflict(
            "Some units cannot be cancelled: only back-ordered units and allocated units not yet packed can be.",
            problems,
        )
    if not plans:
        raise Conflict(
            f"Order {order_number} has no outstanding units to cancel.",
            [{"field": "lines", "reason": "nothing cancellable"}],
        )
    _apply_cancel(ctx, plans, in_pick)
    ctx.event(
        "cancelled",
        {
            "reason": reason,
            "lines": [
                {
                    "line_no": r.line_no,
                    "sku": r.sku,
                    "qty": p.total,
                    "backordered": p.from_backordered,
                    "allocated": p.freed_allocated,
                }
                for r, p in plans
            ],
        },
        order_number=order_number,
    )
    skus = {r.sku for r, _ in plans}
    locked = lock_products(ctx, skus)
    engine.after_stock_change(ctx, locked, "cancellation", order_number, touched_orders=[head.id], redate=skus)
    return order_view(ctx.conn, order_number)


def _units_in_pick(ctx: Ctx, order_id: int) -> dict[int, list[tuple[int, int]]]:
    """For each line of the order: (shipment id, units) still in pick, oldest shipment first."""
    q = (
        select(shipment_lines.c.line_id, shipment_lines.c.id, shipment_lines.c.qty)
        .join(shipments, shipments.c.id == shipment_lines.c.shipment_id)
        .where(
            shipments.c.order_id == order_id, shipments.c.status == ShipmentStatus.PICK.value, shipment_lines.c.qty > 0
        )
        .order_by(shipment_lines.c.id)
    )
    out: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for line_id, sl_id, qty in ctx.conn.execute(q):
        out[line_id].append((sl_id, qty))
    return out


def _apply_cancel(ctx: Ctx, plans: list[tuple[Any, CancelPlan]], in_pick: dict[int, list[tuple[int, int]]]) -> None:
    ctx.conn.execute(
        update(order_lines)
        .where(order_lines.c.id == bindparam("b_id"))
        .values(
            backordered_qty=order_lines.c.backordered_qty - bindparam("b_back"),
            allocated_qty=order_lines.c.allocated_qty - bindparam("b_alloc"),
            released_qty=order_lines.c.released_qty - bindparam("b_pick"),
            cancelled_qty=order_lines.c.cancelled_qty + bindparam("b_total"),
        ),
        [
            {
                "b_id": r.id,
                "b_back": p.from_backordered,
                "b_alloc": p.freed_allocated,
                "b_pick": p.from_pick,
                "b_total": p.total,
            }
            for r, p in plans
        ],
    )
    per_sku: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r, p in plans:
        per_sku[r.sku][0] += p.from_backordered
        per_sku[r.sku][1] += p.freed_allocated
    ctx.conn.execute(
        update(products)
        .where(products.c.sku == bindparam("b_sku"))
        .values(
            backordered=products.c.backordered - bindparam("b_back"),
            allocated=products.c.allocated - bindparam("b_alloc"),
        ),
        [{"b_sku": s, "b_back": b, "b_alloc": a} for s, (b, a) in sorted(per_sku.items())],
    )
    shrink: list[dict[str, Any]] = []
    for r, p in plans:
        left = p.from_pick
        for sl_id, qty in in_pick.get(r.id, []):
            if left <= 0:
                break
            take = min(left, qty)
            shrink.append({"b_id": sl_id, "b_qty": take})
            left -= take
    if shrink:
        ctx.conn.execute(
            update(shipment_lines)
            .where(shipment_lines.c.id == bindparam("b_id"))
            .values(qty=shipment_lines.c.qty - bindparam("b_qty")),
            shrink,
        )
        emptied = (
            select(shipment_lines.c.shipment_id)
            .group_by(shipment_lines.c.shipment_id)
            .having(func.sum(shipment_lines.c.qty) == 0)
        )
        ctx.conn.execute(
            update(shipments)
            .where(
                shipments.c.status == ShipmentStatus.PICK.value,
                shipments.c.id.in_(
                    select(shipment_lines.c.shipment_id).where(shipment_lines.c.id.in_([s["b_id"] for s in shrink]))
                ),
                shipments.c.id.in_(emptied),
            )
            .values(status=ShipmentStatus.CANCELLED.value, updated_at=ctx.now)
        )


def set_priority(ctx: Ctx, order_number: str, priority: int, channel: str | None = None) -> dict[str, Any]:
    """Give an order a manual boost; its waiting lines move in priority-ranked queues."""
    head, rows = _locked_order(ctx, order_number, channel)
    ctx.conn.execute(update(orders).where(orders.c.id == head.id).values(priority=priority))
    ctx.conn.execute(update(order_lines).where(order_lines.c.order_id == head.id).values(priority=priority))
    ctx.event("priority_changed", {"from": head.priority, "to": priority}, order_number=order_number)
    engine.recompute_etas(ctx, {r.sku for r in rows if r.backordered_qty > 0})
    ctx.flush_events()
    return order_view(ctx.conn, order_number)
