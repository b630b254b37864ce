"""The working set of a stock-changing use case: read once under its locks, decided in memory, written once.

A use case locks the SKUs it touches (sorted), reads what the rules need in a few set-based
statements, lets the domain decide (placement, the queue walk, release, status, ETAs) on the
in-memory copies below, and `flush` writes each changed row's final state in one statement per
table. Nothing is read back after it is written: answers are built from the working set.

Lock order, the same in every use case so that none waits on another in a cycle:
products (by SKU) -> customers -> purchase orders -> orders (by id). Shipments change only under
their order's lock, and order lines only under their SKU's lock (and their order's, where the
order's other lines matter). On SQLite the transaction holds the database's write lock from its
BEGIN IMMEDIATE, so the row locks below are PostgreSQL's only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from oms.domain.allocation import Allocation, RuleKey, SortField, plan_allocation, queue_sort_key, sort_fields
from oms.domain.bounds import MAX_SKU_UNITS
from oms.domain.errors import Conflict, Invalid
from oms.domain.eta import Supply, late_supply_date, walk_etas
from oms.domain.fulfillment import LineQty, ShipmentStatus, ShipPolicy, order_status, units_to_release
from oms.domain.policy import BackorderPolicy, policy_from_json
from oms.store.bulk import chunks, insert_rows, update_rows
from oms.store.queue import order_by
from oms.store.tables import (
    allocations,
    order_lines,
    orders,
    po_lines,
    products,
    purchase_orders,
    shipment_lines,
    shipments,
    stock_movements,
)
from oms.store.uow import UnitOfWork, version_column

# ---- the in-memory copies -------------------------------------------------------------------------


@dataclass(eq=False)
class Product:
    """A locked product row; its counters change in memory and are written once."""

    sku: str
    name: str
    unit_price: Decimal
    lead_time_days: int | None
    stored_policy: Any  # the JSON kept on the row; None: the default policy applies
    policy: BackorderPolicy  # the effective policy
    on_hand: int
    allocated: int
    backordered: int
    version: int
    loaded: tuple[int, int, int] = (0, 0, 0)

    @classmethod
    def from_row(cls, r: Any, default_policy: BackorderPolicy) -> Product:
        """The product as a products row holds it; `default_policy` applies when the row sets none."""
        return cls(
            sku=r.sku,
            name=r.name,
            unit_price=r.unit_price,
            lead_time_days=r.lead_time_days,
            stored_policy=r.backorder_policy,
            policy=policy_from_json(r.backorder_policy) or default_policy,
            on_hand=r.on_hand,
            allocated=r.allocated,
            backordered=r.backordered,
            version=r.version,
            loaded=(r.on_hand, r.allocated, r.backordered),
        )

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.allocated)

    @property
    def changed(self) -> bool:
        return (self.on_hand, self.allocated, self.backordered) != self.loaded


LINE_COLUMNS = (
    order_lines.c.id,
    order_lines.c.order_id,
    order_lines.c.order_number,
    order_lines.c.line_no,
    order_lines.c.sku,
    order_lines.c.qty,
    order_lines.c.unit_price,
    order_lines.c.allocated_qty,
    order_lines.c.backordered_qty,
    order_lines.c.shipped_qty,
    order_lines.c.cancelled_qty,
    order_lines.c.released_qty,
    order_lines.c.eta,
    order_lines.c.eta_basis,
    order_lines.c.promised_date,
    order_lines.c.backordered_at,
    order_lines.c.dispatched_at,
    order_lines.c.channel,
    order_lines.c.customer_id,
    order_lines.c.placed_at,
    order_lines.c.priority,
    order_lines.c.tier_rank,
    order_lines.c.order_value,
)
# What a use case may change on an existing line: written together, absolute values, when any moved.
# Never a placement fact (tables.ORDER_LINE_FACTS): the report rollups' triggers rely on them fixed.
MUTABLE = (
    "allocated_qty",
    "backordered_qty",
    "shipped_qty",
    "cancelled_qty",
    "released_qty",
    "eta",
    "eta_basis",
    "promised_date",
    "dispatched_at",
    "priority",
)


N_LINE_COLUMNS = len(LINE_COLUMNS)
_mutable_state = operator.attrgetter(*MUTABLE)


@dataclass(eq=False, slots=True)
class Line:
    """An order line; its attributes are the queue's sort fields too (domain.allocation.queue_sort_key)."""

    id: int | None
    order_id: int | None
    order_number: str
    line_no: int
    sku: str
    qty: int
    unit_price: Decimal
    allocated_qty: int
    backordered_qty: int
    shipped_qty: int
    cancelled_qty: int
    released_qty: int
    eta: date | None
    eta_basis: str | None
    promised_date: date | None
    backordered_at: datetime | None
    dispatched_at: datetime | None
    channel: str
    customer_id: str
    placed_at: datetime
    priority: int
    tier_rank: int
    order_value: Decimal
    loaded: tuple[Any, ...] | None = None  # MUTABLE as read; None for a line not yet stored

    @classmethod
    def from_row(cls, row: Any) -> Line:
        """From a row that starts with LINE_COLUMNS, in their order (a receipt builds tens of thousands)."""
        line = cls(*row[:N_LINE_COLUMNS])
        line.loaded = line.state()
        return line

    def state(self) -> tuple[Any, ...]:
        return _mutable_state(self)  # type: ignore[no-any-return]

    @property
    def dirty(self) -> bool:
        return self.loaded is not None and self.state() != self.loaded

    def qty_view(self) -> LineQty:
        return LineQty(
            line_no=self.line_no,
            sku=self.sku,
            qty=self.qty,
            allocated_qty=self.allocated_qty,
            backordered_qty=self.backordered_qty,
            shipped_qty=self.shipped_qty,
            cancelled_qty=self.cancelled_qty,
            released_qty=self.released_qty,
        )


