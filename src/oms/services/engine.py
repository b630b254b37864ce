"""The steps every stock-changing use case ends with: allocate, release, settle statuses, re-date.

Each works on a set of SKUs or orders with a few set-based statements; none loops queries per line.
Callers hold the SKUs' row locks (common.lock_products) before calling any of them.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from oms.domain.allocation import Allocation, QueueLine, RuleKey, plan_allocation, sort_fields
from oms.domain.eta import Supply, walk_etas
from oms.domain.fulfillment import LineQty, ShipmentStatus, ShipPolicy, order_status, units_to_release
from oms.store.queue import order_by
from oms.store.tables import (
    allocations,
    order_lines,
    orders,
    po_lines,
    products,
    purchase_orders,
    settings,
    shipment_lines,
    shipments,
)

from .common import Ctx, policy_from_json

QUEUE_COLUMNS = (
    order_lines.c.id,
    order_lines.c.order_id,
    order_lines.c.order_number,
    order_lines.c.line_no,
    order_lines.c.sku,
    order_lines.c.backordered_qty,
    order_lines.c.priority,
    order_lines.c.tier_rank,
    order_lines.c.order_value,
    order_lines.c.placed_at,
    order_lines.c.promised_date,
)


def queue_line(row: Any) -> QueueLine:
    return QueueLine(
        line_id=row.id,
        order_number=row.order_number,
        line_no=row.line_no,
        sku=row.sku,
        backordered_qty=row.backordered_qty,
        priority=row.priority,
        tier_rank=row.tier_rank,
        order_value=row.order_value,
        placed_at=row.placed_at,
        promised_date=row.promised_date,
    )


def allocate_backorders(ctx: Ctx, locked: Mapping[str, Any], source: str, ref: str | None = None) -> list[Allocation]:
    """Give each locked SKU's available units to its queue in rule order (rule 4).

    The queue is read in index order and only as far as the units reach (each line wants at least
    one unit, so `available` rows are always enough); the plan is written in three statements.
    """
    fields = sort_fields(ctx.rule())
    plan: list[Allocation] = []
    per_sku: dict[str, int] = {}
    # One statement for every SKU, built once: only its parameters change from SKU to SKU.
    q = (
        select(*QUEUE_COLUMNS)
        .where(order_lines.c.sku == bindparam("b_sku"), order_lines.c.backordered_qty > 0)
        .order_by(*order_by(order_lines, fields))
        .limit(bindparam("b_limit"))
    )
    for sku in sorted(locked):
        row = locked[sku]
        available = row.on_hand - row.allocated
        if available <= 0 or row.backordered <= 0:
            continue
        rows = ctx.conn.execute(q, {"b_sku": sku, "b_limit": available})
        sku_plan = plan_allocation(available, (queue_line(r) for r in rows))
        per_sku[sku] = sum(a.qty for a in sku_plan)
        plan.extend(sku_plan)
    if not plan:
        return plan
    ctx.conn.execute(
        update(order_lines)
        .where(order_lines.c.id == bindparam("b_id"))
        .values(
            allocated_qty=order_lines.c.allocated_qty + bindparam("b_qty"),
            backordered_qty=order_lines.c.backordered_qty - bindparam("b_qty"),
        ),
        [{"b_id": a.line.line_id, "b_qty": a.qty} for a in plan],
    )
    ctx.conn.execute(
        update(products)
        .where(products.c.sku == bindparam("b_sku"))
        .values(
            allocated=products.c.allocated + bindparam("b_qty"),
            backordered=products.c.backordered - bindparam("b_qty"),
        ),
        [{"b_sku": sku, "b_qty": n} for sku, n in per_sku.items()],
    )
    ctx.conn.execute(
        insert(allocations),
        [
            {"line_id": a.line.line_id, "sku": a.line.sku, "qty": a.qty, "source": source, "ref": ref, "at": ctx.now}
            for a in plan
        ],
    )
    by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in plan:
        by_order[a.line.order_number].append({"line_no": a.line.line_no, "sku": a.line.sku, "qty": a.qty})
    for order_number, lines in by_order.items():
        ctx.event("allocated", {"source": source, "ref": ref, "lines": lines}, order_number=order_number)
    return plan


def order_ids_of_lines(ctx: Ctx, line_ids: Iterable[int]) -> set[int]:
    ids = sorted(set(line_ids))
    if not ids:
        return set()
    found: set[int] = set()
    for part in chunks(ids):
        found |= set(ctx.conn.scalars(select(order_lines.c.order_id).where(order_lines.c.id.in_(part)).distinct()))
    return found


def held_skus(ctx: Ctx, skus: Iterable[str]) -> frozenset[str]:
    """SKUs whose policy's release date has not come yet: nothing of them goes to picking."""
    wanted = sorted(set(skus))
    if not wanted:
        return frozenset()
    fallback = ctx.fallback_policy()
    rows = ctx.conn.execute(select(products.c.sku, products.c.backorder_policy).where(products.c.sku.in_(wanted)))
    return frozenset(sku for sku, pol in rows if (policy_from_json(pol) or fallback).holds_release(ctx.today))


