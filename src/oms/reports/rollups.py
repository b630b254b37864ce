"""The report rollups (migration 0009): folding PostgreSQL's delta rows, and a recount to check them.

Database triggers keep the `report_*_rollup` tables in every writer's own transaction (see the
migrations 0009 and 0010). A key's figures are the sum of its rows, and every report sums them, so
it is exact whether or not the rows are folded. On PostgreSQL each writing statement appends its
change as a delta row, so writers never update a shared row and never wait on each other;
`fold_all` (the worker's, through `fold_rollups`) replaces a key's rows by their sum, which only
keeps reads fast. Reports never fold: a read never writes, so it runs in a read-only transaction
(and on a replica). A fold takes only rows no one else is folding (SKIP LOCKED) and deletes and
inserts in one statement, so a key's sum is the same before and after in every transaction's view.
SQLite's triggers add into one row per key (one writer at a time), so there is nothing to fold.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy import Connection, Date, Table, cast, func, select, text, type_coerce

from oms.reports.measures import cents
from oms.store.db import Store
from oms.store.tables import (
    allocations,
    customers,
    order_lines,
    report_pending_rollup,
    report_placed_rollup,
    report_sku_rollup,
    report_waiting_customer_rollup,
    report_waiting_sku_day_rollup,
    report_waiting_sku_rollup,
)

KEYS: dict[str, tuple[str, ...]] = {
    "report_placed_rollup": ("placed_day", "backordered_day", "channel"),
    "report_sku_rollup": ("sku", "channel"),
    "report_pending_rollup": ("placed_hour", "channel", "tier"),
    "report_waiting_sku_rollup": ("sku", "channel"),
    "report_waiting_sku_day_rollup": ("sku", "channel", "placed_day"),
    "report_waiting_customer_rollup": ("customer_id", "channel"),
}
SUMS: dict[str, tuple[str, ...]] = {
    "report_placed_rollup": ("lines", "units_ordered", "units_taken", "lines_filled", "units_backordered"),
    "report_sku_rollup": ("lines", "units_ordered", "units_taken", "lines_filled"),
    "report_pending_rollup": ("lines", "units", "value"),
    "report_waiting_sku_rollup": ("lines", "units", "value"),
    "report_waiting_sku_day_rollup": ("lines", "units", "value"),
    "report_waiting_customer_rollup": ("lines", "units", "value"),
}
TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        report_placed_rollup,
        report_sku_rollup,
        report_pending_rollup,
        report_waiting_sku_rollup,
        report_waiting_sku_day_rollup,
        report_waiting_customer_rollup,
    )
}
# Key columns that may be NULL, with a value no row has: keys are compared with `=` on it, which
# PostgreSQL can hash or look up by index (`IS NOT DISTINCT FROM` only joins by nested loop, which
# made a fold after a large receipt quadratic).
NULLABLE = {"backordered_day": "DATE '0001-01-01'"}


def _same(k: str) -> str:
    if k in NULLABLE:
        return f"coalesce(d.{k}, {NULLABLE[k]}) = coalesce(r.{k}, {NULLABLE[k]})"
    return f"d.{k} = r.{k}"


def _fold_sql(table: str) -> str:
    keys, sums = KEYS[table], SUMS[table]
    same = " AND ".join(_same(k) for k in keys)
    return (
        f"WITH gone AS (DELETE FROM {table} WHERE id IN (SELECT r.id FROM {table} r WHERE EXISTS"
        f" (SELECT 1 FROM {table} d WHERE d.delta = 1 AND {same}) FOR UPDATE OF r SKIP LOCKED)"
        f" RETURNING {', '.join(keys + sums)}, delta),"
        f" kept AS (INSERT INTO {table} ({', '.join(keys + sums)}, delta)"
        f" SELECT {', '.join(keys)}, {', '.join(f'sum({s})' for s in sums)}, 0 FROM gone"
        f" GROUP BY {', '.join(keys)} HAVING {' OR '.join(f'sum({s}) <> 0' for s in sums)})"
        " SELECT count(*) FROM gone WHERE delta = 1"
    )


FOLD_SQL = {name: _fold_sql(name) for name in KEYS}


def fold(conn: Connection, *tables: str) -> int:
    """Fold the delta rows of the named rollups (all when none is named) into one row per key;
    returns the delta rows folded. A write: never call it from a read.

    One transaction folds a table at a time (a transaction-scoped advisory try-lock; a folder that
    finds it taken leaves that table's deltas to the next fold), so every key keeps at most one
    folded row (delta = 0): `ranked` relies on it.
    """
    if conn.dialect.name != "postgresql":
        return 0
    folded = 0
    for name in tables or tuple(KEYS):
        if (
            conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {name} WHERE delta = 1)")).scalar_one()
            and conn.execute(
                text("SELECT pg_try_advisory_xact_lock(hashtext(:lock))"), {"lock": f"oms fold {name}"}
            ).scalar_one()
        ):
            folded += int(conn.execute(text(FOLD_SQL[name])).scalar_one())
    return folded


def fold_all(conn: Connection) -> int:
    """Fold every rollup that has delta rows (PostgreSQL; nothing on SQLite); the delta rows folded.

    For the background worker, in a write transaction of its own (`fold_rollups`): reports are
    exact without it, and only slower as delta rows pile up. A table another transaction is
    folding is skipped (its deltas wait for the next call).
    """
    return fold(conn)


def fold_rollups(store: Store) -> int:
    """`fold_all` in its own write transaction: what the worker calls every few seconds."""
    return store.write(lambda uow: fold_all(uow.conn), actor="worker")


def current(conn: Connection) -> dict[str, dict[tuple[Any, ...], tuple[int, ...]]]:
    """Each rollup as {key: sums}, keys whose sums are all zero left out."""
    out: dict[str, dict[tuple[Any, ...], tuple[int, ...]]] = {}
    for name, t in TABLES.items():
        keys = [t.c[k] for k in KEYS[name]]
        rows = conn.execute(select(*keys, *(func.sum(cents(t.c[s])) for s in SUMS[name])).group_by(*keys))
        out[name] = {tuple(r[: len(keys)]): tuple(int(v) for v in r[len(keys) :]) for r in rows if any(r[len(keys) :])}
    return out


def recount(conn: Connection) -> dict[str, dict[tuple[Any, ...], tuple[int, ...]]]:
    """The rollups counted from scratch from the order lines, in the shape of `current`."""
    ol = order_lines
    a = allocations.alias("at_once")

    def day(col: Any) -> Any:
        if conn.dialect.name == "postgresql":
            return cast(func.timezone("UTC", col), Date)
        return type_coerce(func.date(col), Date)

    taken = func.coalesce(a.c.qty, 0)
    lines = (
        select(
            day(ol.c.placed_at).label("placed_day"),
            day(ol.c.backordered_at).label("backordered_day"),
            ol.c.channel,
            ol.c.sku,
            ol.c.qty,
            (ol.c.backordered_at.is_(None)).label("never_waited"),
            taken.label("alloc_at_once"),
        )
        .select_from(ol)
        .outerjoin(a, (a.c.line_id == ol.c.id) & (a.c.source == "placement"))
        .subquery()
    )
    out: dict[str, dict[tuple[Any, ...], tuple[int, ...]]] = {name: {} for name in TABLES}
    for r in conn.execute(select(lines)):
        t = r.qty if r.never_waited else int(r.alloc_at_once)
        placed = (1, r.qty, t, int(t >= r.qty), 0 if r.backordered_day is None else r.qty - t)
        _add(out["report_placed_rollup"], (r.placed_day, r.backordered_day, r.channel), placed)
        _add(out["report_sku_rollup"], (r.sku, r.channel), placed[:4])
    waiting = (
        select(
            ol.c.placed_at,
            ol.c.channel,
            customers.c.tier,
            ol.c.backordered_qty.label("units"),
            (cents(ol.c.unit_price) * ol.c.backordered_qty).label("value"),
        )
        .join_from(ol, customers, customers.c.customer_id == ol.c.customer_id)
        .where(ol.c.backordered_qty > 0)
    )
    waiting = waiting.add_columns(ol.c.sku, ol.c.customer_id)
    for r in conn.execute(waiting):
        hour = r.placed_at.replace(minute=0, second=0, microsecond=0)
        sums = (1, int(r.units), int(r.value))
        _add(out["report_pending_rollup"], (hour, r.channel, r.tier), sums)
        _add(out["report_waiting_sku_rollup"], (r.sku, r.channel), sums)
        _add(out["report_waiting_sku_day_rollup"], (r.sku, r.channel, r.placed_at.astimezone(UTC).date()), sums)
        _add(out["report_waiting_customer_rollup"], (r.customer_id, r.channel), sums)
        _add(out["report_waiting_customer_rollup"], (r.customer_id, ""), sums)
    return out


def _add(into: dict[tuple[Any, ...], tuple[int, ...]], key: tuple[Any, ...], sums: tuple[int, ...]) -> None:
    old = into.get(key)
    into[key] = sums if old is None else tuple(x + y for x, y in zip(old, sums, strict=True))


def ranked(
    conn: Connection, table: Table, key: str, where: list[Any], limit: int
) -> tuple[int, list[tuple[Any, int, int, int]]]:
    """The first `limit` keys of a rollup by units (then key), as (key, lines, units, value cents),
    and how many keys have lines; `where` must pick one grouping of the table, in which each key has
    at most one folded row (the customer rollup's rows of one channel, or of '' for all).

    Reads the folded rows' top `limit + k` in one ordered scan instead of grouping every key, and
    sums every row of only the k keys that have delta rows (however many the writers appended since
    the last fold): a key without any is exactly its folded row (`fold` keeps one per key), so the
    first `limit` keys without deltas are among those read. The keys with lines are the folded keys
    without deltas and the keys with deltas whose sum has lines. Writes nothing.
    """
    col = table.c[key]
    sums = (table.c.lines, table.c.units, cents(table.c.value))
    moved = select(col).where(table.c.delta == 1, *where)
    changed = {
        r[0]: (int(r[1]), int(r[2]), int(r[3]))
        for r in conn.execute(
            select(col, *(func.sum(s) for s in sums)).where(col.in_(moved.distinct()), *where).group_by(col)
        )
    }
    folded = [table.c.delta == 0, table.c.lines > 0, *where]
    top = conn.execute(
        select(col, *sums).where(*folded).order_by(table.c.units.desc(), col).limit(limit + len(changed))
    ).all()
    rows = [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in top if r[0] not in changed]
    rows += [(k, lines, units, value) for k, (lines, units, value) in changed.items() if lines > 0]
    rows.sort(key=lambda r: (-r[2], r[0]))
    # Counted in one statement, so in one snapshot: the worker's fold may commit between this
    # function's statements, and a key folded in between must not count both as folded and as moved.
    still = select(func.count()).select_from(table).where(*folded, col.not_in(moved)).scalar_subquery()
    summed = select(col).where(col.in_(moved), *where).group_by(col).having(func.sum(table.c.lines) > 0).subquery()
    groups = conn.execute(select(still + select(func.count()).select_from(summed).scalar_subquery())).scalar_one()
    return int(groups), rows[:limit]
