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

from . import catalog, replenishment
from .common import Ctx


def _waiting_etas(conn: Connection, skus: list[str]) -> dict[int, Any]:
    q = select(
        order_lines.c.id, order_lines.c.order_number, order_lines.c.line_no, order_lines.c.sku, order_lines.c.eta
    ).where(order_lines.c.sku.in_(sorted(set(skus))), order_lines.c.backordered_qty > 0)
    return {r.id: r for r in conn.execute(q)}


def preview_receipt(
    ctx: Ctx,
    grn_number: str,
    lines: list[replenishment.ReceiptLine],
    po_number: str | None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The allocations a receipt would make and every waiting line whose ETA would move."""
    skus = [line.sku for line in lines]
    before = _waiting_etas(ctx.conn, skus)
    result, _ = replenishment.receive_goods(ctx, grn_number, lines, po_number, None, body)
    after = _waiting_etas(ctx.conn, skus)
    changes = [
        {
            "order_number": r.order_number,
            "line_no": r.line_no,
            "sku": r.sku,
            "from": r.eta.isoformat() if r.eta else None,
            "to": after[i].eta.isoformat() if after[i].eta else None,
        }
        for i, r in before.items()
        if i in after and after[i].eta != r.eta
    ]
    return {**result, "eta_changes": changes}


def _positions(conn: Connection, rule: tuple[RuleKey, ...], sku: str | None) -> dict[int, tuple[Any, int]]:
    fields = sort_fields(rule)
    pos = func.row_number().over(partition_by=order_lines.c.sku, order_by=order_by(order_lines, fields))
    q = select(
        order_lines.c.id, order_lines.c.order_number, order_lines.c.line_no, order_lines.c.sku, pos.label("pos")
    ).where(order_lines.c.backordered_qty > 0)
    if sku:
        q = q.where(order_lines.c.sku == sku)
    return {r.id: (r, int(r.pos)) for r in conn.execute(q)}


def preview_rule(ctx: Ctx, keys: list[str], sku: str | None = None, limit: int = 500) -> dict[str, Any]:
    """Queue positions before and after a proposed allocation rule, for the lines that would move."""
    new_rule = parse_rule(keys)
    before = _positions(ctx.conn, ctx.rule(), sku)
    catalog.set_allocation_rule(ctx, keys)
    after = _positions(ctx.conn, new_rule, sku)
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