ORDER_COLUMNS = (
    orders.c.id,
    orders.c.order_number,
    orders.c.channel,
    orders.c.customer_id,
    orders.c.ship_policy,
    orders.c.status,
    orders.c.priority,
    orders.c.placed_at,
    orders.c.order_value,
)


@dataclass(eq=False)
class Order:
    id: int | None
    order_number: str
    channel: str
    customer_id: str
    ship_policy: ShipPolicy
    status: str
    priority: int
    placed_at: datetime
    order_value: Decimal
    lines: list[Line] = field(default_factory=list)
    loaded: tuple[str, int] | None = None  # (status, priority) as read; None for a new order

    @classmethod
    def from_row(cls, row: Any) -> Order:
        order = cls(
            id=row.id,
            order_number=row.order_number,
            channel=row.channel,
            customer_id=row.customer_id,
            ship_policy=ShipPolicy(row.ship_policy),
            status=row.status,
            priority=row.priority,
            placed_at=row.placed_at,
            order_value=row.order_value,
        )
        order.loaded = (order.status, order.priority)
        return order

    @property
    def dirty(self) -> bool:
        return self.loaded is not None and (self.status, self.priority) != self.loaded


@dataclass(eq=False)
class NewShipment:
    order: Order
    units: dict[int, int]  # line number -> units released
    event_data: dict[str, Any]  # its shipment_created event's data, which gets the id on flush
    id: int | None = None


@dataclass(frozen=True)
class EtaChange:
    line: Line
    before: date | None