# Longest list bound into one IN (...): SQLite allows 32,766 parameters per statement.
IN_CHUNK = 5000


def chunks(items: list[Any], size: int = IN_CHUNK) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def settle_orders(ctx: Ctx, order_ids: Iterable[int]) -> None:
    """Release what each order may ship (rule 6) and bring its status up to date."""
    ids = sorted(set(order_ids))
    if len(ids) > IN_CHUNK:
        for part in chunks(ids):
            settle_orders(ctx, part)
        return
    if not ids:
        return
    head = {r.id: r for r in ctx.conn.execute(select(orders).where(orders.c.id.in_(ids)))}
    lines: dict[int, list[Any]] = defaultdict(list)
    for r in ctx.conn.execute(
        select(order_lines)
        .where(order_lines.c.order_id.in_(ids))
        .order_by(order_lines.c.order_id, order_lines.c.line_no)
    ):
        lines[r.order_id].append(r)
    held = held_skus(ctx, {r.sku for rs in lines.values() for r in rs if r.allocated_qty > r.released_qty})

    releases: list[tuple[Any, dict[int, int]]] = []
    status_changes: list[dict[str, Any]] = []
    for oid in ids:
        order, rows = head[oid], lines[oid]
        qtys = [line_qty(r) for r in rows]
        units = units_to_release(ShipPolicy(order.ship_policy), qtys, held)
        if units:
            releases.append((order, units))
        status = order_status(qtys)
        if status != order.status:
            status_changes.append({"b_id": oid, "b_status": status.value})
            ctx.event("status_changed", {"from": order.status, "to": status.value}, order_number=order.order_number)
    if status_changes:
        ctx.conn.execute(
            update(orders).where(orders.c.id == bindparam("b_id")).values(status=bindparam("b_status")),
            status_changes,
        )
    if releases:
        _release(ctx, releases, {oid: {r.line_no: r for r in lines[oid]} for oid in ids})


def line_qty(r: Any) -> LineQty:
    return LineQty(
        line_no=r.line_no,
        sku=r.sku,
        qty=r.qty,
        allocated_qty=r.allocated_qty,
        backordered_qty=r.backordered_qty,
        shipped_qty=r.shipped_qty,
        cancelled_qty=r.cancelled_qty,
        released_qty=r.released_qty,
    )


def _release(ctx: Ctx, releases: list[tuple[Any, dict[int, int]]], lines: dict[int, dict[int, Any]]) -> None:
    created = (
        ctx.conn.execute(
            insert(shipments).returning(shipments.c.id, sort_by_parameter_order=True),
            [
                {
                    "order_id": order.id,
                    "order_number": order.order_number,
                    "channel": order.channel,
                    "status": ShipmentStatus.PICK.value,
                    "created_at": ctx.now,
                    "updated_at": ctx.now,
                }
                for order, _ in releases
            ],
        )
        .scalars()
        .all()
    )
    ship_rows, line_updates = [], []
    for shipment_id, (order, units) in zip(created, releases, strict=True):
        for line_no, qty in sorted(units.items()):
            line = lines[order.id][line_no]
            ship_rows.append(
                {"shipment_id": shipment_id, "line_id": line.id, "line_no": line_no, "sku": line.sku, "qty": qty}
            )
            line_updates.append({"b_id": line.id, "b_qty": qty})
        ctx.event(
            "shipment_created",
            {
                "shipment_id": shipment_id,
                "status": "pick",
                "lines": [{"line_no": n, "qty": q} for n, q in sorted(units.items())],
            },
            order_number=order.order_number,
        )
    ctx.conn.execute(insert(shipment_lines), ship_rows)
    ctx.conn.execute(
        update(order_lines)
        .where(order_lines.c.id == bindparam("b_id"))
        .values(released_qty=order_lines.c.released_qty + bindparam("b_qty")),
        line_updates,
    )


