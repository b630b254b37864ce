"""Set-based writes of many rows: one statement however many rows there are.

PostgreSQL: the rows travel as ONE JSON parameter that the server expands (`json_to_recordset`),
joined to the table by its key. An executemany there is one statement per row, and psycopg's array
dumper escapes every element in Python, so both cost more than the write itself. SQLite runs in
process, where one executemany of a prepared statement costs about what a temporary table would.
A single row is a plain statement on both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Connection, Integer, Row, Table, bindparam, cast, column, func, insert, select, update
from sqlalchemy.sql import ColumnElement, FromClause
from sqlalchemy.types import TypeDecorator

# Longest list bound into one IN (...): SQLite allows 32,766 parameters per statement.
IN_CHUNK = 5000


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _json_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat() if v.tzinfo else v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    raise TypeError(f"cannot send {type(v).__name__} as JSON")


def recordset(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], name: str = "v") -> FromClause:
    """The rows as a PostgreSQL derived table `name(...)` typed like `table`'s columns, plus `n`, their position."""
    names = list(rows[0])
    decorated: dict[str, TypeDecorator[Any]] = {n: t for n in names if isinstance(t := table.c[n].type, TypeDecorator)}
    if decorated:  # money as cents, times in UTC: what the column's type would have bound
        rows = [dict(r) | {n: t.process_bind_param(r[n], conn.dialect) for n, t in decorated.items()} for r in rows]
    # Each row carries its position `n` (WITH ORDINALITY cannot go with a column definition list).
    payload = json.dumps([dict(r) | {"n": i} for i, r in enumerate(rows)], default=_json_value, separators=(",", ":"))
    return (
        func.json_to_recordset(cast(bindparam(f"{name}_rows", payload), JSON))
        .table_valued(*(column(n, table.c[n].type) for n in names), column("n", Integer))
        .render_derived(name=name, with_types=True)
    )


def insert_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], returning: Sequence[str] = ()
) -> list[Row[Any]]:
    """INSERT rows (all with the same keys) in one statement; returns the `returning` columns, in row order."""
    if not rows:
        return []
    cols = [table.c[n] for n in returning]
    if len(rows) == 1:
        stmt = insert(table).values(dict(rows[0]))
        return list(conn.execute(stmt.returning(*cols))) if cols else _none(conn.execute(stmt))
    if conn.dialect.name != "postgresql":
        if not cols:
            conn.execute(insert(table), list(rows))
            return []
        return list(conn.execute(insert(table).returning(*cols, sort_by_parameter_order=True), list(rows)))
    v = recordset(conn, table, rows)
    names = list(rows[0])
    stmt = insert(table).from_select(names, select(*(v.c[n] for n in names)).order_by(v.c.n))
    if not cols:
        conn.execute(stmt)
        return []
    # PostgreSQL returns inserted rows in the order the SELECT produced them.
    return list(conn.execute(stmt.returning(*cols)))


def _none(_: Any) -> list[Row[Any]]:
    return []


def update_rows(conn: Connection, table: Table, key: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """UPDATE each row of `table` found by `key` to the values given (all rows with the same keys)."""
    if not rows:
        return
    names = [n for n in rows[0] if n != key]
    if len(rows) == 1:
        r = rows[0]
        conn.execute(update(table).where(table.c[key] == r[key]).values({n: r[n] for n in names}))
        return
    if conn.dialect.name != "postgresql":
        stmt = (
            update(table).where(table.c[key] == bindparam(f"b_{key}")).values({n: bindparam(f"b_{n}") for n in names})
        )
        conn.execute(stmt, [{f"b_{n}": v for n, v in r.items()} for r in rows])
        return
    v = recordset(conn, table, rows)
    conn.execute(update(table).where(table.c[key] == v.c[key]).values({n: v.c[n] for n in names}))


def in_list(col: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """col IN (values) as one array parameter on PostgreSQL (one plan, any length); a list on SQLite."""
    return col.in_(values)