@dataclass
class WorkingSet:
    """What one use case has read and changed (see the module docstring)."""

    uow: UnitOfWork
    products: dict[str, Product] = field(default_factory=dict)
    lines: dict[int, Line] = field(default_factory=dict)  # stored lines by id: each row is read once
    orders: dict[int, Order] = field(default_factory=dict)
    queues: dict[str, list[Line]] = field(default_factory=dict)  # every waiting line of these SKUs, in rule order
    policies: dict[str, Any] = field(default_factory=dict)  # stored policy JSON of SKUs read but not locked
    allocations: list[tuple[Line, int, str, str | None]] = field(default_factory=list)
    shipments: list[NewShipment] = field(default_factory=list)
    movements: list[dict[str, Any]] = field(default_factory=list)
    eta_changes: list[EtaChange] = field(default_factory=list)

    @property
    def conn(self) -> Any:
        return self.uow.conn

    @property
    def postgresql(self) -> bool:
        return self.uow.dialect == "postgresql"

    def line(self, row: Any) -> Line:
        """The working copy of a stored line: the one already read, else a new one from `row`."""
        found = self.lines.get(row.id)
        if found is None:
            found = self.lines[row.id] = Line.from_row(row)
        return found

    def policy(self, sku: str) -> BackorderPolicy:
        if sku in self.products:
            return self.products[sku].policy
        return policy_from_json(self.policies.get(sku)) or self.uow.default_policy()

    def move(self, sku: str, qty_delta: int, kind: str, ref: str | None, reason: str | None = None) -> None:
        self.movements.append(
            {"sku": sku, "qty_delta": qty_delta, "kind": kind, "ref": ref, "reason": reason, "at": self.uow.now}
        )


# ---- reading -------------------------------------------------------------------------------------


def _ids_in(col: Any, ids: Sequence[int], postgresql: bool) -> Any:
    """col IN ids: one array parameter on PostgreSQL, a list on SQLite (callers chunk it)."""
    if postgresql:
        return col == any_(bindparam("ids", list(ids), type_=ARRAY(BigInteger)))
    return col.in_(list(ids))


@functools.cache
def _lock_statement(dialect: str) -> Any:
    q = (
        select(products, version_column().label("settings_version"))
        .where(products.c.sku.in_(bindparam("skus", expanding=True)))
        .order_by(products.c.sku)
    )
    return q.with_for_update(of=products) if dialect == "postgresql" else q


def lock_products(ws: WorkingSet, skus: Iterable[str]) -> dict[str, Product]:
    """Lock the SKUs' rows in sorted order and read them, with the settings version, in one statement."""
    wanted = sorted(set(skus) - set(ws.products))
    if wanted:
        q = _lock_statement(ws.uow.dialect)
        rows = ws.conn.execute(q, {"skus": wanted}).all()
        if rows:
            ws.uow.saw_version(rows[0].settings_version)
        for r in rows:
            ws.products[r.sku] = Product.from_row(r, ws.uow.default_policy())
    return {s: ws.products[s] for s in sorted(set(skus)) if s in ws.products}


def refuse_beyond_ceiling(ws: WorkingSet, added: Mapping[str, int], field_name: str) -> None:
    """Refuse units that would take a locked SKU's on hand past what its counter holds, naming every such SKU."""
    over: list[dict[str, Any]] = [
        {
            "field": field_name,
            "sku": s,
            "on_hand": ws.products[s].on_hand,
            "max_more": MAX_SKU_UNITS - ws.products[s].on_hand,
        }
        for s, q in sorted(added.items())
        if ws.products[s].on_hand + q > MAX_SKU_UNITS
    ]
    if over:
        raise Conflict(
            f"On hand of {', '.join(str(o['sku']) for o in over)} would pass {MAX_SKU_UNITS} units, "
            "the most a SKU holds; add at most max_more units.",
            over,
        )


def require_products(ws: WorkingSet, skus: Sequence[str], field_name: str = "lines") -> dict[str, Product]:
    """Lock the SKUs, refusing the request with every unknown SKU named."""
    found = lock_products(ws, skus)
    unknown = sorted(set(skus) - set(found))
    if unknown:
        raise Invalid(
            f"Unknown SKU(s): {', '.join(unknown)}. Create the product with PUT /products/{{sku}} first.",
            [{"field": f"{field_name}[].sku", "sku": s, "reason": "unknown sku"} for s in unknown],
        )
    return found