def open_supplies(ctx: Ctx, skus: Iterable[str]) -> dict[str, list[Supply]]:
    wanted = sorted(set(skus))
    out: dict[str, list[Supply]] = defaultdict(list)
    if not wanted:
        return out
    q = (
        select(
            po_lines.c.sku,
            po_lines.c.expected_date,
            po_lines.c.qty,
            po_lines.c.received_qty,
            purchase_orders.c.po_number,
        )
        .join(purchase_orders, purchase_orders.c.id == po_lines.c.po_id)
        .where(po_lines.c.sku.in_(wanted), po_lines.c.open == 1, purchase_orders.c.status == "open")
    )
    grace: int | None = None
    for r in ctx.conn.execute(q):
        if r.qty > r.received_qty:
            expected = r.expected_date
            if expected < ctx.today:  # late: read the grace setting only when some PO is late
                grace = late_po_grace_days(ctx.conn) if grace is None else grace
                expected = late_supply_date(expected, ctx.today, grace)
            out[r.sku].append(Supply(expected, r.qty - r.received_qty, r.po_number))
    return out


LATE_PO_GRACE_KEY = "late_po_grace_days"


def late_po_grace_days(conn: Any) -> int:
    """Days a late PO is given at a time: env OMS_LATE_PO_GRACE_DAYS, else the setting, else 0."""
    env = os.environ.get("OMS_LATE_PO_GRACE_DAYS")
    if env is not None and env.strip().isdigit():
        return int(env)
    found = conn.execute(select(settings.c.value).where(settings.c.key == LATE_PO_GRACE_KEY)).scalar()
    return int(found["days"]) if isinstance(found, dict) and isinstance(found.get("days"), int) else 0


def late_supply_date(expected: date, today: date, grace_days: int) -> date:
    """The date a late PO line's open units are now counted on.

    A PO whose expected date has passed is given `grace_days` more at a time: expected + k x grace,
    the first such date after today. So its ETAs move later once per grace period (one notice per
    period, not one a day), never into the past; with no grace the date is today.
    """
    if expected >= today:
        return expected
    if grace_days <= 0:
        return today
    periods = (today - expected).days // grace_days + 1
    return expected + timedelta(days=periods * grace_days)


def recompute_etas(ctx: Ctx, skus: Iterable[str]) -> None:
    """Re-date every waiting line of these SKUs (rule 9); write only the lines whose ETA moved."""
    wanted = sorted(set(skus))
    if not wanted:
        return
    fields = sort_fields(ctx.rule())
    supplies = open_supplies(ctx, wanted)
    lead_q = select(products.c.sku, products.c.lead_time_days).where(products.c.sku.in_(wanted))
    lead = {r.sku: r.lead_time_days for r in ctx.conn.execute(lead_q)}
    changes: list[dict[str, Any]] = []
    for sku in wanted:
        q = (
            select(
                order_lines.c.id,
                order_lines.c.order_number,
                order_lines.c.line_no,
                order_lines.c.backordered_qty,
                order_lines.c.eta,
                order_lines.c.eta_basis,
                order_lines.c.promised_date,
            )
            .where(order_lines.c.sku == sku, order_lines.c.backordered_qty > 0)
            .order_by(*order_by(order_lines, fields))
        )
        rows = ctx.conn.execute(q).all()
        etas = walk_etas([r.backordered_qty for r in rows], supplies.get(sku, []), ctx.today, lead.get(sku))
        for r, e in zip(rows, etas, strict=True):
            if (r.eta, r.eta_basis) == (e.eta, e.basis) and (r.promised_date is not None or e.eta is None):
                continue
            changes.append(
                {
                    "b_id": r.id,
                    "b_eta": e.eta,
                    "b_basis": e.basis,
                    "b_promised": r.promised_date if r.promised_date is not None else e.eta,
                }
            )
            if r.eta != e.eta:
                ctx.event(
                    "eta_changed",
                    {
                        "line_no": r.line_no,
                        "sku": sku,
                        "from": iso(r.eta),
                        "to": iso(e.eta),
                        "basis": e.basis,
                        "later": bool(r.eta and (e.eta is None or e.eta > r.eta)),
                    },
                    order_number=r.order_number,
                )
    if changes:
        ctx.conn.execute(
            update(order_lines)
            .where(order_lines.c.id == bindparam("b_id"))
            .values(eta=bindparam("b_eta"), eta_basis=bindparam("b_basis"), promised_date=bindparam("b_promised")),
            changes,
        )


