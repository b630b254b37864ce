"""What a customer may see and do through the signed link in a back-order email (no login)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from oms.domain.allocation import sort_fields
from oms.domain.errors import Conflict
from oms.domain.fulfillment import CancelReason
from oms.orders.use_cases import cancel_order
from oms.orders.views import order_view, queue_positions
from oms.store.reads import allocation_rule
from oms.store.tables import order_lines, orders
from oms.store.uow import UnitOfWork

CUSTOMER_REASON = "customer request via link"


def _order_id(order_number: str) -> Any:
    """The order's id as a subquery: order lines are indexed by order_id, not by order_number."""
    return select(orders.c.id).where(orders.c.order_number == order_number).scalar_subquery()


def customer_view(conn: Connection, order_number: str) -> dict[str, Any]:
    """The order's lines with ETAs, and each waiting line's place in its queue."""
    order = order_view(conn, order_number)
    ids = {
        r.line_no: r.id
        for r in conn.execute(
            select(order_lines.c.line_no, order_lines.c.id).where(
                order_lines.c.order_id == _order_id(order_number), order_lines.c.backordered_qty > 0
            )
        )
    }
    positions = queue_positions(conn, list(ids.values()), sort_fields(allocation_rule(conn)))
    for line in order["lines"]:
        line_id = ids.get(line["line_no"])
        line["queue_position"] = positions.get(line_id) if line_id is not None else None
    return order


def cancel_waiting(uow: UnitOfWork, order_number: str, line_no: int | None = None) -> None:
    """Cancel the back-ordered units (of one line, or all); allocated units are left alone."""
    q = select(order_lines.c.line_no, order_lines.c.backordered_qty).where(
        order_lines.c.order_id == _order_id(order_number), order_lines.c.backordered_qty > 0
    )
    if line_no is not None:
        q = q.where(order_lines.c.line_no == line_no)
    lines = [(r.line_no, r.backordered_qty) for r in uow.conn.execute(q)]
    if not lines:
        raise Conflict("Nothing of this order is waiting any more.", [{"field": "lines", "reason": "nothing waiting"}])
    cancel_order(uow, order_number, CUSTOMER_REASON, lines, reason_code=CancelReason.CUSTOMER)


def keep_waiting(uow: UnitOfWork, order_number: str) -> None:
    """Record that the customer chose to keep waiting (the queue itself does not change)."""
    uow.event("customer_kept_waiting", {}, order_number=order_number)
