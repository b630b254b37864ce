"""Placing, cancelling and re-prioritising orders (PRODUCT.md rules 1-3, 8)."""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, func, select, text, true
from sqlalchemy.dialects import sqlite

from oms import engine
from oms.domain import bounds
from oms.domain.allocation import SortField, Tier, queue_sort_key, sort_fields
from oms.domain.errors import Conflict, DomainError, Invalid, NotFound
from oms.domain.eta import Supply, walk_etas
from oms.domain.fulfillment import (
    CancelPlan,
    CancelReason,
    OrderStatus,
    ShipmentStatus,
    ShipPolicy,
    plan_cancel,
    reason_code_of,
)
from oms.domain.policy import LineRequest, SkuStock, decide_placement
from oms.engine import Line, Order, Product, WorkingSet, request_hash
from oms.store.bulk import insert_rows, update_rows
from oms.store.queue import order_by
from oms.store.tables import (
    customers,
    order_lines,
    orders,
    po_lines,
    products,
    purchase_orders,
    shipment_lines,
    shipments,
)
from oms.store.uow import UnitOfWork, version_column


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


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    created: bool  # False: the same order was sent again and this is the stored one


class _NumberTaken(Exception):
    """The order number is stored already (found by the insert's ON CONFLICT)."""


def place_order(uow: UnitOfWork, cmd: PlaceOrder) -> PlacedOrder:
    """Accept an order: each line takes what is available, the rest waits in its SKU's queue.

    PostgreSQL, a single-line order that allocates and releases: BEGIN, the products and the
    customer locked and read, the order with its lines, the products' counters, the allocation with
    its shipment and shipment line, the events, COMMIT. An order that waits reads its queue's tail
    and supply instead of writing a shipment.
    """
    digest = request_hash(cmd.body if cmd.body is not None else {"cmd": repr(cmd)})
    try:
        return PlacedOrder(_place(WorkingSet(uow), cmd, digest), True)
    except (DomainError, _NumberTaken):
        # A retry of an order already stored is answered with it, even when it could not be placed again.
        stored = load_order(uow, cmd.order_number)
        if stored is None:
            raise
        request = stored[1]
        if request != digest:
            raise Conflict(
                f"Order number '{cmd.order_number}' is already taken by a different order. "
                "Send the identical body to fetch it again, or use a new order number.",
                [{"field": "order_number", "value": cmd.order_number, "reason": "already used with another body"}],
            ) from None
        return PlacedOrder(stored[0], False)


