"""Purchase orders, goods receipts and promises (PRODUCT.md rules 4, 9)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from oms.domain.allocation import Tier, sort_fields
from oms.domain.errors import Conflict, Invalid, NotFound
from oms.domain.eta import quote_eta
from oms.domain.policy import backorder_room
from oms.store.queue import before
from oms.store.tables import (
    customers,
    order_lines,
    po_lines,
    products,
    purchase_orders,
    receipts,
    stock_movements,
)
from oms.views import po_view

from . import engine
from .common import Ctx, lock_products, request_hash, require_products, sku_stock


@dataclass(frozen=True)
class PoLine:
    sku: str
    qty: int
    expected_date: date


def _refuse_repeated_skus(skus: list[str], field: str) -> None:
    dupes = sorted({s for s in skus if skus.count(s) > 1})
    if dupes:
        raise Invalid(
            f"Each SKU may appear once; repeated: {', '.join(dupes)}.",
            [{"field": field, "sku": s, "reason": "repeated sku"} for s in dupes],
        )


def create_po(ctx: Ctx, po_number: str, supplier: str, lines: list[PoLine]) -> dict[str, Any]:
    """Record incoming supply; waiting lines of its SKUs are re-dated against it."""
    _refuse_repeated_skus([line.sku for line in lines], "lines[].sku")
    if ctx.conn.execute(select(purchase_orders.c.id).where(purchase_orders.c.po_number == po_number)).first():
        raise Conflict(
            f"Purchase order '{po_number}' already exists; change it with PATCH.",
            [{"field": "po_number", "value": po_number, "reason": "already exists"}],
        )
    require_products(ctx, [line.sku for line in lines])
    po_id = ctx.conn.execute(
        insert(purchase_orders)
        .returning(purchase_orders.c.id)
        .values(po_number=po_number, supplier=supplier, status="open", created_at=ctx.now)
    ).scalar_one()
    ctx.conn.execute(
        insert(po_lines),
        [
            {"po_id": po_id, "line_no": i, "sku": line.sku, "qty": line.qty, "expected_date": line.expected_date}
            for i, line in enumerate(lines, start=1)
        ],
    )
    ctx.event(
        "po_created",
        {
            "supplier": supplier,
            "lines": [
                {"sku": line.sku, "qty": line.qty, "expected_date": line.expected_date.isoformat()} for line in lines
            ],
        },
        po_number=po_number,
    )
    engine.recompute_etas(ctx, {line.sku for line in lines})
    ctx.flush_events()
    return po_view(ctx.conn, po_number, ctx.today)


@dataclass(frozen=True)
class PoLineChange:
    sku: str
    expected_date: date | None = None
    qty: int | None = None


def _locked_po(ctx: Ctx, po_number: str) -> Any:
    q = select(purchase_orders).where(purchase_orders.c.po_number == po_number)
    head = ctx.conn.execute(q).first()
    if head is None:
        raise NotFound(f"No purchase order '{po_number}'.")
    lines = ctx.conn.execute(select(po_lines).where(po_lines.c.po_id == head.id)).all()
    lock_products(ctx, [r.sku for r in lines])
    return head, {r.sku: r for r in lines}


def patch_po(ctx: Ctx, po_number: str, changes: list[PoLineChange]) -> dict[str, Any]:
    """Move expected dates or change quantities; never below what was received."""
    _refuse_repeated_skus([c.sku for c in changes], "lines[].sku")
    head, lines = _locked_po(ctx, po_number)
    if head.status != "open":
        raise Conflict(
            f"Purchase order {po_number} is {head.status}; only open ones change.",
            [{"field": "status", "value": head.status, "reason": "not open"}],
        )
    problems: list[dict[str, Any]] = [
        {"field": "lines[].sku", "sku": c.sku, "reason": "not on this purchase order"}
        for c in changes
        if c.sku not in lines
    ]
    problems += [
        {
            "field": "lines[].qty",
            "sku": c.sku,
            "qty": c.qty,
            "received_qty": lines[c.sku].received_qty,
            "reason": "below the received quantity",
        }
        for c in changes
        if c.sku in lines and c.qty is not None and c.qty < lines[c.sku].received_qty
    ]
    if problems:
        raise Invalid(
            "Some changes cannot apply: a line must be on the PO and keep at least its received units.", problems
        )
    for c in changes:
        row = lines[c.sku]
        qty = c.qty if c.qty is not None else row.qty
        ctx.conn.execute(
            update(po_lines)
            .where(po_lines.c.id == row.id)
            .values(qty=qty, expected_date=c.expected_date or row.expected_date, open=int(row.received_qty < qty))
        )
    ctx.conn.execute(update(purchase_orders).where(purchase_orders.c.id == head.id).values(version=head.version + 1))
    _close_if_received(ctx, head.id)
    ctx.event(
        "po_changed",
        {
            "lines": [
                {"sku": c.sku, "expected_date": c.expected_date.isoformat() if c.expected_date else None, "qty": c.qty}
                for c in changes
            ]
        },
        po_number=po_number,
    )
    engine.recompute_etas(ctx, {c.sku for c in changes})
    ctx.flush_events()
    return po_view(ctx.conn, po_number, ctx.today)


def cancel_po(ctx: Ctx, po_number: str) -> dict[str, Any]:
    head, lines = _locked_po(ctx, po_number)
    if head.status != "open":
        raise Conflict(
            f"Purchase order {po_number} is {head.status}; only open ones can be cancelled.",
            [{"field": "status", "value": head.status, "reason": "not open"}],
        )
    ctx.conn.execute(
        update(purchase_orders)
        .where(purchase_orders.c.id == head.id)
        .values(status="cancelled", version=head.version + 1)
    )
    ctx.conn.execute(update(po_lines).where(po_lines.c.po_id == head.id).values(open=0))
    ctx.event("po_cancelled", {}, po_number=po_number)
    engine.recompute_etas(ctx, lines)
    ctx.flush_events()
    return po_view(ctx.conn, po_number, ctx.today)


def _close_if_received(ctx: Ctx, po_id: int) -> None:
    still_open = ctx.conn.execute(select(po_lines.c.id).where(po_lines.c.po_id == po_id, po_lines.c.open == 1)).first()
    if still_open is None:
        ctx.conn.execute(update(purchase_orders).where(purchase_orders.c.id == po_id).values(status="received"))


@dataclass(frozen=True)
class ReceiptLine:
    sku: str
    qty: int


def receive_goods(
    ctx: Ctx,
    grn_number: str,
    lines: list[ReceiptLine],
    po_number: str | None = None,
    received_at: datetime | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Book a goods-received note and, in the same transaction, allocate it to the queues.

    The same GRN number again returns the stored result and changes nothing.
    """
    digest = request_hash(body if body is not None else {"grn": grn_number, "lines": repr(lines), "po": po_number})
    stored = ctx.conn.execute(select(receipts).where(receipts.c.grn_number == grn_number)).first()
    if stored is not None:
        if stored.request_hash != digest:
            raise Conflict(
                f"GRN '{grn_number}' was already booked with different content.",
                [{"field": "grn_number", "value": grn_number, "reason": "already used with another body"}],
            )
        return dict(stored.result), False

    qty_by_sku: dict[str, int] = defaultdict(int)
    for line in lines:
        qty_by_sku[line.sku] += line.qty
    locked = require_products(ctx, list(qty_by_sku))
    po_matched: list[dict[str, Any]] = []
    if po_number is not None:
        head = ctx.conn.execute(select(purchase_orders).where(purchase_orders.c.po_number == po_number)).first()
        if head is None:
            raise Invalid(
                f"No purchase order '{po_number}'. Omit po_number for an unplanned receipt.",
                [{"field": "po_number", "value": po_number, "reason": "unknown purchase order"}],
            )
        if head.status == "cancelled":
            raise Conflict(
                f"Purchase order {po_number} is cancelled; receive without po_number instead.",
                [{"field": "po_number", "value": po_number, "reason": "cancelled"}],
            )
        po_matched = _receive_against_po(ctx, head, qty_by_sku)
    at = received_at or ctx.now
    ctx.conn.execute(
        update(products)
        .where(products.c.sku == bindparam("b_sku"))
        .values(on_hand=products.c.on_hand + bindparam("b_qty")),
        [{"b_sku": s, "b_qty": q} for s, q in sorted(qty_by_sku.items())],
    )
    ctx.conn.execute(
        insert(stock_movements),
        [
            {"sku": s, "qty_delta": q, "kind": "receipt", "ref": grn_number, "at": at}
            for s, q in sorted(qty_by_sku.items())
        ],
    )
    for s, q in sorted(qty_by_sku.items()):
        ctx.event(
            "goods_received", {"grn_number": grn_number, "po_number": po_number, "qty": q}, sku=s, po_number=po_number
        )
    plan = engine.after_stock_change(ctx, locked, "receipt", grn_number, redate=qty_by_sku)
    allocated: dict[str, int] = defaultdict(int)
    for a in plan:
        allocated[a.line.sku] += a.qty
    result = {
        "grn_number": grn_number,
        "po_number": po_number,
        "received_at": at.isoformat().replace("+00:00", "Z"),
        "lines": [{"sku": s, "qty": q} for s, q in sorted(qty_by_sku.items())],
        "po_lines": po_matched,
        "allocations": [
            {"order_number": a.line.order_number, "line_no": a.line.line_no, "sku": a.line.sku, "qty": a.qty}
            for a in plan
        ],
        "unallocated": [{"sku": s, "qty": q - allocated[s]} for s, q in sorted(qty_by_sku.items()) if q > allocated[s]],
    }
    ctx.conn.execute(
        insert(receipts).values(
            grn_number=grn_number, po_number=po_number, received_at=at, request_hash=digest, result=result
        )
    )
    return result, True