def date_new_lines(ctx: Ctx, ahead: Mapping[str, int], new_lines: list[tuple[int, str, int]]) -> None:
    """Date lines just added to their queues.

    The common case is a new line at the tail of its queue (FIFO): then nothing else moves and its
    ETA follows from the units already waiting. Otherwise (a boosted or higher-tier order jumped in)
    the SKU's whole queue is re-dated.
    """
    if not new_lines:
        return
    rule = ctx.rule()
    if RuleKey.PROMISED_DATE in rule:  # a new line's first promise places it: date the queue whole
        recompute_etas(ctx, {sku for _, sku, _ in new_lines})
        return
    fields = sort_fields(rule)
    by_sku: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for line_id, sku, qty in new_lines:
        by_sku[sku].append((line_id, qty))
    # A new line is at the tail when it is its queue's last line: one backward index probe per SKU
    # (a "does anyone come after me" predicate cannot use the index and scans the whole queue).
    last_q = (
        select(order_lines.c.id)
        .where(order_lines.c.sku == bindparam("b_sku"), order_lines.c.backordered_qty > 0)
        .order_by(*order_by(order_lines, fields, reverse=True))
        .limit(1)
    )
    jumped = {sku for sku, ids in by_sku.items() if ctx.conn.scalar(last_q, {"b_sku": sku}) != ids[-1][0]}
    recompute_etas(ctx, jumped)
    at_tail = sorted(set(by_sku) - jumped)
    if not at_tail:
        return
    supplies = open_supplies(ctx, at_tail)
    lead_q = select(products.c.sku, products.c.lead_time_days).where(products.c.sku.in_(at_tail))
    lead = {r.sku: r.lead_time_days for r in ctx.conn.execute(lead_q)}
    changes = []
    for sku in at_tail:
        lines = by_sku[sku]
        etas = walk_etas([ahead[sku]] + [q for _, q in lines], supplies.get(sku, []), ctx.today, lead.get(sku))[1:]
        changes += [
            {"b_id": line_id, "b_eta": e.eta, "b_basis": e.basis, "b_promised": e.eta}
            for (line_id, _), e in zip(lines, etas, strict=True)
        ]
    ctx.conn.execute(
        update(order_lines)
        .where(order_lines.c.id == bindparam("b_id"))
        .values(eta=bindparam("b_eta"), eta_basis=bindparam("b_basis"), promised_date=bindparam("b_promised")),
        changes,
    )


def iso(d: Any) -> str | None:
    return d.isoformat() if d is not None else None


def clear_eta_of_filled(ctx: Ctx, line_ids: Iterable[int]) -> None:
    """A line that no longer waits has no ETA of its own."""
    for part in chunks(sorted(set(line_ids))):
        ctx.conn.execute(
            update(order_lines)
            .where(order_lines.c.id.in_(part), order_lines.c.backordered_qty == 0)
            .values(eta=None, eta_basis=None)
        )


def after_stock_change(
    ctx: Ctx,
    locked: Mapping[str, Any],
    source: str,
    ref: str | None = None,
    touched_orders: Iterable[int] = (),
    redate: Iterable[str] = (),
) -> list[Allocation]:
    """The common tail of a stock-changing use case: allocate, release, settle, re-date, log."""
    fresh = {r.sku: r for r in ctx.conn.execute(select(products).where(products.c.sku.in_(sorted(locked))))}
    plan = allocate_backorders(ctx, fresh, source, ref)
    filled = [a.line.line_id for a in plan]
    clear_eta_of_filled(ctx, filled)
    settle_orders(ctx, set(touched_orders) | order_ids_of_lines(ctx, filled))
    recompute_etas(ctx, {a.line.sku for a in plan} | set(redate))
    ctx.flush_events()
    return plan