def _place(ws: WorkingSet, cmd: PlaceOrder, digest: str) -> Order:
    uow = ws.uow
    want: dict[str, int] = defaultdict(int)
    for line in cmd.lines:
        want[line.sku] += line.qty
    tier = _lock_stock_and_customer(ws, sorted(want), cmd.customer_id)
    short = sorted(s for s, n in want.items() if n > ws.products[s].available)  # some units of these will wait
    supplies, tails = _queue_context(ws, short)
    stock = {
        s: SkuStock(s, p.on_hand, p.allocated, p.backordered, sum(x.qty for x in supplies.get(s, ())), p.policy)
        for s, p in ws.products.items()
    }
    now = uow.now  # read after the locks: a hot SKU's orders are placed in the order they get it
    if cmd.placed_at is not None and cmd.placed_at > now:
        raise Invalid(
            "placed_at lies in the future; send the time the order was placed, or leave it out for now.",
            [
                {
                    "field": "placed_at",
                    "value": engine.iso(cmd.placed_at),
                    "reason": "in the future",
                    "latest": engine.iso(now),
                }
            ],
        )
    decisions = decide_placement(
        [LineRequest(i, line.sku, line.qty) for i, line in enumerate(cmd.lines, start=1)], stock, cmd.channel, now
    )
    prices = [
        line.unit_price if line.unit_price is not None else ws.products[line.sku].unit_price for line in cmd.lines
    ]
    value = sum((p * line.qty for p, line in zip(prices, cmd.lines, strict=True)), Decimal("0"))
    if value > bounds.MAX_ORDER_VALUE:
        raise Invalid(
            f"The order's value ({value}) is above the most one order may be worth ({bounds.MAX_ORDER_VALUE}); "
            "split it into smaller orders.",
            [
                {
                    "field": "lines",
                    "value": str(value),
                    "reason": "order value too large",
                    "max": str(bounds.MAX_ORDER_VALUE),
                }
            ],
        )
    placed_at = cmd.placed_at or now
    order = Order(
        id=None,
        order_number=cmd.order_number,
        channel=cmd.channel,
        customer_id=cmd.customer_id,
        ship_policy=cmd.ship_policy,
        status=OrderStatus.BACKORDERED.value,
        priority=cmd.priority,
        placed_at=placed_at,
        order_value=value,
    )
    ahead = {s: p.backordered for s, p in ws.products.items()}  # units waiting before this order's
    for d, price in zip(decisions, prices, strict=True):
        new = Line(
            id=None,
            order_id=None,
            order_number=cmd.order_number,
            line_no=d.line_no,
            sku=d.sku,
            qty=d.qty,
            unit_price=price,
            allocated_qty=d.allocate_qty,
            backordered_qty=d.backorder_qty,
            shipped_qty=0,
            cancelled_qty=0,
            released_qty=0,
            eta=None,
            eta_basis=None,
            promised_date=None,
            backordered_at=now if d.backorder_qty else None,
            dispatched_at=None,
            channel=cmd.channel,
            customer_id=cmd.customer_id,
            placed_at=placed_at,
            priority=cmd.priority,
            tier_rank=tier.rank,
            order_value=value,
        )
        order.lines.append(new)
        product = ws.products[d.sku]
        product.allocated += d.allocate_qty
        product.backordered += d.backorder_qty
        if d.allocate_qty:
            ws.allocations.append((new, d.allocate_qty, "placement", cmd.order_number))
    _date_new_lines(ws, order, ahead, supplies, tails)
    uow.event(
        "order_placed",
        {
            "channel": cmd.channel,
            "customer_id": cmd.customer_id,
            "ship_policy": cmd.ship_policy.value,
            "priority": cmd.priority,
            "order_value": str(value),
            "lines": [
                {
                    "line_no": line.line_no,
                    "sku": line.sku,
                    "qty": line.qty,
                    "allocated_qty": line.allocated_qty,
                    "backordered_qty": line.backordered_qty,
                    "eta": engine.iso(line.eta),
                }
                for line in order.lines
            ],
        },
        order_number=cmd.order_number,
    )
    waiting = [line for line in order.lines if line.backordered_qty]
    if waiting:
        uow.event(
            "backordered",
            {"lines": [{"line_no": ln.line_no, "sku": ln.sku, "qty": ln.backordered_qty} for ln in waiting]},
            order_number=cmd.order_number,
        )
    engine.settle(ws, [order])
    _store_placed(ws, order, digest)
    return order


@functools.cache
def _stock_and_customer(dialect: str) -> Any:
    q = (
        select(products, customers.c.tier, version_column().label("settings_version"))
        .select_from(products.join(customers, true()))
        .where(products.c.sku.in_(bindparam("skus", expanding=True)), customers.c.customer_id == bindparam("cid"))
        .order_by(products.c.sku)
    )
    if dialect == "postgresql":
        q = q.with_for_update(of=products).suffix_with("FOR SHARE OF customers", dialect="postgresql")
    return q