def _receive_against_po(ctx: Ctx, head: Any, qty_by_sku: dict[str, int]) -> list[dict[str, Any]]:
    """Count received units against the PO's open lines; the excess and unplanned SKUs are just stock."""
    rows = {r.sku: r for r in ctx.conn.execute(select(po_lines).where(po_lines.c.po_id == head.id))}
    out, changes = [], []
    for sku, qty in sorted(qty_by_sku.items()):
        row = rows.get(sku)
        if row is None:
            out.append({"sku": sku, "received": qty, "against_po": 0, "over": 0, "unplanned": qty})
            continue
        open_qty = max(0, row.qty - row.received_qty) if row.open else 0
        counted = min(qty, open_qty)
        changes.append({"b_id": row.id, "b_qty": counted, "b_open": int(row.received_qty + counted < row.qty)})
        out.append({"sku": sku, "received": qty, "against_po": counted, "over": qty - counted, "unplanned": 0})
    if changes:
        ctx.conn.execute(
            update(po_lines)
            .where(po_lines.c.id == bindparam("b_id"))
            .values(received_qty=po_lines.c.received_qty + bindparam("b_qty"), open=bindparam("b_open")),
            changes,
        )
    _close_if_received(ctx, head.id)
    return out


@dataclass(frozen=True)
class PromiseLine:
    sku: str
    qty: int


