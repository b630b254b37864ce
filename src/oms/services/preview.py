"""What-if previews: run the real use case inside a transaction that is rolled back.

Because a preview executes the very code that the real request would, a preview followed by the
real request (with nothing else happening between) makes exactly the previewed allocations.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from oms.domain.allocation import RuleKey, parse_rule, sort_fields
from oms.store.queue import order_by
from oms.store.tables import order_lines
from oms.store.uow import UnitOfWork

from . import catalog, replenishment


def preview_receipt(
    uow: UnitOfWork,
    grn_number: str,
    lines: list[replenishment.ReceiptLine],
    po_number: str | None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The allocations a receipt would make and every waiting line whose ETA would move."""
    receipt = replenishment.receive_goods(uow, grn_number, lines, po_number, None, body)
    changes = [
        {
            "order_number": c.line.order_number,
            "line_no": c.line.line_no,
            "sku": c.line.sku,
            "from": c.before.isoformat() if c.before else None,
            "to": c.line.eta.isoformat() if c.line.eta else None,
        }
        for c in receipt.eta_changes
        if c.line.backordered_qty > 0
    ]
    return {**receipt.result, "eta_changes": changes}


def _positions(conn: Connection, rule: tuple[RuleKey, ...], sku: str | None) -> dict[int, tuple[Any, int]]:
    fields = sort_fields(rule)
    pos = func.row_number().over(partition_by=order_lines.c.sku, order_by=order_by(order_lines, fields))
    q = select(
        order_lines.c.id, order_lines.c.order_number, order_lines.c.line_no, order_lines.c.sku, pos.label("pos")
    ).where(order_lines.c.backordered_qty > 0)
    if sku:
        q = q.where(order_lines.c.sku == sku)
    return {r.id: (r, int(r.pos)) for r in conn.execute(q)}


def preview_rule(uow: UnitOfWork, keys: list[str], sku: str | None = None, limit: int = 500) -> dict[str, Any]:
    """Queue positions before and after a proposed allocation rule, for the lines that would move."""
    new_rule = parse_rule(keys)
    before = _positions(uow.conn, uow.rule(), sku)
    catalog.set_allocation_rule(uow, keys)
    after = _positions(uow.conn, new_rule, sku)
    moved = sorted(
        (
            {"order_number": r.order_number, "line_no": r.line_no, "sku": r.sku, "before": p, "after": after[i][1]}
            for i, (r, p) in before.items()
            if after[i][1] != p
        ),
        key=lambda m: (m["sku"], m["after"]),
    )
    return {
        "keys": [k.value for k in new_rule],
        "lines_waiting": len(before),
        "lines_moved": len(moved),
        "changes": moved[:limit],
        "truncated": len(moved) > limit,
    }