def _lock_stock_and_customer(ws: WorkingSet, skus: list[str], customer_id: str) -> Tier:
    """Lock the SKUs (FOR UPDATE) and the customer (FOR SHARE: a tier change waits for this order) in one statement."""
    q = _stock_and_customer(ws.uow.dialect)
    rows = ws.conn.execute(q, {"skus": skus, "cid": customer_id}).all()
    if rows:
        ws.uow.saw_version(rows[0].settings_version)
    for r in rows:
        ws.products[r.sku] = Product.from_row(r, ws.uow.default_policy())
    if len(rows) == len(skus):
        return Tier(rows[0].tier)
    # Something is unknown: say everything that is, at once.
    known_customer = (
        rows or ws.conn.execute(select(customers.c.customer_id).where(customers.c.customer_id == customer_id)).first()
    )
    known = set(ws.products) if rows else set(ws.conn.scalars(select(products.c.sku).where(products.c.sku.in_(skus))))
    problems: list[dict[str, Any]] = []
    if not known_customer:
        problems.append({"field": "customer_id", "value": customer_id, "reason": "unknown customer"})
    problems += [{"field": "lines[].sku", "sku": s, "reason": "unknown sku"} for s in skus if s not in known]
    raise Invalid(
        "The order names unknown customers or products: "
        + ", ".join(str(p.get("value", p.get("sku"))) for p in problems)
        + ".",
        problems,
    )


def _queue_context(ws: WorkingSet, skus: list[str]) -> tuple[dict[str, list[Supply]], dict[str, Any]]:
    """For SKUs some of whose units will wait: their open supply and the last line of their queue.

    One statement, read after the locks (so it sees what the transaction waited for).
    """
    if not skus:
        return {}, {}
    fields = sort_fields(ws.uow.rule())
    q = _context_statement(ws.uow.dialect, tuple(fields))
    supplies: dict[str, list[Supply]] = {}
    tails: dict[str, Any] = {}
    for sku, sup, last in ws.conn.execute(q, {"skus": skus}):
        supplies[sku] = [
            engine.supply(ws.uow, engine.as_date(d), int(q), str(po)) for d, q, po in engine.parse_json(sup) or ()
        ]
        if last is not None:
            values = engine.parse_json(last)
            tails[sku] = SimpleNamespace(
                **{f.attr: engine.from_json(f.attr, v) for f, v in zip(fields, values, strict=True)}
            )
    return supplies, tails


@functools.cache
def _context_statement(dialect: str, fields: tuple[SortField, ...]) -> Any:
    pg = dialect == "postgresql"
    row_of = func.json_build_array if pg else func.json_array
    supply = (
        select(
            (func.json_agg if pg else func.json_group_array)(
                row_of(po_lines.c.expected_date, po_lines.c.qty - po_lines.c.received_qty, purchase_orders.c.po_number)
            )
        )
        .select_from(po_lines.join(purchase_orders, purchase_orders.c.id == po_lines.c.po_id))
        .where(
            po_lines.c.sku == products.c.sku,
            po_lines.c.open == 1,
            purchase_orders.c.status == "open",
            po_lines.c.qty > po_lines.c.received_qty,
        )
        .scalar_subquery()
    )
    tail = (
        select(row_of(*(order_lines.c[f.attr] for f in fields)))
        .where(order_lines.c.sku == products.c.sku, order_lines.c.backordered_qty > 0)
        .order_by(*order_by(order_lines, fields, reverse=True))
        .limit(1)
        .scalar_subquery()
    )
    return select(products.c.sku, supply, tail).where(products.c.sku.in_(bindparam("skus", expanding=True)))


