"""What the reports measure with: the small SQL expressions, the age buckets, percentiles, and the
facts about an order line that several reports share.

Every figure is grouped and summed in the database. Percentiles are `percentile_cont` on
PostgreSQL; SQLite has no percentile aggregate, so there each one is read as at most two rows of an
ordered select of the one column (`ORDER BY x LIMIT 2 OFFSET k`) and interpolated the way
`percentile_cont` does (`distribution`). Nothing loads the lines into Python.

Ages count whole days since the order was placed, as the Back Orders tab does (`AGE_BUCKETS`).
Amounts are summed as integer cents (`cents`) and written with two decimals as oms.formats writes
every amount (`money_of_cents`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Date,
    Integer,
    Select,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    select,
    true,
    type_coerce,
)

from oms.formats import money
from oms.store.tables import allocations, order_lines

ol = order_lines


# ---- small helpers ------------------------------------------------------------------------------


def money_of_cents(cents: int | None) -> str:
    """A sum of cents (None as 0) written as every answer writes money: 1234 -> '12.34'."""
    return money(Decimal(int(cents or 0)) / 100)


def cents(col: Any) -> Any:
    """A Money column as its stored integer cents, so SQL sums stay exact."""
    return type_coerce(col, BigInteger)


def ratio(part: int | None, whole: int | None) -> float | None:
    return round((part or 0) / whole, 4) if whole else None


def rounded(x: float | None, places: int = 2) -> float | None:
    return None if x is None else round(float(x), places)


def hours_between(conn: Connection, later: Any, earlier: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def utc_date(conn: Connection, ts: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return cast(func.timezone("UTC", ts), Date)
    return func.date(ts)


def days_between(conn: Connection, later: Any, earlier: Any) -> Any:
    """Whole days from one DATE to another."""
    if conn.dialect.name == "postgresql":
        return later - earlier
    return cast(func.julianday(later) - func.julianday(earlier), Integer)


def day_key(conn: Connection, ts: Any, week: bool) -> Any:
    """A timestamp's UTC day (or the Monday of its ISO week) as 'YYYY-MM-DD'."""
    if conn.dialect.name == "postgresql":  # grouped as DATE (cheaper than text), shown as 'YYYY-MM-DD'
        utc = func.timezone("UTC", ts)
        return cast(func.date_trunc("week", utc) if week else utc, Date)
    return func.date(ts, "weekday 0", "-6 days") if week else func.date(ts)


# ---- age buckets --------------------------------------------------------------------------------

# (label, the youngest age in whole days); the last bucket has no upper end.
AGE_BUCKETS: tuple[tuple[str, int], ...] = (("0-2", 0), ("3-7", 3), ("8-14", 8), ("15-30", 15), (">30", 31))


def age_days(now: datetime, oldest: datetime | None) -> int | None:
    return None if oldest is None else max(0, (now - oldest).days)


def bucket_conditions(now: datetime, col: Any = None) -> list[tuple[str, ColumnElement[bool]]]:
    """Each age bucket as a condition on placed_at (age = whole days since placement), or on `col`."""
    col = ol.c.placed_at if col is None else col
    out = []
    for i, (label, youngest) in enumerate(AGE_BUCKETS):
        conds = []
        if i + 1 < len(AGE_BUCKETS):
            conds.append(col > now - timedelta(days=AGE_BUCKETS[i + 1][1]))
        if youngest > 0:
            conds.append(col <= now - timedelta(days=youngest))
        out.append((label, and_(true(), *conds)))
    return out


def bucket_label(now: datetime, col: Any) -> Any:
    """The age bucket's name of a placed_at-like column, as a CASE."""
    buckets = bucket_conditions(now, col)
    return case(*((cond, literal(name)) for name, cond in buckets[:-1]), else_=literal(buckets[-1][0]))


# ---- percentiles --------------------------------------------------------------------------------

PCTS = (0.5, 0.9)


def _interpolate(lo: float, hi: float, frac: float) -> float:
    return lo + (hi - lo) * frac


def distribution(conn: Connection, values: Select[Any]) -> dict[str, Any]:
    """count, p50, p90, max of a one-column select (column `x`), as percentile_cont computes them."""
    sq = values.subquery()
    x = sq.c.x
    if conn.dialect.name == "postgresql":
        row = conn.execute(
            select(func.count(x), *(func.percentile_cont(p).within_group(x) for p in PCTS), func.max(x))
        ).one()
        return stats_of(int(row[0]), [None if p is None else float(p) for p in row[1:-1]], row[-1])
    n, mx = conn.execute(select(func.count(x), func.max(x))).one()
    found: list[float | None] = []
    for p in PCTS:
        if not n:
            found.append(None)
            continue
        k = p * (int(n) - 1)
        lo = math.floor(k)
        ordered = select(x).where(x.is_not(None)).order_by(x).limit(2).offset(lo)
        two = [float(v) for v in conn.execute(ordered).scalars()]
        found.append(_interpolate(two[0], two[-1], k - lo))
    return stats_of(int(n), found, mx)


def stats_of(n: int, ps: Sequence[float | None], mx: Any) -> dict[str, Any]:
    return {
        "count": n,
        "p50": rounded(ps[0]),
        "p90": rounded(ps[1]),
        "max": rounded(None if mx is None else float(mx)),
    }


# ---- building blocks ----------------------------------------------------------------------------


def placement_units() -> Any:
    """Each line's allocation at placement: placing an order writes at most one such row per line,
    so an outer join on it keeps one row per line and needs no grouping first."""
    return allocations.alias("at_once")


def joins_placement(at_once: Any) -> ColumnElement[bool]:
    return and_(at_once.c.line_id == ol.c.id, at_once.c.source == "placement")


def taken_at_placement() -> Any:
    """Units a line took at placement: all of them unless it ever waited (backordered_at is set only
    then), else its placement allocation, looked up by index for those lines alone."""
    a = allocations.alias("at_once")
    placed = select(a.c.qty).where(a.c.line_id == ol.c.id, a.c.source == "placement").limit(1).scalar_subquery()
    return case((ol.c.backordered_at.is_(None), ol.c.qty), else_=func.coalesce(placed, 0))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fully_dispatched() -> ColumnElement[bool]:
    # A line with units shipped has its dispatch time set; saying so as a range lets both stores
    # find those lines through the dispatch index (SQLite's planner does not for IS NOT NULL).
    return and_(ol.c.dispatched_at >= EPOCH, ol.c.shipped_qty > 0, ol.c.shipped_qty + ol.c.cancelled_qty == ol.c.qty)
