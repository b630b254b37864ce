"""The floors: minimal hand-written SQL that produces what a use case produces, to measure against.

Receipt allocation's floor writes what allocation writes (the allocation rows, the lines' and
products' counters, the stock movements) and nothing else: no shipments, events or ETAs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from oms.domain.allocation import SortField


def order_sql(fields: Sequence[SortField], alias: str = "l") -> str:
    """The rule's ORDER BY as text (the same columns and directions as oms.store.queue.order_by)."""
    parts = []
    for f in fields:
        part = f"{alias}.{f.attr} {'DESC' if f.descending else 'ASC'}"
        if f.nulls_last:
            part += " NULLS LAST"
        parts.append(part)
    return ", ".join(parts)


def _at(conn: Connection, now: datetime) -> Any:
    return (
        now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") if conn.dialect.name == "sqlite" else now
    )


def receive_floor(
    conn: Connection, batch: Mapping[str, int], ref: str, now: datetime, fields: Sequence[SortField]
) -> int:
    """Book `batch` (sku -> units) and allocate it to the queues; returns the allocation rows written."""
    if conn.dialect.name == "postgresql":
        return _receive_pg(conn, batch, ref, now, fields)
    return _receive_sqlite(conn, batch, ref, now, fields)


def _receive_pg(
    conn: Connection, batch: Mapping[str, int], ref: str, now: datetime, fields: Sequence[SortField]
) -> int:
    # One statement: a running SUM() over each SKU's queue in rule order picks the lines the units
    # reach; data-modifying CTEs write the allocation rows, the lines and the stock movements.
    sql = f"""
    WITH batch AS (
        SELECT * FROM unnest(CAST(:skus AS varchar[]), CAST(:qtys AS integer[])) AS b(sku, qty)
    ), units AS (
        SELECT p.sku, p.on_hand + b.qty - p.allocated AS units
        FROM batch b JOIN products p ON p.sku = b.sku
    ), q AS (
        SELECT l.id, l.sku, l.backordered_qty AS want, u.units,
               SUM(l.backordered_qty) OVER (PARTITION BY l.sku ORDER BY {order_sql(fields)}) - l.backordered_qty
                   AS ahead
        FROM units u JOIN order_lines l ON l.sku = u.sku AND l.backordered_qty > 0
    ), plan AS (
        SELECT id, sku, LEAST(want, units - ahead) AS qty FROM q WHERE ahead < units
    ), ins AS (
        INSERT INTO allocations (line_id, sku, qty, source, ref, at)
        SELECT id, sku, qty, 'receipt', :ref, :at FROM plan
    ), mv AS (
        INSERT INTO stock_movements (sku, qty_delta, kind, ref, at) SELECT sku, qty, 'receipt', :ref, :at FROM batch
    ), upd AS (
        UPDATE order_lines l SET allocated_qty = l.allocated_qty + plan.qty,
                                 backordered_qty = l.backordered_qty - plan.qty
        FROM plan WHERE l.id = plan.id
    ), per AS (
        SELECT sku, SUM(qty) AS n, COUNT(*) AS rows FROM plan GROUP BY sku
    ), prod AS (
        UPDATE products p SET on_hand = p.on_hand + b.qty,
                              allocated = p.allocated + COALESCE(per.n, 0),
                              backordered = p.backordered - COALESCE(per.n, 0)
        FROM batch b LEFT JOIN per ON per.sku = b.sku WHERE p.sku = b.sku
    )
    SELECT COALESCE(SUM(rows), 0) FROM per
    """
    skus = sorted(batch)
    params = {"skus": skus, "qtys": [batch[s] for s in skus], "ref": ref, "at": now}
    return int(conn.execute(text(sql), params).scalar_one())


def _receive_sqlite(
    conn: Connection, batch: Mapping[str, int], ref: str, now: datetime, fields: Sequence[SortField]
) -> int:
    # Each SKU's queue read in index order only as far as its units reach, walked here, written
    # through a temporary plan table and one UPDATE ... FROM per table.
    raw: Any = conn.connection.driver_connection
    at = _at(conn, now)
    skus = sorted(batch)
    stock = dict(
        raw.execute(
            f"SELECT sku, on_hand - allocated FROM products WHERE sku IN ({', '.join('?' for _ in skus)})", skus
        )
    )
    queue_sql = (
        "SELECT id, backordered_qty FROM order_lines l WHERE l.sku = ? AND l.backordered_qty > 0 "
        f"ORDER BY {order_sql(fields)} LIMIT ?"
    )
    plan: list[tuple[int, str, int]] = []
    for sku in skus:
        left = stock[sku] + batch[sku]
        if left <= 0:
            continue
        for line_id, want in raw.execute(queue_sql, (sku, left)):
            take = want if want < left else left
            plan.append((line_id, sku, take))
            left -= take
            if left == 0:
                break
    raw.execute("CREATE TEMP TABLE IF NOT EXISTS bench_plan (id INTEGER PRIMARY KEY, sku TEXT, qty INTEGER)")
    raw.execute("CREATE TEMP TABLE IF NOT EXISTS bench_batch (sku TEXT PRIMARY KEY, qty INTEGER)")
    raw.execute("DELETE FROM bench_plan")
    raw.execute("DELETE FROM bench_batch")
    raw.executemany("INSERT INTO bench_plan VALUES (?, ?, ?)", plan)
    raw.executemany("INSERT INTO bench_batch VALUES (?, ?)", [(s, batch[s]) for s in skus])
    raw.execute(
        "UPDATE order_lines SET allocated_qty = allocated_qty + p.qty, backordered_qty = backordered_qty - p.qty "
        "FROM bench_plan p WHERE order_lines.id = p.id"
    )
    raw.execute(
        "INSERT INTO allocations (line_id, sku, qty, source, ref, at) "
        "SELECT id, sku, qty, 'receipt', ?, ? FROM bench_plan",
        (ref, at),
    )
    raw.execute(
        "INSERT INTO stock_movements (sku, qty_delta, kind, ref, at) SELECT sku, qty, 'receipt', ?, ? FROM bench_batch",
        (ref, at),
    )
    raw.execute(
        "UPDATE products SET on_hand = products.on_hand + b.qty, "
        "allocated = products.allocated + COALESCE(per.n, 0), backordered = products.backordered - COALESCE(per.n, 0) "
        "FROM bench_batch b LEFT JOIN (SELECT sku, SUM(qty) AS n FROM bench_plan GROUP BY sku) per ON per.sku = b.sku "
        "WHERE products.sku = b.sku"
    )
    return len(plan)


def allocations_of(conn: Connection, ref: str) -> list[tuple[int, int]]:
    """(line id, units) allocated under a receipt reference, to compare a floor with the service."""
    rows = conn.execute(
        text("SELECT line_id, qty FROM allocations WHERE ref = :ref ORDER BY line_id"), {"ref": ref}
    ).all()
    return [(int(a), int(b)) for a, b in rows]