def _date_new_lines(
    ws: WorkingSet,
    order: Order,
    ahead: Mapping[str, int],
    supplies: Mapping[str, list[Supply]],
    tails: Mapping[str, Any],
) -> None:
    """Date the order's waiting lines.

    Most new lines join their queue at its tail (FIFO): nothing else moves, and the ETA follows from
    the units already waiting. A line that lands ahead of others (a boost, a higher tier, an older
    placed_at, or a rule on promised dates) has its SKU's whole queue dated again.
    """
    rule = ws.uow.rule()
    key = queue_sort_key(rule)
    new: dict[str, list[Line]] = defaultdict(list)
    for line in order.lines:
        if line.backordered_qty:
            new[line.sku].append(line)
    for sku, lines in sorted(new.items()):
        last = tails.get(sku)
        if not engine.placed_rule_needs_whole_queue(rule) and (last is None or key(last) < key(lines[0])):
            product = ws.products[sku]
            etas = walk_etas(
                [ahead[sku]] + [ln.backordered_qty for ln in lines],
                supplies.get(sku, ()),
                ws.uow.today,
                product.lead_time_days,
            )[1:]
            for line, e in zip(lines, etas, strict=True):
                line.eta, line.eta_basis, line.promised_date = e.eta, e.basis, e.eta
            continue
        queue = engine.read_queues(ws, [sku])[sku]
        ws.queues[sku] = queue + lines
        engine.redate(ws, [sku], supplies)


ORDER_HEAD = (
    "order_number",
    "channel",
    "customer_id",
    "ship_policy",
    "placed_at",
    "priority",
    "order_value",
    "status",
    "request_hash",
    "created_at",
)
LINE_VALUES = tuple(c.name for c in engine.LINE_COLUMNS if c.name not in ("id", "order_id"))


# PostgreSQL: the whole placement in one statement, after the decision. The order is inserted unless
# its number is stored (ON CONFLICT DO NOTHING); every other part joins on the order or its lines, so
# a stored number writes nothing at all. Data-modifying CTEs run once each, on one snapshot; they see
# each other only through RETURNING.
PLACE = text(
    "WITH o AS (INSERT INTO orders (order_number, channel, customer_id, ship_policy, placed_at, priority,"
    " order_value, status, request_hash, created_at) VALUES (:order_number, :channel, :customer_id, :ship_policy,"
    " :placed_at, :priority, :order_value, :status, :request_hash, :now)"
    " ON CONFLICT (order_number) DO NOTHING RETURNING id),"
    " l AS (INSERT INTO order_lines (order_id, line_no, sku, qty, unit_price, allocated_qty, backordered_qty,"
    " shipped_qty, cancelled_qty, released_qty, eta, eta_basis, promised_date, backordered_at, order_number,"
    " channel, customer_id, placed_at, priority, tier_rank, order_value)"
    " SELECT o.id, v.line_no, v.sku, v.qty, v.unit_price, v.allocated_qty, v.backordered_qty, 0, 0,"
    " v.released_qty, v.eta, v.eta_basis, v.eta, v.backordered_at, :order_number, :channel, :customer_id,"
    " :placed_at, :priority, :tier_rank, :order_value"
    " FROM o, json_to_recordset(CAST(:lines AS json)) AS v(line_no integer, sku varchar, qty integer,"
    " unit_price bigint, allocated_qty integer, backordered_qty integer, released_qty integer, eta date,"
    " eta_basis varchar, backordered_at timestamptz) ORDER BY v.line_no RETURNING id, line_no),"
    " p AS (UPDATE products SET allocated = v.allocated, backordered = v.backordered"
    " FROM json_to_recordset(CAST(:products AS json)) AS v(sku varchar, allocated integer, backordered integer)"
    " WHERE products.sku = v.sku AND EXISTS (SELECT 1 FROM o)),"
    " a AS (INSERT INTO allocations (line_id, sku, qty, source, ref, at)"
    " SELECT l.id, v.sku, v.qty, 'placement', :order_number, :now"
    " FROM l JOIN json_to_recordset(CAST(:allocations AS json)) AS v(line_no integer, sku varchar, qty integer)"
    " ON v.line_no = l.line_no),"
    " s AS (INSERT INTO shipments (order_id, order_number, channel, status, created_at, updated_at)"
    " SELECT o.id, :order_number, :channel, 'pick', :now, :now FROM o WHERE :ships RETURNING id),"
    " sl AS (INSERT INTO shipment_lines (shipment_id, line_id, line_no, sku, qty)"
    " SELECT s.id, l.id, v.line_no, v.sku, v.qty FROM s CROSS JOIN l"
    " JOIN json_to_recordset(CAST(:released AS json)) AS v(line_no integer, sku varchar, qty integer)"
    " ON v.line_no = l.line_no)"
    " SELECT l.id, l.line_no, (SELECT id FROM o) AS order_id, (SELECT id FROM s) AS shipment_id FROM l"
)


