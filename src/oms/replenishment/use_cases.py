"""Purchase orders, goods receipts and promises (PRODUCT.md rules 4, 9)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from oms import engine
from oms.domain.allocation import Tier, sort_fields
from oms.domain.errors import Conflict, Invalid, NotFound
from oms.domain.eta import Supply, quote_eta
from oms.domain.policy import SkuStock, backorder_room, policy_from_json
from oms.engine import EtaChange, WorkingSet
from oms.store.bulk import insert_rows, update_rows
from oms.store.queue import before
from oms.store.tables import customers, order_lines, po_lines, products, purchase_orders, receipts
from oms.store.uow import Config, UnitOfWork


@dataclass(frozen=True)
class PoLine:
    sku: str
    qty: int
    expected_date: date


@dataclass(eq=False)
class PoLineState:
    id: int | None
    line_no: int
    sku: str
    qty: int
    received_qty: int
    expected_date: date
    open: int
    loaded: tuple[int, int, date, int] | None = None

    def state(self) -> tuple[int, int, date, int]:
        return (self.qty, self.received_qty, self.expected_date, self.open)

    @property
    def open_qty(self) -> int:
        return max(0, self.qty - self.received_qty) if self.open else 0


@dataclass(eq=False)
class PurchaseOrder:
    """A purchase order as a use case holds it; `views.po_json` shapes it."""

    id: int | None
    po_number: str
    supplier: str
    status: str
    created_at: datetime
    version: int
    lines: list[PoLineState] = field(default_factory=list)
    loaded: tuple[str, int] | None = None


def _refuse_repeated_skus(skus: list[str], field_name: str) -> None:
    dupes = sorted({s for s in skus if skus.count(s) > 1})
    if dupes:
        raise Invalid(
            f"Each SKU may appear once; repeated: {', '.join(dupes)}.",
            [{"field": field_name, "sku": s, "reason": "repeated sku"} for s in dupes],
        )


def _po_supplies(ws: WorkingSet, po: PurchaseOrder, skus: Sequence[str]) -> dict[str, list[Supply]]:
    """Open supply of these SKUs: other purchase orders as stored, this one as it now is in memory."""
    out = engine.read_supplies(ws, skus, except_po=po.id)
    if po.status == "open":
        for line in po.lines:
            if line.sku in skus and line.open_qty > 0:
                out[line.sku].append(engine.supply(ws.uow, line.expected_date, line.open_qty, po.po_number))
    return out


def create_po(uow: UnitOfWork, po_number: str, supplier: str, lines: list[PoLine]) -> PurchaseOrder:
    """Record incoming supply; waiting lines of its SKUs are re-dated against it."""
    _refuse_repeated_skus([line.sku for line in lines], "lines[].sku")
    if uow.conn.execute(select(purchase_orders.c.id).where(purchase_orders.c.po_number == po_number)).first():
        raise Conflict(
            f"Purchase order '{po_number}' already exists; change it with PATCH.",
            [{"field": "po_number", "value": po_number, "reason": "already exists"}],
        )
    ws = WorkingSet(uow)
    skus = [line.sku for line in lines]
    engine.require_products(ws, skus)
    po = PurchaseOrder(None, po_number, supplier, "open", uow.now, 1)
    po.lines = [
        PoLineState(None, i, line.sku, line.qty, 0, line.expected_date, 1) for i, line in enumerate(lines, start=1)
    ]
    supplies = _po_supplies(ws, po, skus)
    po.id = uow.conn.execute(
        insert(purchase_orders)
        .values(po_number=po_number, supplier=supplier, status="open", created_at=po.created_at)
        .returning(purchase_orders.c.id)
    ).scalar_one()
    insert_rows(
        uow.conn,
        po_lines,
        [
            {"po_id": po.id, "line_no": ln.line_no, "sku": ln.sku, "qty": ln.qty, "expected_date": ln.expected_date}
            for ln in po.lines
        ],
    )
    uow.event(
        "po_created",
        {
            "supplier": supplier,
            "lines": [
                {"sku": line.sku, "qty": line.qty, "expected_date": line.expected_date.isoformat()} for line in lines
            ],
        },
        po_number=po_number,
    )
    engine.read_queues(ws, skus)
    engine.redate(ws, skus, supplies)
    engine.flush(ws)
    return po


@dataclass(frozen=True)
class PoLineChange:
    sku: str
    expected_date: date | None = None
    qty: int | None = None


def lock_po(ws: WorkingSet, po_number: str) -> PurchaseOrder:
    """Lock a purchase order for a change: its SKUs first, then its row and lines, read after the lock."""
    skus = ws.conn.scalars(
        select(po_lines.c.sku)
        .join(purchase_orders, purchase_orders.c.id == po_lines.c.po_id)
        .where(purchase_orders.c.po_number == po_number)
    ).all()
    if not skus:
        raise NotFound(f"No purchase order '{po_number}'.")
    engine.lock_products(ws, skus)
    return _po_locked(ws, po_number)


def _po_locked(ws: WorkingSet, po_number: str) -> PurchaseOrder:
    q = (
        select(
            purchase_orders.c.id,
            purchase_orders.c.supplier,
            purchase_orders.c.status,
            purchase_orders.c.created_at,
            purchase_orders.c.version,
            po_lines.c.id.label("line_id"),
            po_lines.c.line_no,
            po_lines.c.sku,
            po_lines.c.qty,
            po_lines.c.received_qty,
            po_lines.c.expected_date,
            po_lines.c.open,
        )
        .join(po_lines, po_lines.c.po_id == purchase_orders.c.id)
        .where(purchase_orders.c.po_number == po_number)
        .order_by(po_lines.c.line_no)
    )
    if ws.postgresql:
        q = q.with_for_update(of=[purchase_orders, po_lines])
    rows = ws.conn.execute(q).all()
    if not rows:
        raise NotFound(f"No purchase order '{po_number}'.")
    h = rows[0]
    po = PurchaseOrder(h.id, po_number, h.supplier, h.status, h.created_at, h.version)
    po.loaded = (h.status, h.version)
    for r in rows:
        line = PoLineState(r.line_id, r.line_no, r.sku, r.qty, r.received_qty, r.expected_date, r.open)
        line.loaded = line.state()
        po.lines.append(line)
    return po


def _write_po(ws: WorkingSet, po: PurchaseOrder) -> None:
    if all(not line.open for line in po.lines) and po.status == "open":
        po.status = "received"
    update_rows(
        ws.conn,
        po_lines,
        "id",
        [
            {
                "id": ln.id,
                "qty": ln.qty,
                "received_qty": ln.received_qty,
                "expected_date": ln.expected_date,
                "open": ln.open,
            }
            for ln in po.lines
            if ln.state() != ln.loaded
        ],
    )
    if (po.status, po.version) != po.loaded:
        update_rows(ws.conn, purchase_orders, "id", [{"id": po.id, "status": po.status, "version": po.version}])
        po.loaded = (po.status, po.version)


def _lock_open_po(ws: WorkingSet, po_number: str, doing: str) -> PurchaseOrder:
    """Lock the purchase order; refuse (409) unless it is open."""
    po = lock_po(ws, po_number)
    if po.status != "open":
        raise Conflict(
            f"Purchase order {po_number} is {po.status}; only open ones can {doing}.",
            [{"field": "status", "value": po.status, "reason": "not open"}],
        )
    return po


def _redate_and_write(ws: WorkingSet, po: PurchaseOrder, skus: list[str]) -> PurchaseOrder:
    """After a PO's supply changed: re-date the waiting lines of its SKUs, then write the PO and the lines."""
    supplies = _po_supplies(ws, po, skus)
    engine.read_queues(ws, skus)
    engine.redate(ws, skus, supplies)
    _write_po(ws, po)
    engine.flush(ws)
    return po