@functools.cache
def _queue_statement(fields: tuple[SortField, ...]) -> Any:
    return (
        select(*LINE_COLUMNS)
        .where(order_lines.c.sku.in_(bindparam("skus", expanding=True)), order_lines.c.backordered_qty > 0)
        .order_by(order_lines.c.sku, *order_by(order_lines, fields))
    )


def read_queues(ws: WorkingSet, skus: Iterable[str]) -> dict[str, list[Line]]:
    """Every waiting line of these (locked) SKUs in rule order, in one statement."""
    wanted = sorted(set(skus) - set(ws.queues))
    if wanted:
        fields = sort_fields(ws.uow.rule())
        got: dict[str, list[Line]] = {s: [] for s in wanted}
        q = _queue_statement(tuple(fields))
        for part in chunks(wanted):
            for r in ws.conn.execute(q, {"skus": list(part)}):
                got[r.sku].append(ws.line(r))
        for sku, queue in got.items():  # a line changed earlier in this use case may no longer wait
            ws.queues[sku] = [line for line in queue if line.backordered_qty > 0]
    return {s: ws.queues[s] for s in sorted(set(skus))}


def read_supplies(ws: WorkingSet, skus: Iterable[str], except_po: int | None = None) -> dict[str, list[Supply]]:
    """Open units on open purchase-order lines of these SKUs, dated (a late PO counts from its grace date).

    `except_po`: a purchase order the use case holds in memory and adds itself.
    """
    return open_supplies(ws.conn, skus, ws.uow.today, ws.uow.config().late_po_grace_days, except_po)


def open_supplies(
    conn: Any, skus: Iterable[str], today: date, grace_days: int, except_po: int | None = None
) -> dict[str, list[Supply]]:
    """`read_supplies` for the read side (explain, promise)."""
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
    if except_po is not None:
        q = q.where(po_lines.c.po_id != except_po)
    for r in conn.execute(q):
        if r.qty > r.received_qty:
            expected = late_supply_date(r.expected_date, today, grace_days)
            out[r.sku].append(Supply(expected, r.qty - r.received_qty, r.po_number))
    return out


def supply(uow: UnitOfWork, expected: date, qty: int, po_number: str) -> Supply:
    if expected < uow.today:
        expected = late_supply_date(expected, uow.today, uow.config().late_po_grace_days)
    return Supply(expected, qty, po_number)


def lock_orders(ws: WorkingSet, ids: Iterable[int]) -> list[Order]:
    """Lock these orders (by id) and read them with every line not already in the working set.

    The lines of SKUs whose whole queue was read (`ws.queues`) and that wait are in memory; the
    order's other lines are read after its lock, so what its settling sees is current.
    """
    wanted = sorted(set(ids) - set(ws.orders))
    for part in chunks(wanted):
        heads = select(*ORDER_COLUMNS).where(_ids_in(orders.c.id, part, ws.postgresql)).order_by(orders.c.id)
        if ws.postgresql:
            heads = heads.with_for_update()
        for r in ws.conn.execute(heads):
            ws.orders[r.id] = Order.from_row(r)
        known = sorted(ws.queues)
        q: Any = (
            select(*LINE_COLUMNS, products.c.backorder_policy)
            .join(products, products.c.sku == order_lines.c.sku)
            .where(_ids_in(order_lines.c.order_id, part, ws.postgresql))
        )
        if known:
            q = q.where(~(order_lines.c.sku.in_(known) & (order_lines.c.backordered_qty > 0)))
        for r in ws.conn.execute(q):
            ws.line(r)
            if r.sku not in ws.products:
                ws.policies[r.sku] = r.backorder_policy
    by_order: dict[int, list[Line]] = defaultdict(list)
    for line in ws.lines.values():
        if line.order_id in ws.orders and line.order_id is not None:
            by_order[line.order_id].append(line)
    for oid in wanted:
        ws.orders[oid].lines = sorted(by_order[oid], key=lambda ln: ln.line_no)
    return [ws.orders[oid] for oid in sorted(set(ids))]