def _store_placed(ws: WorkingSet, order: Order, digest: str) -> None:
    """Write the placed order, its lines, the products' counters, its allocations and its shipment.

    PostgreSQL: one statement (PLACE). SQLite: one statement per table, in process. A stored order
    number raises _NumberTaken before anything is written.
    """
    if ws.postgresql:
        _place_in_one_statement(ws, order, digest)
    else:
        _insert(ws, order, digest)
    engine.flush(ws)  # what else moved: the re-dated lines of a queue the order jumped into


def _place_in_one_statement(ws: WorkingSet, order: Order, digest: str) -> None:
    shipment = ws.shipments[0] if ws.shipments else None  # settling a new order makes at most one
    by_no = {line.line_no: line for line in order.lines}
    params = {
        "order_number": order.order_number,
        "channel": order.channel,
        "customer_id": order.customer_id,
        "ship_policy": order.ship_policy.value,
        "placed_at": order.placed_at,
        "priority": order.priority,
        "order_value": _cents(order.order_value),
        "tier_rank": order.lines[0].tier_rank,
        "status": order.status,
        "request_hash": digest,
        "now": ws.uow.now,
        "ships": shipment is not None,
        "lines": _json(
            {
                "line_no": ln.line_no,
                "sku": ln.sku,
                "qty": ln.qty,
                "unit_price": _cents(ln.unit_price),
                "allocated_qty": ln.allocated_qty,
                "backordered_qty": ln.backordered_qty,
                "released_qty": ln.released_qty,
                "eta": engine.iso(ln.eta),
                "eta_basis": ln.eta_basis,
                "backordered_at": ln.backordered_at.isoformat() if ln.backordered_at else None,
            }
            for ln in order.lines
        ),
        "products": _json(
            {"sku": p.sku, "allocated": p.allocated, "backordered": p.backordered} for p in ws.products.values()
        ),
        "allocations": _json(
            {"line_no": line.line_no, "sku": line.sku, "qty": qty} for line, qty, _, _ in ws.allocations
        ),
        "released": _json({"line_no": n, "sku": by_no[n].sku, "qty": q} for n, q in sorted(shipment.units.items()))
        if shipment is not None
        else "[]",
    }
    rows = ws.conn.execute(PLACE, params).all()
    if not rows:
        raise _NumberTaken
    order.id = rows[0].order_id
    for r in rows:
        line = by_no[r.line_no]
        line.id, line.order_id = r.id, order.id
        line.loaded = line.state()
        ws.lines[line.id] = line
    order.loaded = (order.status, order.priority)
    ws.orders[order.id] = order
    for p in ws.products.values():
        p.loaded = (p.on_hand, p.allocated, p.backordered)
    if shipment is not None:
        shipment.id = rows[0].shipment_id
        shipment.event_data["shipment_id"] = shipment.id
    ws.allocations, ws.shipments = [], []


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_exact())


def _json(rows: Iterable[dict[str, Any]]) -> str:
    return json.dumps(list(rows), separators=(",", ":"))


@functools.cache
def _order_insert() -> Any:
    """SQLite: INSERT the order unless its number is stored (ON CONFLICT DO NOTHING)."""
    return (
        sqlite.insert(orders)
        .values({c: bindparam(f"h_{c}", type_=orders.c[c].type) for c in ORDER_HEAD})
        .on_conflict_do_nothing(index_elements=["order_number"])
        .returning(orders.c.id)
    )


