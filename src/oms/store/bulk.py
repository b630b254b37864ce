"""Set-based writes of many rows: one statement however many rows there are.

PostgreSQL: the rows travel as ONE JSON parameter that the server expands (`json_to_recordset`),
joined to the table by its key. An executemany there is one statement per row, and psycopg's array
dumper escapes every element in Python, so both cost more than the write itself. SQLite runs in
process, where one executemany of a prepared statement costs about what a temporary table would.
A single row is a plain statement on both.

Each statement shape (table, columns, dialect) is built once and kept: building a SQLAlchemy
statement and its cache key costs more than running a one-row statement does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Connection, Integer, Row, Table, bindparam, cast, column, func, insert, select, update
from sqlalchemy.sql import FromClause
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


@functools.cache
def recordset_of(table: Table, names: tuple[str, ...], name: str = "v") -> FromClause:
    """A PostgreSQL derived table `name(...)` typed like `table`'s columns, plus `n` (the row's position),
    over the JSON bound as `{name}_rows` (see `rows_json`)."""
    return (
        func.json_to_recordset(cast(bindparam(f"{name}_rows"), JSON))
        .table_valued(*(column(n, table.c[n].type) for n in names), column("n", Integer))
        .render_derived(name=name, with_types=True)
    )


def rows_json(dialect: Any, table: Table, rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as the JSON `recordset_of` expands: money in cents and times in UTC, as the columns bind them.

    Each row carries its position `n` (WITH ORDINALITY cannot go with a column definition list).
    """
    names = list(rows[0])
    decorated = {n: t for n in names if isinstance(t := table.c[n].type, TypeDecorator)}
    out = []
    for i, r in enumerate(rows):
        row = dict(r)
        for n, t in decorated.items():
            row[n] = t.process_bind_param(row[n], dialect)
        row["n"] = i
        out.append(row)
    return json.dumps(out, default=_json_value, separators=(",", ":"))


@functools.cache
def _insert_many_pg(table: Table, names: tuple[str, ...], returning: tuple[str, ...]) -> Any:
    v = recordset_of(table, names)
    stmt = insert(table).from_select(list(names), select(*(v.c[n] for n in names)).order_by(v.c.n))
    # PostgreSQL returns inserted rows in the order the SELECT produced them.
    return stmt.returning(*(table.c[n] for n in returning)) if returning else stmt


@functools.cache
def _insert(table: Table, returning: tuple[str, ...], many: bool) -> Any:
    stmt = insert(table)
    if not returning:
        return stmt
    return stmt.returning(*(table.c[n] for n in returning), sort_by_parameter_order=many)


def insert_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], returning: Sequence[str] = ()
) -> list[Row[Any]]:
    """INSERT rows (all with the same keys) in one statement; returns the `returning` columns, in row order."""
    if not rows:
        return []
    back = tuple(returning)
    if len(rows) == 1 or conn.dialect.name != "postgresql":
        many = len(rows) > 1
        result = conn.execute(_insert(table, back, many), list(rows) if many else dict(rows[0]))
        return list(result) if back else []
    stmt = _insert_many_pg(table, tuple(rows[0]), back)
    result = conn.execute(stmt, {"v_rows": rows_json(conn.dialect, table, rows)})
    return list(result) if back else []


@functools.cache
def _update_one(table: Table, key: str, names: tuple[str, ...]) -> Any:
    return update(table).where(table.c[key] == bindparam(f"b_{key}")).values({n: bindparam(f"b_{n}") for n in names})


@functools.cache
def _update_many_pg(table: Table, key: str, names: tuple[str, ...]) -> Any:
    v = recordset_of(table, (key, *names))
    return update(table).where(table.c[key] == v.c[key]).values({n: v.c[n] for n in names})


def update_rows(conn: Connection, table: Table, key: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """UPDATE each row of `table` found by `key` to the values given (all rows with the same keys)."""
    if not rows:
        return
    names = tuple(n for n in rows[0] if n != key)
    if len(rows) == 1 or conn.dialect.name != "postgresql":
        params = [{f"b_{n}": v for n, v in r.items()} for r in rows]
        conn.execute(_update_one(table, key, names), params if len(params) > 1 else params[0])
        return
    conn.execute(_update_many_pg(table, key, names), {"v_rows": rows_json(conn.dialect, table, rows)})