def patch_po(uow: UnitOfWork, po_number: str, changes: list[PoLineChange]) -> PurchaseOrder:
    """Move expected dates or change quantities; never below what was received."""
    _refuse_repeated_skus([c.sku for c in changes], "lines[].sku")
    ws = WorkingSet(uow)
    po = _lock_open_po(ws, po_number, "change")
    lines = {line.sku: line for line in po.lines}
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
        line = lines[c.sku]
        line.qty = c.qty if c.qty is not None else line.qty
        line.expected_date = c.expected_date or line.expected_date
        line.open = int(line.received_qty < line.qty)
    po.version += 1
    if all(not line.open for line in po.lines):
        po.status = "received"
    uow.event(
        "po_changed",
        {
            "lines": [
                {"sku": c.sku, "expected_date": c.expected_date.isoformat() if c.expected_date else None, "qty": c.qty}
                for c in changes
            ]
        },
        po_number=po_number,
    )
    skus = sorted({c.sku for c in changes})
    return _redate_and_write(ws, po, skus)


def cancel_po(uow: UnitOfWork, po_number: str) -> PurchaseOrder:
    ws = WorkingSet(uow)
    po = _lock_open_po(ws, po_number, "be cancelled")
    po.status = "cancelled"
    po.version += 1
    for line in po.lines:
        line.open = 0
    uow.event("po_cancelled", {}, po_number=po_number)
    skus = sorted({line.sku for line in po.lines})
    return _redate_and_write(ws, po, skus)


