"""What a proposed allocation rule would change: queue positions before and after, for the lines that
would move, computed by setting the rule inside a transaction that is rolled back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from oms.catalog import use_cases as catalog
from oms.domain.allocation import RuleKey, parse_rule, sort_fields
from oms.store.queue import order_by
from oms.store.tables import order_lines
from oms.store.uow import UnitOfWork


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