def promise(
    ctx: Ctx, channel: str, lines: list[PromiseLine], customer_id: str | None = None, priority: int = 0
) -> dict[str, Any]:
    """What an order would get now, and when the rest would come: nothing is reserved."""
    rows = {
        r.sku: r
        for r in ctx.conn.execute(select(products).where(products.c.sku.in_(sorted({line.sku for line in lines}))))
    }
    unknown = sorted({line.sku for line in lines} - set(rows))
    tier_rank = 0
    if customer_id is not None:
        tier = ctx.conn.execute(select(customers.c.tier).where(customers.c.customer_id == customer_id)).scalar()
        if tier is None:
            raise Invalid(
                f"Unknown customer '{customer_id}'.",
                [{"field": "customer_id", "value": customer_id, "reason": "unknown customer"}],
            )
        tier_rank = Tier(tier).rank
    if unknown:
        raise Invalid(
            f"Unknown SKU(s): {', '.join(unknown)}.",
            [{"field": "lines[].sku", "sku": s, "reason": "unknown sku"} for s in unknown],
        )
    stock = sku_stock(ctx.conn, rows)
    supplies = engine.open_supplies(ctx, rows)
    fields = sort_fields(ctx.rule())
    value = sum((rows[line.sku].unit_price * line.qty for line in lines), Decimal("0"))
    out = []
    earlier_waiting: dict[str, int] = defaultdict(int)  # this request's own earlier lines queue first
    for line in lines:
        s = stock[line.sku]
        now_qty = min(line.qty, s.available)
        rest = line.qty - now_qty
        room, _ = backorder_room(s, channel, ctx.now)
        if s.policy.max_qty_per_line is not None:
            room = min(room, s.policy.max_qty_per_line)
        stock[line.sku] = replace(s, allocated=s.allocated + now_qty, backordered=s.backordered + min(rest, room))
        eta: date | None = ctx.today if rest == 0 else None
        if rest and rest <= room:
            me = {
                "priority": priority,
                "tier_rank": tier_rank,
                "order_value": value,
                "placed_at": ctx.now,
                "promised_date": None,
                "order_number": "\uffff",
                "line_no": 0,
            }
            me_values = [me[f.attr] for f in fields]
            ahead = ctx.conn.execute(
                select(func.coalesce(func.sum(order_lines.c.backordered_qty), 0)).where(
                    order_lines.c.sku == line.sku,
                    order_lines.c.backordered_qty > 0,
                    before(order_lines, fields, me_values),
                )
            ).scalar_one()
            lead = rows[line.sku].lead_time_days
            eta = quote_eta(
                int(ahead) + earlier_waiting[line.sku], rest, supplies.get(line.sku, []), ctx.today, lead
            ).eta
            earlier_waiting[line.sku] += rest
        out.append(
            {
                "sku": line.sku,
                "qty": line.qty,
                "available_now": now_qty,
                "backorderable": rest <= room,
                "backorderable_qty": min(rest, room),
                "eta": eta.isoformat() if eta else None,
            }
        )
    return {"lines": out}