@dataclass(frozen=True)
class ReceiptLine:
    sku: str
    qty: int


@dataclass(frozen=True)
class Receipt:
    """What a receipt did (`result`, stored and answered), and the ETAs it moved (for previews)."""

    result: dict[str, Any]
    created: bool
    eta_changes: tuple[EtaChange, ...] = ()


def receive_goods(
    uow: UnitOfWork,
    grn_number: str,
    lines: list[ReceiptLine],
    po_number: str | None = None,
    received_at: datetime | None = None,
    body: dict[str, Any] | None = None,
) -> Receipt:
    """Book a goods-received note and, in the same transaction, allocate it to the queues.

    The same GRN number again returns the stored result and changes nothing.
    """
    digest = engine.request_hash(
        body if body is not None else {"grn": grn_number, "lines": repr(lines), "po": po_number}
    )
    at = received_at or uow.now
    # Claim the GRN number first: a twin sent at the same time waits here for this transaction, then
    # finds the stored receipt, instead of allocating the whole receipt again and failing at the end.
    insert_ = postgresql.insert if uow.dialect == "postgresql" else sqlite.insert
    claim = uow.conn.execute(
        insert_(receipts)
        .values(grn_number=grn_number, po_number=po_number, received_at=at, request_hash=digest, result={})
        .on_conflict_do_nothing(index_elements=["grn_number"])
        .returning(receipts.c.id)
    ).scalar()
    if claim is None:
        stored = uow.conn.execute(
            select(receipts.c.request_hash, receipts.c.result).where(receipts.c.grn_number == grn_number)
        ).one()
        if stored.request_hash != digest:
            raise Conflict(
                f"GRN '{grn_number}' was already booked with different content.",
                [{"field": "grn_number", "value": grn_number, "reason": "already used with another body"}],
            )
        return Receipt(dict(engine.parse_json(stored.result)), False)

    ws = WorkingSet(uow)
    qty_by_sku: dict[str, int] = defaultdict(int)
    for line in lines:
        qty_by_sku[line.sku] += line.qty
    skus = sorted(qty_by_sku)
    engine.require_products(ws, skus)
    engine.refuse_beyond_ceiling(ws, qty_by_sku, "lines[].qty")
    po: PurchaseOrder | None = None
    po_matched: list[dict[str, Any]] = []
    if po_number is not None:
        po = _po_of_receipt(ws, po_number)
        po_matched = _receive_against_po(po, qty_by_sku)
    for s, q in sorted(qty_by_sku.items()):
        ws.products[s].on_hand += q
        ws.move(s, q, "receipt", grn_number)
        uow.event(
            "goods_received", {"grn_number": grn_number, "po_number": po_number, "qty": q}, sku=s, po_number=po_number
        )
    for m in ws.movements:
        m["at"] = at
    supplies = _po_supplies(ws, po, skus) if po is not None else engine.read_supplies(ws, skus)
    plan = engine.after_stock_change(ws, skus, "receipt", grn_number, redate_skus=skus, supplies=supplies)
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
    changes = tuple(ws.eta_changes)
    engine.flush(ws)
    if po is not None:
        _write_po(ws, po)
    uow.conn.execute(update(receipts).where(receipts.c.id == claim).values(result=result))
    return Receipt(result, True, changes)


