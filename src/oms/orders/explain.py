"""Why a line waits: its place in the SKU's queue, the units ahead, the supply coming, the ETA's basis."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from oms import engine
from oms.domain.allocation import KEY_FIELDS, RuleKey, sort_fields
from oms.domain.errors import NotFound
from oms.store.queue import before
from oms.store.reads import allocation_rule
from oms.store.tables import customers, order_lines, orders, po_lines, products, purchase_orders
from oms.store.uow import read_config, read_version

DIRECTIONS = {
    RuleKey.PRIORITY: "high first",
    RuleKey.CUSTOMER_TIER: "high first",
    RuleKey.ORDER_VALUE: "high first",
    RuleKey.PLACED_AT: "old first",
    RuleKey.PROMISED_DATE: "earliest first",
}


def _order_id(order_number: str) -> Any:
    """The order's id as a subquery: order lines are indexed by order_id, not by order_number."""
    return select(orders.c.id).where(orders.c.order_number == order_number).scalar_subquery()


def _value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, date):
        return v.isoformat()
    if v is None or isinstance(v, int | str):
        return v
    return str(v)


def explain(
    conn: Connection, order_number: str, line_no: int, today: date | None = None, channel: str | None = None
) -> dict[str, Any]:
    """The reasons behind a line's queue position and ETA, as the engine sees them now.

    `channel` scopes the lookup to one channel's orders (a channel key sees only its own).
    """
    today = today or datetime.now(UTC).date()
    q = select(order_lines).where(order_lines.c.order_id == _order_id(order_number), order_lines.c.line_no == line_no)
    if channel is not None:
        q = q.where(order_lines.c.channel == channel)
    line = conn.execute(q).first()
    if line is None:
        raise NotFound(f"No line {line_no} on order '{order_number}'.")
    tier = conn.execute(
        select(customers.c.tier)
        .join(orders, orders.c.customer_id == customers.c.customer_id)
        .where(orders.c.id == line.order_id)
    ).scalar()
    product = conn.execute(select(products).where(products.c.sku == line.sku)).one()
    rule = allocation_rule(conn)
    fields = sort_fields(rule)
    waiting = line.backordered_qty > 0

    position = units_ahead = None
    if waiting:
        ahead = conn.execute(
            select(func.count(), func.coalesce(func.sum(order_lines.c.backordered_qty), 0)).where(
                order_lines.c.sku == line.sku,
                order_lines.c.backordered_qty > 0,
                before(order_lines, fields, [getattr(line, f.attr) for f in fields]),
            )
        ).one()
        position, units_ahead = int(ahead[0]) + 1, int(ahead[1])

    grace = read_config(conn, read_version(conn)).late_po_grace_days
    supplies = engine.open_supplies(conn, [line.sku], today, grace).get(line.sku, [])
    expected = {
        r.po_number: r.expected_date
        for r in conn.execute(
            select(purchase_orders.c.po_number, po_lines.c.expected_date)
            .join(po_lines, po_lines.c.po_id == purchase_orders.c.id)
            .where(po_lines.c.sku == line.sku, po_lines.c.open == 1, purchase_orders.c.status == "open")
        )
    }
    demand = (units_ahead or 0) + line.backordered_qty
    incoming, running, covering = [], 0, None
    for s in sorted(supplies, key=lambda s: (s.expected_date, s.po_number)):
        running += s.qty
        covers = waiting and covering is None and running >= demand
        if covers:
            covering = s.po_number
        incoming.append(
            {
                "po_number": s.po_number,
                "expected_date": _value(expected.get(s.po_number)),
                "counted_on": s.expected_date.isoformat(),  # a late PO counts at its grace date
                "late": expected.get(s.po_number, today) < today,
                "qty": s.qty,
                "running_qty": running,
                "covers_this_line": covers,
            }
        )

    basis = line.eta_basis
    if basis and basis.startswith("po:"):
        basis_view: dict[str, Any] = {"kind": "po", "po_number": basis[3:]}
        reason = f"PO {basis[3:]} is the first incoming supply that covers the {demand} units up to this line."
    elif basis == "lead_time":
        basis_view = {"kind": "lead_time", "lead_time_days": product.lead_time_days}
        reason = (
            f"Open POs bring {running} units, fewer than the {demand} units up to this line: "
            f"the ETA is today plus the supplier lead time of {product.lead_time_days} days."
        )
    elif waiting:
        basis_view = {"kind": "unknown"}
        reason = f"Open POs bring {running} units, fewer than the {demand} needed, and the SKU has no lead time."
    else:
        basis_view = {"kind": "none"}
        reason = "The line is not waiting: nothing of it is back-ordered."

    values = {
        RuleKey.PRIORITY: line.priority,
        RuleKey.CUSTOMER_TIER: tier,
        RuleKey.ORDER_VALUE: line.order_value,
        RuleKey.PLACED_AT: line.placed_at,
        RuleKey.PROMISED_DATE: line.promised_date,
    }
    return {
        "order_number": order_number,
        "line_no": line_no,
        "sku": line.sku,
        "qty": line.qty,
        "backordered_qty": line.backordered_qty,
        "waiting": waiting,
        "queue_position": position,
        "units_ahead": units_ahead,
        "queue_length_units": product.backordered,
        "eta": _value(line.eta),
        "promised_date": _value(line.promised_date),
        "eta_basis": basis_view,
        "reason": reason,
        "incoming": incoming,
        "rule": [
            {
                "key": k.value,
                "direction": DIRECTIONS[k],
                "value": _value(values[k]),
                "column": KEY_FIELDS[k].attr,
            }
            for k in rule
        ],
        "tie_breakers": ["placed_at", "order_number", "line_no"],
    }
