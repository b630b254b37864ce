"""Purchase orders and the shortfall as the API and the dashboard show them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    select,
)

from oms.domain.allocation import SortField
from oms.domain.errors import NotFound
from oms.domain.eta import late_supply_date
from oms.formats import iso_date, rfc3339
from oms.store.paging import page
from oms.store.tables import (
    po_lines,
    products,
    purchase_orders,
)
from oms.store.uow import read_config, read_version


def _po_dicts(conn: Connection, heads: Sequence[Any], today: date) -> list[dict[str, Any]]:
    ids = [h.id for h in heads]
    lines: dict[int, list[Any]] = defaultdict(list)
    if ids:
        for r in conn.execute(
            select(po_lines).where(po_lines.c.po_id.in_(ids)).order_by(po_lines.c.po_id, po_lines.c.line_no)
        ):
            lines[r.po_id].append(r)
    return [po_json(h, lines[h.id], today) for h in heads]


def po_json(head: Any, lines: Sequence[Any], today: date) -> dict[str, Any]:
    """A purchase order as the API shows it, from rows or a use case's copy."""
    ls = [
        {
            "line_no": r.line_no,
            "sku": r.sku,
            "qty": r.qty,
            "received_qty": r.received_qty,
            "open_qty": max(0, r.qty - r.received_qty) if r.open else 0,
            "expected_date": iso_date(r.expected_date),
        }
        for r in lines
    ]
    overdue = head.status == "open" and any(
        line["open_qty"] > 0 and line["expected_date"] < today.isoformat() for line in ls
    )
    return {
        "po_number": head.po_number,
        "supplier": head.supplier,
        "status": head.status,
        "created_at": rfc3339(head.created_at),
        "overdue": overdue,
        "lines": ls,
        "version": head.version,
    }


def po_view(conn: Connection, po_number: str, today: date) -> dict[str, Any]:
    head = conn.execute(select(purchase_orders).where(purchase_orders.c.po_number == po_number)).first()
    if head is None:
        raise NotFound(f"No purchase order '{po_number}'.")
    return _po_dicts(conn, [head], today)[0]


def list_pos(
    conn: Connection,
    *,
    status: str | None,
    sku: str | None,
    overdue: bool | None,
    today: date,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    q = select(purchase_orders)
    if status:
        q = q.where(purchase_orders.c.status == status)
    if sku:
        q = q.where(purchase_orders.c.id.in_(select(po_lines.c.po_id).where(po_lines.c.sku == sku)))
    late = select(po_lines.c.po_id).where(
        po_lines.c.open == 1, po_lines.c.qty > po_lines.c.received_qty, po_lines.c.expected_date < today
    )
    if overdue is True:
        q = q.where(purchase_orders.c.status == "open", purchase_orders.c.id.in_(late))
    elif overdue is False:
        q = q.where(~and_(purchase_orders.c.status == "open", purchase_orders.c.id.in_(late)))
    rows, nxt = page(conn, q, purchase_orders, [SortField("id")], limit, cursor)
    return {"items": _po_dicts(conn, rows, today), "next_cursor": nxt}


def shortfall(conn: Connection, today: date | None = None) -> dict[str, Any]:
    """Per SKU with waiting units: back-ordered, incoming, the uncovered rest and what to order.

    suggested_order_qty = max(0, backordered - incoming_within_lead_time), where
    incoming_within_lead_time counts the open PO units expected by today + lead_time_days (a late
    PO counted at its grace date): an order placed today arrives after the lead time, so units due
    later than that do not serve the queue sooner, and units due earlier are not bought twice.
    Without a lead time every open PO counts and the suggestion is the shortfall itself.
    """
    today = today or datetime.now(UTC).date()
    q = (
        select(products.c.sku, products.c.backordered, products.c.lead_time_days)
        .where(products.c.backordered > 0)
        .order_by(products.c.sku)
    )
    rows = conn.execute(q).all()
    open_lines: dict[str, list[tuple[date, int]]] = defaultdict(list)
    if rows:
        supply_q = (
            select(
                po_lines.c.sku, po_lines.c.expected_date, (po_lines.c.qty - po_lines.c.received_qty).label("open_qty")
            )
            .join(purchase_orders, purchase_orders.c.id == po_lines.c.po_id)
            .where(
                po_lines.c.open == 1,
                purchase_orders.c.status == "open",
                po_lines.c.qty > po_lines.c.received_qty,
                po_lines.c.sku.in_([r.sku for r in rows]),
            )
        )
        supply = conn.execute(supply_q).all()
        late = any(s.expected_date < today for s in supply)
        grace = read_config(conn, read_version(conn)).late_po_grace_days if late else 0
        for s in supply:
            open_lines[s.sku].append((late_supply_date(s.expected_date, today, grace), int(s.open_qty)))
    items = []
    for r in rows:
        incoming = sum(q for _, q in open_lines[r.sku])
        short = max(0, r.backordered - incoming)
        if r.lead_time_days is None:
            within, cover_by = incoming, None
        else:
            horizon = today + timedelta(days=r.lead_time_days)
            within, cover_by = sum(q for d, q in open_lines[r.sku] if d <= horizon), horizon.isoformat()
        items.append(
            {
                "sku": r.sku,
                "backordered": r.backordered,
                "incoming": incoming,
                "shortfall": short,
                "suggested_order_qty": max(0, r.backordered - within),
                "lead_time_days": r.lead_time_days,
                "incoming_within_lead_time": within,
                "cover_by": cover_by,
            }
        )
    return {"items": items}