def _po_of_receipt(ws: WorkingSet, po_number: str) -> PurchaseOrder:
    try:
        po = _po_locked(ws, po_number)
    except NotFound:
        raise Invalid(
            f"No purchase order '{po_number}'. Omit po_number for an unplanned receipt.",
            [{"field": "po_number", "value": po_number, "reason": "unknown purchase order"}],
        ) from None
    if po.status == "cancelled":
        raise Conflict(
            f"Purchase order {po_number} is cancelled; receive without po_number instead.",
            [{"field": "po_number", "value": po_number, "reason": "cancelled"}],
        )
    return po


def _receive_against_po(po: PurchaseOrder, qty_by_sku: Mapping[str, int]) -> list[dict[str, Any]]:
    """Count received units against the PO's open lines; the excess and unplanned SKUs are just stock."""
    rows = {line.sku: line for line in po.lines}
    out = []
    for sku, qty in sorted(qty_by_sku.items()):
        line = rows.get(sku)
        if line is None:
            out.append({"sku": sku, "received": qty, "against_po": 0, "over": 0, "unplanned": qty})
            continue
        counted = min(qty, line.open_qty)
        line.received_qty += counted
        line.open = int(line.received_qty < line.qty) if line.open else 0
        out.append({"sku": sku, "received": qty, "against_po": counted, "over": qty - counted, "unplanned": 0})
    return out


@dataclass(frozen=True)
class PromiseLine:
    sku: str
    qty: int


def promise(
    conn: Connection,
    config: Config,
    now: datetime,
    channel: str,
    lines: list[PromiseLine],
    customer_id: str | None = None,
    priority: int = 0,
) -> dict[str, Any]:
    """What an order would get now, and when the rest would come: nothing is reserved."""
    rows = {
        r.sku: r for r in conn.execute(select(products).where(products.c.sku.in_(sorted({line.sku for line in lines}))))
    }
    unknown = sorted({line.sku for line in lines} - set(rows))
    tier_rank = 0
    if customer_id is not None:
        tier = conn.execute(select(customers.c.tier).where(customers.c.customer_id == customer_id)).scalar()
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
    today = now.date()
    supplies = engine.open_supplies(conn, rows, today, config.late_po_grace_days)
    stock = {
        sku: SkuStock(
            sku,
            row.on_hand,
            row.allocated,
            row.backordered,
            sum(s.qty for s in supplies.get(sku, ())),
            policy_from_json(row.backorder_policy) or config.default_policy,
        )
        for sku, row in rows.items()
    }
    fields = sort_fields(config.rule)
    value = sum((rows[line.sku].unit_price * line.qty for line in lines), Decimal("0"))
    out = []
    earlier_waiting: dict[str, int] = defaultdict(int)  # this request's own earlier lines queue first
    for line in lines:
        s = stock[line.sku]
        now_qty = min(line.qty, s.available)
        rest = line.qty - now_qty
        room, _ = backorder_room(s, channel, now)
        if s.policy.max_qty_per_line is not None:
            room = min(room, s.policy.max_qty_per_line)
        stock[line.sku] = replace(s, allocated=s.allocated + now_qty, backordered=s.backordered + min(rest, room))
        eta: date | None = today if rest == 0 else None
        if rest and rest <= room:
            me = {
                "priority": priority,
                "tier_rank": tier_rank,
                "order_value": value,
                "placed_at": now,
                "promised_date": None,
                "order_number": "\uffff",
                "line_no": 0,
            }
            ahead = conn.execute(
                select(func.coalesce(func.sum(order_lines.c.backordered_qty), 0)).where(
                    order_lines.c.sku == line.sku,
                    order_lines.c.backordered_qty > 0,
                    before(order_lines, fields, [me[f.attr] for f in fields]),
                )
            ).scalar_one()
            lead = rows[line.sku].lead_time_days
            eta = quote_eta(int(ahead) + earlier_waiting[line.sku], rest, supplies.get(line.sku, []), today, lead).eta
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