# ---- deciding --------------------------------------------------------------------------------------


def allocate(ws: WorkingSet, skus: Iterable[str], source: str, ref: str | None = None) -> list[Allocation[Line]]:
    """Give each locked SKU's available units to its queue in rule order (rule 4)."""
    units = {s: p.available for s in sorted(set(skus)) if (p := ws.products[s]).available > 0 and p.backordered > 0}
    if not units:
        return []
    queues = read_queues(ws, units)
    plan: list[Allocation[Line]] = []
    for sku, available in units.items():
        sku_plan = plan_allocation(available, queues[sku])
        product = ws.products[sku]
        for a in sku_plan:
            a.line.allocated_qty += a.qty
            a.line.backordered_qty -= a.qty
            if a.line.backordered_qty == 0:  # filled: it has no ETA of its own any more (its promise stays)
                a.line.eta = a.line.eta_basis = None
            product.allocated += a.qty
            product.backordered -= a.qty
            ws.allocations.append((a.line, a.qty, source, ref))
        ws.queues[sku] = [line for line in queues[sku] if line.backordered_qty > 0]
        plan += sku_plan
    by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in plan:
        by_order[a.line.order_number].append(
            {"line_no": a.line.line_no, "sku": a.line.sku, "qty": a.qty, "backordered_qty": a.line.backordered_qty}
        )
    for order_number, lines in by_order.items():
        ws.uow.event("allocated", {"source": source, "ref": ref, "lines": lines}, order_number=order_number)
    return plan


def settle(ws: WorkingSet, touched: Iterable[Order]) -> None:
    """Release what each order may ship (rule 6) into a new shipment, and bring its status up to date."""
    today = ws.uow.today
    for order in touched:
        qtys = [line.qty_view() for line in order.lines]
        status = order_status(qtys).value
        if status != order.status:
            if order.loaded is not None:  # a new order starts in its status: no change to tell
                ws.uow.event("status_changed", {"from": order.status, "to": status}, order_number=order.order_number)
            order.status = status
        held = frozenset(
            q.sku for q in qtys if q.allocated_qty > q.released_qty and ws.policy(q.sku).holds_release(today)
        )
        units = units_to_release(order.ship_policy, qtys, held)
        if units:
            by_no = {line.line_no: line for line in order.lines}
            for line_no, qty in units.items():
                by_no[line_no].released_qty += qty
            data = {
                "shipment_id": None,  # known once the shipment is written (flush)
                "status": ShipmentStatus.PICK.value,
                "lines": [{"line_no": n, "qty": q} for n, q in sorted(units.items())],
            }
            created = ws.uow.event("shipment_created", data, order_number=order.order_number)
            ws.shipments.append(NewShipment(order, units, created.data))


def redate(ws: WorkingSet, skus: Iterable[str], supplies: Mapping[str, Sequence[Supply]]) -> None:
    """Re-date every waiting line of these SKUs (rule 9); a line whose date moves gets an event."""
    key = queue_sort_key(ws.uow.rule())
    for sku in sorted(set(skus)):
        queue = sorted(ws.queues[sku], key=key)
        ws.queues[sku] = queue
        lead = ws.products[sku].lead_time_days
        for line, e in zip(
            queue,
            walk_etas([ln.backordered_qty for ln in queue], supplies.get(sku, ()), ws.uow.today, lead),
            strict=True,
        ):
            before = line.eta
            if line.loaded is None:  # a new line: its first ETA is its promise
                line.eta, line.eta_basis, line.promised_date = e.eta, e.basis, e.eta
                continue
            if before == e.eta and line.eta_basis == e.basis and (line.promised_date is not None or e.eta is None):
                continue
            line.eta, line.eta_basis = e.eta, e.basis
            if line.promised_date is None:
                line.promised_date = e.eta
            if before != e.eta:
                ws.eta_changes.append(EtaChange(line, before))
                ws.uow.event(
                    "eta_changed",
                    {
                        "line_no": line.line_no,
                        "sku": sku,
                        "from": iso(before),
                        "to": iso(e.eta),
                        "basis": e.basis,
                        "later": bool(before and (e.eta is None or e.eta > before)),
                    },
                    order_number=line.order_number,
                )


