"""The pending back-orders report: lines waiting now by SKU, customer, channel or customer tier.

Which way a breakdown is counted depends on the filters (see `pending_backorders`): by channel or
tier over whole hours from the pending rollup (migration 0009); the first SKUs or customers over all
time ranked from the waiting-line rollups of migration 0010 (`_pending_top`); anything else grouped
from the waiting lines. A key's figures are the sum of all its rows, folded or not, and every query
here sums them (or, ranking customers, sums the keys with delta rows: `rollups.ranked`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, func, select, union_all

from oms.reports import rollups
from oms.reports.filters import Filters, whole_hours
from oms.reports.measures import AGE_BUCKETS, age_days, bucket_conditions, bucket_label, cents, money_of_cents
from oms.reports.names import BREAKDOWN_LIMIT, GROUPS_BACKORDERS
from oms.reports.waiting import age_cells, oldest_waiting, pending_by, pending_total, pending_where
from oms.store.tables import (
    customers,
    order_lines,
    report_waiting_customer_rollup,
    report_waiting_sku_day_rollup,
    report_waiting_sku_rollup,
)

ol = order_lines

# Up to this many SKUs or customers are ranked from the rollups and then read one by one (their
# ages); a longer list (an export of every customer) is one grouping of the waiting lines instead.
TOP_FROM_ROLLUPS = 1000


def pending_backorders(
    conn: Connection, f: Filters, now: datetime, group_by: str, limit: int = BREAKDOWN_LIMIT
) -> dict[str, Any]:
    """Lines waiting now, by SKU, customer, channel or customer tier: lines, units, value, ages.

    Groups are ranked by units waiting (then key); `items` holds the first `limit`, `groups` says how
    many there are and `total` covers them all.
    """
    if group_by not in GROUPS_BACKORDERS:
        raise ValueError(group_by)
    if group_by in ("channel", "tier") and whole_hours(f):
        groups, items = _pending_backorders_rolled(conn, f, now, group_by, limit)
    elif group_by in ("sku", "customer") and f.start is None and f.end is None and limit <= TOP_FROM_ROLLUPS:
        groups, items = _pending_top(conn, f, now, group_by, limit)
    else:
        groups, items = _pending_backorders_counted(conn, f, now, group_by, limit)
    cells = age_cells(conn, f, now)
    total = pending_total(conn, f, now, cells) | {"units_by_age": {label: cells[label][1] for label, _ in AGE_BUCKETS}}
    return {"group_by": group_by, "groups": groups, "limit": limit, "items": items, "total": total}


def _item(group_by: str, key: Any, lines: int, units: int, value: Any, oldest: Any, by_age: Any, now: datetime) -> Any:
    return {
        group_by: key,
        "lines": int(lines),
        "units": int(units),
        "value": money_of_cents(value),
        "oldest_age_days": age_days(now, oldest),
        "units_by_age": {label: int(by_age.get(label, 0)) for label, _ in AGE_BUCKETS},
    }


def _pending_backorders_counted(
    conn: Connection, f: Filters, now: datetime, group_by: str, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """The breakdown counted from the waiting lines (a period the rollups cannot answer)."""
    key: Any = {
        "sku": ol.c.sku,
        "customer": ol.c.customer_id,
        "channel": ol.c.channel,
        "tier": customers.c.tier,
    }[group_by]
    buckets = bucket_conditions(now)
    q = select(
        key.label("key"),
        func.count().label("lines"),
        func.sum(ol.c.backordered_qty).label("units"),
        func.sum(cents(ol.c.unit_price) * ol.c.backordered_qty).label("value"),
        func.min(ol.c.placed_at).label("oldest"),
        func.count().over().label("groups"),
        *(func.sum(case((cond, ol.c.backordered_qty), else_=0)).label(f"b{i}") for i, (_, cond) in enumerate(buckets)),
    ).where(*pending_where(f))
    if group_by == "tier":
        q = q.join_from(ol, customers, customers.c.customer_id == ol.c.customer_id)
    rows = conn.execute(q.group_by(key).order_by(func.sum(ol.c.backordered_qty).desc(), key).limit(limit)).all()
    items = [
        _item(
            group_by,
            r.key,
            r.lines,
            r.units,
            r.value,
            r.oldest,
            {label: getattr(r, f"b{i}") for i, (label, _) in enumerate(buckets)},
            now,
        )
        for r in rows
    ]
    return (int(rows[0].groups) if rows else 0), items


def _pending_top(
    conn: Connection, f: Filters, now: datetime, group_by: str, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """The first `limit` SKUs or customers by units waiting, from the waiting rollups (migration 0010).

    Ranking reads one rollup row per SKU and channel, or per customer; only the groups shown have
    their age buckets and oldest line read: a SKU's from its rows per day placed (the days holding a
    bucket boundary from its lines), a customer's from its waiting lines.
    """
    if group_by == "sku":  # rows per SKU and channel: summed per SKU (10k SKUs)
        t = report_waiting_sku_rollup
        units = func.sum(t.c.units)
        found = conn.execute(
            select(t.c.sku, func.sum(t.c.lines), units, func.sum(cents(t.c.value)), func.count().over())
            .where(*f.on_channel(t.c.channel))
            .group_by(t.c.sku)
            .having(func.sum(t.c.lines) > 0)
            .order_by(units.desc(), t.c.sku)
            .limit(limit)
        ).all()
        groups = int(found[0][4]) if found else 0
        ranked = [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in found]
    else:  # one row per customer and channel, '' for every channel: ranked without grouping
        c = report_waiting_customer_rollup
        groups, ranked = rollups.ranked(conn, c, "customer_id", [c.c.channel == (f.channel or "")], limit)
    if not ranked:
        return 0, []
    keys = [r[0] for r in ranked]
    by_age = _sku_ages(conn, f, now, keys) if group_by == "sku" else _customer_ages(conn, f, now, keys)
    oldest = _oldest_of(conn, f, ol.c.sku if group_by == "sku" else ol.c.customer_id, keys)
    return groups, [_item(group_by, k, n, u, v, oldest.get(k), by_age[k], now) for k, n, u, v in ranked]


def _oldest_of(conn: Connection, f: Filters, col: Any, keys: list[Any]) -> dict[Any, datetime]:
    """Each key's earliest waiting line: one index probe per key ((sku | customer_id, placed_at))."""
    by = report_waiting_sku_rollup if col.name == "sku" else report_waiting_customer_rollup
    wanted = select(by.c[col.name].label("key")).where(by.c[col.name].in_(keys)).distinct().subquery("wanted")
    w = ol.alias("w")
    first = (
        select(w.c.placed_at)
        .where(w.c[col.name] == wanted.c.key, w.c.backordered_qty > 0, *f.on_channel(w.c.channel))
        .order_by(w.c.placed_at)
        .limit(1)
        .scalar_subquery()
    )
    return {k: t for k, t in conn.execute(select(wanted.c.key, first)) if t is not None}