def _insert(ws: WorkingSet, order: Order, digest: str) -> None:
    """SQLite: the order, then its lines, with their final values; a stored order number raises _NumberTaken."""
    head = {
        "h_order_number": order.order_number,
        "h_channel": order.channel,
        "h_customer_id": order.customer_id,
        "h_ship_policy": order.ship_policy.value,
        "h_placed_at": order.placed_at,
        "h_priority": order.priority,
        "h_order_value": order.order_value,
        "h_status": order.status,
        "h_request_hash": digest,
        "h_created_at": ws.uow.now,
    }
    rows = [{n: getattr(line, n) for n in LINE_VALUES} for line in order.lines]
    order_id = ws.conn.execute(_order_insert(), head).scalar()
    if order_id is None:
        raise _NumberTaken
    order.id = order_id
    returned = insert_rows(
        ws.conn, order_lines, [r | {"order_id": order_id} for r in rows], returning=("id", "line_no")
    )
    ids = {r.line_no: r.id for r in returned}
    for line in order.lines:
        line.id, line.order_id = ids[line.line_no], order.id
        line.loaded = line.state()
        ws.lines[line.id] = line
    order.loaded = (order.status, order.priority)
    ws.orders[order.id] = order


def load_order(uow: UnitOfWork, order_number: str, channel: str | None = None) -> tuple[Order, str] | None:
    """The stored order with its lines (no lock), and its request digest."""
    q = select(*engine.ORDER_COLUMNS, orders.c.request_hash).where(orders.c.order_number == order_number)
    if channel is not None:
        q = q.where(orders.c.channel == channel)
    head = uow.conn.execute(q).first()
    if head is None:
        return None
    order = Order.from_row(head)
    order.lines = [
        Line.from_row(r)
        for r in uow.conn.execute(
            select(*engine.LINE_COLUMNS).where(order_lines.c.order_id == head.id).order_by(order_lines.c.line_no)
        )
    ]
    return order, head.request_hash


# ---- changing an order ------------------------------------------------------------------------------


def lock_order(ws: WorkingSet, order_number: str, channel: str | None = None) -> Order:
    """Lock an order for a change: its SKUs first (sorted), then its row; then read its lines."""
    q = (
        select(orders.c.id, order_lines.c.sku)
        .join(order_lines, order_lines.c.order_id == orders.c.id)
        .where(orders.c.order_number == order_number)
    )
    if channel is not None:
        q = q.where(orders.c.channel == channel)
    rows = ws.conn.execute(q).all()
    if not rows:
        raise NotFound(f"No order '{order_number}'.")
    engine.lock_products(ws, {r.sku for r in rows})
    return engine.lock_orders(ws, [rows[0].id])[0]


def cancel_order(
    uow: UnitOfWork,
    order_number: str,
    reason: str,
    lines: list[tuple[int, int]] | None,
    channel: str | None = None,
    reason_code: CancelReason | None = None,
) -> Order:
    """Cancel outstanding units (all, or some per line) with a reason; freed units go to the queue.

    `reason_code` says why, for the reports; without it the code follows from the text (`reason_code_of`).
    """
    ws = WorkingSet(uow)
    order = lock_order(ws, order_number, channel)
    by_no = {line.line_no: line for line in order.lines}
    unknown = [no for no, _ in lines or [] if no not in by_no]
    if unknown:
        raise Invalid(
            f"Order {order_number} has no line(s) {unknown}; its lines are {sorted(by_no)}.",
            [{"field": "lines[].line_no", "value": n, "reason": "unknown line"} for n in unknown],
        )
    wanted: dict[int, int | None] = dict.fromkeys(by_no) if lines is None else {}
    for no, qty in lines or []:
        wanted[no] = (wanted.get(no) or 0) + qty
    in_pick = _units_in_pick(ws, order)
    plans: list[tuple[Line, CancelPlan]] = []
    problems: list[dict[str, Any]] = []
    for no, want in sorted(wanted.items()):
        line = by_no[no]
        try:
            plan = plan_cancel(line.qty_view(), want, sum(q for _, _, q in in_pick.get(line.id or 0, [])))
        except DomainError as exc:
            problems.extend(exc.errors)
            continue
        if plan.total:
            plans.append((line, plan))
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
    for line, p in plans:
        line.backordered_qty -= p.from_backordered
        line.allocated_qty -= p.freed_allocated
        line.released_qty -= p.from_pick
        line.cancelled_qty += p.total
        product = ws.products[line.sku]
        product.backordered -= p.from_backordered
        product.allocated -= p.freed_allocated
    uow.event(
        "cancelled",
        {
            "reason": reason,
            "reason_code": (reason_code or reason_code_of(reason)).value,
            "lines": [
                {
                    "line_no": line.line_no,
                    "sku": line.sku,
                    "qty": p.total,
                    "backordered": p.from_backordered,
                    "allocated": p.freed_allocated,
                }
                for line, p in plans
            ],
        },
        order_number=order_number,
    )
    skus = sorted({line.sku for line, _ in plans})
    engine.after_stock_change(ws, skus, "cancellation", order_number, touched=[order.id or 0], redate_skus=skus)
    engine.flush(ws)
    _shrink_pick(ws, plans, in_pick)
    return order