def iso(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def after_stock_change(
    ws: WorkingSet,
    skus: Iterable[str],
    source: str,
    ref: str | None = None,
    touched: Iterable[int] = (),
    redate_skus: Iterable[str] = (),
    supplies: Mapping[str, Sequence[Supply]] | None = None,
) -> list[Allocation[Line]]:
    """The common tail of a stock-changing use case: allocate, settle, re-date (then the caller flushes).

    `supplies`: the open supply of the SKUs to re-date, when the use case has it; else it is read.
    """
    if redate_skus:  # their queues are dated after the allocation anyway: read them all at once
        read_queues(ws, set(skus) | set(redate_skus))
    plan = allocate(ws, skus, source, ref)
    ids = {a.line.order_id for a in plan if a.line.order_id is not None} | set(touched)
    settle(ws, lock_orders(ws, ids))
    again = sorted({a.line.sku for a in plan} | set(redate_skus))
    if again:
        read_queues(ws, again)
        redate(ws, again, supplies if supplies is not None else read_supplies(ws, again))
    return plan


def recompute_etas(uow: UnitOfWork, skus: Iterable[str]) -> None:
    """Re-date every waiting line of these SKUs as a use case of its own (late POs, the demo, benchmarks)."""
    wanted = sorted(set(skus))
    if not wanted:
        return
    ws = WorkingSet(uow)
    lock_products(ws, wanted)
    read_queues(ws, wanted)
    redate(ws, wanted, read_supplies(ws, wanted))
    flush(ws)


# ---- writing ---------------------------------------------------------------------------------------


def flush(ws: WorkingSet) -> None:
    """Write every changed row's final state: one statement per table (shipments with their lines)."""
    update_rows(
        ws.conn,
        products,
        "sku",
        [
            {"sku": p.sku, "on_hand": p.on_hand, "allocated": p.allocated, "backordered": p.backordered}
            for p in ws.products.values()
            if p.changed
        ],
    )
    for p in ws.products.values():
        p.loaded = (p.on_hand, p.allocated, p.backordered)
    _write_allocations_and_shipments(ws)
    dirty = [line for line in ws.lines.values() if line.dirty]
    update_rows(
        ws.conn,
        order_lines,
        "id",
        [
            {"id": line.id, **{n: getattr(line, n) for n in MUTABLE}}
            for line in sorted(dirty, key=lambda ln: ln.id or 0)
        ],
    )
    for line in dirty:
        line.loaded = line.state()
    changed = [o for o in ws.orders.values() if o.dirty]
    update_rows(ws.conn, orders, "id", [{"id": o.id, "status": o.status, "priority": o.priority} for o in changed])
    for o in changed:
        o.loaded = (o.status, o.priority)
    insert_rows(ws.conn, stock_movements, ws.movements)
    ws.movements = []


# One statement: allocation rows, one shipment per order, and its lines joined by order id.
BOOK_AND_SHIP = text(
    "WITH a AS (INSERT INTO allocations (line_id, sku, qty, source, ref, at)"
    " SELECT v.line_id, v.sku, v.qty, v.source, v.ref, :at"
    " FROM json_to_recordset(CAST(:allocations AS json))"
    " AS v(line_id bigint, sku varchar, qty integer, source varchar, ref varchar)),"
    " s AS (INSERT INTO shipments (order_id, order_number, channel, status, created_at, updated_at)"
    " SELECT v.order_id, v.order_number, v.channel, 'pick', :at, :at"
    " FROM json_to_recordset(CAST(:shipments AS json))"
    " AS v(order_id bigint, order_number varchar, channel varchar, n bigint) ORDER BY v.n"
    " RETURNING id, order_id),"
    " sl AS (INSERT INTO shipment_lines (shipment_id, line_id, line_no, sku, qty)"
    " SELECT s.id, v.line_id, v.line_no, v.sku, v.qty FROM json_to_recordset(CAST(:parts AS json))"
    " AS v(order_id bigint, line_id bigint, line_no integer, sku varchar, qty integer)"
    " JOIN s ON s.order_id = v.order_id)"
    " SELECT id, order_id FROM s"
)


def _write_allocations_and_shipments(ws: WorkingSet) -> None:
    now = ws.uow.now
    rows = [
        {"line_id": line.id, "sku": line.sku, "qty": qty, "source": source, "ref": ref, "at": now}
        for line, qty, source, ref in ws.allocations
    ]
    heads = [
        {
            "order_id": s.order.id,
            "order_number": s.order.order_number,
            "channel": s.order.channel,
            "status": ShipmentStatus.PICK.value,
            "created_at": now,
            "updated_at": now,
        }
        for s in ws.shipments
    ]
    line_ids = {s.order.id: {line.line_no: line.id for line in s.order.lines} for s in ws.shipments}
    parts = [
        {
            "order_id": s.order.id,
            "line_id": line_ids[s.order.id][no],
            "line_no": no,
            "sku": next(line.sku for line in s.order.lines if line.line_no == no),
            "qty": qty,
        }
        for s in ws.shipments
        for no, qty in sorted(s.units.items())
    ]
    if ws.postgresql and heads:
        created = ws.conn.execute(
            BOOK_AND_SHIP,
            {
                "at": now,
                "allocations": json.dumps([{k: v for k, v in r.items() if k != "at"} for r in rows]),
                "shipments": json.dumps(
                    [{"n": i} | {k: h[k] for k in ("order_id", "order_number", "channel")} for i, h in enumerate(heads)]
                ),
                "parts": json.dumps(parts),
            },
        )
        shipment_of = {order_id: shipment_id for shipment_id, order_id in created}
        for s in ws.shipments:
            s.id = shipment_of[s.order.id]
    else:
        insert_rows(ws.conn, allocations, rows)
        ids = insert_rows(ws.conn, shipments, heads, returning=("id",))
        for s, r in zip(ws.shipments, ids, strict=True):
            s.id = r.id
        by_order: dict[Any, Any] = {s.order.id: s.id for s in ws.shipments}
        insert_rows(
            ws.conn,
            shipment_lines,
            [
                {"shipment_id": by_order[p["order_id"]], **{k: v for k, v in p.items() if k != "order_id"}}
                for p in parts
            ],
        )
    for s in ws.shipments:
        s.event_data["shipment_id"] = s.id
    ws.allocations = []
    ws.shipments = []


def placed_rule_needs_whole_queue(rule: Sequence[RuleKey]) -> bool:
    """Under `promised_date` a new line's first ETA decides its place: its queue is dated whole."""
    return RuleKey.PROMISED_DATE in rule


def parse_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def from_json(attr: str, value: Any) -> Any:
    """A queue sort field's value as JSON carried it (money in cents, times and dates as text)."""
    if value is None:
        return None
    if attr == "placed_at":
        return as_datetime(value)
    if attr == "promised_date":
        return as_date(value)
    if attr == "order_value":
        return (Decimal(int(value)) / 100).quantize(Decimal("0.01"))
    return value


def as_datetime(value: Any) -> datetime:
    """A timestamp read out of JSON (PostgreSQL: ISO with offset; SQLite: naive UTC text)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def request_hash(body: Mapping[str, Any]) -> str:
    """A stable digest of a request body, to tell a retry from a different request."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