def _customer_ages(conn: Connection, f: Filters, now: datetime, keys: list[Any]) -> dict[Any, dict[str, int]]:
    """Units waiting per age bucket of each customer, from its waiting lines."""
    waiting = (
        select(
            ol.c.customer_id.label("key"),
            bucket_label(now, ol.c.placed_at).label("bucket"),
            ol.c.backordered_qty.label("units"),
        )
        .where(*pending_where(f), ol.c.customer_id.in_(keys))
        .subquery("waiting")
    )
    rows = conn.execute(
        select(waiting.c.key, waiting.c.bucket, func.sum(waiting.c.units)).group_by(waiting.c.key, waiting.c.bucket)
    )
    out: dict[Any, dict[str, int]] = defaultdict(dict)
    for k, bucket, units in rows:
        out[k][bucket] = int(units)
    return out


def _sku_ages(conn: Connection, f: Filters, now: datetime, keys: list[Any]) -> dict[Any, dict[str, int]]:
    """Units waiting per age bucket of each SKU: whole days from the day rollup, and the few days
    holding a bucket boundary (now - N days) from the SKUs' lines of that day (an index range each)."""
    d = report_waiting_sku_day_rollup
    edges = sorted({(now - timedelta(days=youngest)).astimezone(UTC).date() for _, youngest in AGE_BUCKETS[1:]})
    days = conn.execute(
        select(d.c.sku, d.c.placed_day, func.sum(d.c.units))
        .where(d.c.sku.in_(keys), d.c.placed_day.not_in(edges), *f.on_channel(d.c.channel))
        .group_by(d.c.sku, d.c.placed_day)
    ).all()
    out: dict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys((label for label, _ in AGE_BUCKETS), 0))
    # A day that holds no boundary lies in one bucket: the one of any of its instants, say its noon.
    for sku, day, units in days:
        out[sku][_bucket_of(now, datetime(day.year, day.month, day.day, 12, tzinfo=UTC))] += int(units)
    parts = [
        select(
            ol.c.sku.label("key"),
            bucket_label(now, ol.c.placed_at).label("bucket"),
            ol.c.backordered_qty.label("units"),
        ).where(
            *pending_where(f),
            ol.c.sku.in_(keys),
            ol.c.placed_at >= datetime(e.year, e.month, e.day, tzinfo=UTC),
            ol.c.placed_at < datetime(e.year, e.month, e.day, tzinfo=UTC) + timedelta(days=1),
        )
        for e in edges
    ]
    edge = union_all(*parts).subquery("edge")
    for sku, bucket, units in conn.execute(
        select(edge.c.key, edge.c.bucket, func.sum(edge.c.units)).group_by(edge.c.key, edge.c.bucket)
    ):
        out[sku][bucket] += int(units)
    return out


def _bucket_of(now: datetime, placed_at: datetime) -> str:
    """The age bucket of a line placed at `placed_at`, as `bucket_label` says in SQL."""
    age = max((now - placed_at).days, 0)  # a day not yet over has its noon ahead of now
    return next(label for label, youngest in reversed(AGE_BUCKETS) if age >= youngest)


def _pending_backorders_rolled(
    conn: Connection, f: Filters, now: datetime, group_by: str, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """`pending_backorders` by channel or tier from the pending rollup (a whole-hour period)."""
    acc = pending_by(conn, f, now, group_by)
    items = []
    for k, by_age in acc.items():
        lines = sum(c[0] for c in by_age.values())
        if not lines:
            continue
        items.append(
            _item(
                group_by,
                k,
                lines,
                sum(c[1] for c in by_age.values()),
                sum(c[2] for c in by_age.values()),
                oldest_waiting(conn, f, group_by, k),
                {label: c[1] for label, c in by_age.items()},
                now,
            )
        )
    items.sort(key=lambda i: (-i["units"], i[group_by]))
    return len(items), items[:limit]