def _units_in_pick(ws: WorkingSet, order: Order) -> dict[int, list[tuple[int, int, int]]]:
    """For each line of the order: (shipment line id, shipment id, units) still in pick, oldest first."""
    q = (
        select(shipment_lines.c.line_id, shipment_lines.c.id, shipment_lines.c.shipment_id, shipment_lines.c.qty)
        .join(shipments, shipments.c.id == shipment_lines.c.shipment_id)
        .where(
            shipments.c.order_id == order.id,
            shipments.c.status == ShipmentStatus.PICK.value,
            shipment_lines.c.qty > 0,
        )
        .order_by(shipment_lines.c.id)
    )
    out: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for line_id, sl_id, shipment_id, qty in ws.conn.execute(q):
        out[line_id].append((sl_id, shipment_id, qty))
    return out


def _shrink_pick(
    ws: WorkingSet, plans: list[tuple[Line, CancelPlan]], in_pick: Mapping[int, Sequence[tuple[int, int, int]]]
) -> None:
    """Take cancelled units out of shipments still in pick, oldest first; a shipment left empty is cancelled."""
    left_in: dict[int, int] = defaultdict(int)  # shipment id -> units it still holds
    for parts in in_pick.values():
        for _, shipment_id, qty in parts:
            left_in[shipment_id] += qty
    shrink: list[dict[str, Any]] = []
    for line, p in plans:
        take_total = p.from_pick
        for sl_id, shipment_id, qty in in_pick.get(line.id or 0, []):
            if take_total <= 0:
                break
            take = min(take_total, qty)
            shrink.append({"id": sl_id, "qty": qty - take})
            left_in[shipment_id] -= take
            take_total -= take
    if not shrink:
        return
    update_rows(ws.conn, shipment_lines, "id", shrink)
    emptied = sorted(s for s, n in left_in.items() if n == 0)
    update_rows(
        ws.conn,
        shipments,
        "id",
        [{"id": s, "status": ShipmentStatus.CANCELLED.value, "updated_at": ws.uow.now} for s in emptied],
    )


def set_priority(uow: UnitOfWork, order_number: str, priority: int, channel: str | None = None) -> Order:
    """Give an order a manual boost; its waiting lines move in priority-ranked queues."""
    ws = WorkingSet(uow)
    order = lock_order(ws, order_number, channel)
    uow.event("priority_changed", {"from": order.priority, "to": priority}, order_number=order_number)
    order.priority = priority
    for line in order.lines:
        line.priority = priority
    waiting = sorted({line.sku for line in order.lines if line.backordered_qty > 0})
    if waiting:
        engine.read_queues(ws, waiting)
        engine.redate(ws, waiting, engine.read_supplies(ws, waiting))
    engine.flush(ws)
    return order


__all__ = ["PlacedOrder", "po_lines", "purchase_orders", "update_rows"]
