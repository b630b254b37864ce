"""The lines waiting now: back-ordered units of orders placed in the period, per age bucket.

Shared by the back-order breakdown (oms.reports.backorders), the summary and the /metrics figures
(oms.reports.summary). A whole-hour period (`filters.whole_hours`, every date filter) is read from
the pending rollup (migration 0009, kept by triggers); any other from the waiting lines. Age buckets
move with `now`, so the few hours a bucket boundary falls in are counted from the waiting lines (an
index range each) and every other hour from the rollup.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal, select, union_all

from oms.reports.filters import Filters, hour_of, whole_hours
from oms.reports.measures import AGE_BUCKETS, age_days, bucket_label, cents, money_of_cents
from oms.store.tables import customers, order_lines, report_pending_rollup

ol = order_lines


def pending_where(f: Filters) -> list[ColumnElement[bool]]:
    """The lines with units waiting, of orders placed in the period on the channel."""
    return [ol.c.backordered_qty > 0, *f.period(ol.c.placed_at), *f.on_channel(ol.c.channel)]


def _boundary_hours(now: datetime) -> list[datetime]:
    """The UTC hours holding a bucket boundary (now - N days): their lines fall in two buckets."""
    return sorted({hour_of(now - timedelta(days=youngest)) for _, youngest in AGE_BUCKETS if youngest > 0})


Acc = dict[Any, dict[str, list[int]]]


def pending_by(conn: Connection, f: Filters, now: datetime, by: str | None) -> Acc:
    """Waiting lines of a whole-hour period: {group key: {age bucket: [lines, units, value cents]}}.

    `by` is None (one group, key None), "channel" or "tier" (the customer's tier now). Every hour
    but the few holding a bucket boundary lies in one bucket and is read from the rollup; those few
    are counted from their lines.
    """
    p = report_pending_rollup
    edges = _boundary_hours(now)
    label = bucket_label(now, p.c.placed_hour)
    key: Any = {None: literal(""), "channel": p.c.channel, "tier": p.c.tier}[by]
    hours = (
        select(key.label("key"), label.label("bucket"), p.c.lines, p.c.units, cents(p.c.value).label("value"))
        .where(*f.period(p.c.placed_hour), *f.on_channel(p.c.channel), p.c.placed_hour.not_in(edges))
        .subquery("hours")
    )
    rows = conn.execute(
        select(
            hours.c.key, hours.c.bucket, func.sum(hours.c.lines), func.sum(hours.c.units), func.sum(hours.c.value)
        ).group_by(hours.c.key, hours.c.bucket)
    ).all()
    acc: Acc = defaultdict(lambda: {name: [0, 0, 0] for name, _ in AGE_BUCKETS})
    _add_rows(acc, by, rows)
    lkey: Any = {None: literal(""), "channel": ol.c.channel, "tier": customers.c.tier}[by]
    parts = []
    for h in edges:  # one index range per hour (SQLite scans the table for an OR of ranges)
        waiting = select(
            lkey.label("key"),
            bucket_label(now, ol.c.placed_at).label("bucket"),
            ol.c.backordered_qty.label("units"),
            (cents(ol.c.unit_price) * ol.c.backordered_qty).label("value"),
        ).where(*pending_where(f), ol.c.placed_at >= h, ol.c.placed_at < h + timedelta(hours=1))
        if by == "tier":
            waiting = waiting.join_from(ol, customers, customers.c.customer_id == ol.c.customer_id)
        parts.append(waiting)
    sq = union_all(*parts).subquery("edge")
    rows = conn.execute(
        select(sq.c.key, sq.c.bucket, func.count(), func.sum(sq.c.units), func.sum(sq.c.value)).group_by(
            sq.c.key, sq.c.bucket
        )
    ).all()
    _add_rows(acc, by, rows)
    return acc


def _add_rows(acc: Acc, by: str | None, rows: Iterable[Any]) -> None:
    for k, bucket, n, units, value in rows:
        if n:
            cell = acc[None if by is None else k][bucket]
            cell[0] += int(n)
            cell[1] += int(units)
            cell[2] += int(value)


def oldest_waiting(conn: Connection, f: Filters, by: str | None = None, key: Any = None) -> datetime | None:
    """The earliest placed_at among the waiting lines of the period (and of one channel or tier)."""
    q = select(ol.c.placed_at).where(*pending_where(f))
    if by == "channel":
        q = q.where(ol.c.channel == key)
    elif by == "tier":
        q = q.join_from(ol, customers, customers.c.customer_id == ol.c.customer_id).where(customers.c.tier == key)
    found: datetime | None = conn.execute(q.order_by(ol.c.placed_at).limit(1)).scalar_one_or_none()
    return found


Cells = dict[str, list[int]]  # age bucket -> [lines, units, value cents]


def pending_total(conn: Connection, f: Filters, now: datetime, cells: Cells) -> dict[str, Any]:
    """The waiting lines of the period in all: the sums of their age buckets, and the oldest."""
    lines = sum(c[0] for c in cells.values())
    return {
        "lines": lines,
        "units": sum(c[1] for c in cells.values()),
        "value": money_of_cents(sum(c[2] for c in cells.values())),
        "oldest_age_days": age_days(now, oldest_waiting(conn, f)) if lines else None,
    }


def age_cells(conn: Connection, f: Filters, now: datetime) -> Cells:
    """The waiting lines of the period per age bucket: the pending rollup for whole hours, else the lines."""
    if whole_hours(f):
        return pending_by(conn, f, now, None)[None]
    label = bucket_label(now, ol.c.placed_at)
    # Grouped in an outer select: PostgreSQL would not match a GROUP BY expression holding parameters.
    waiting = (
        select(
            label.label("bucket"),
            ol.c.backordered_qty.label("units"),
            (cents(ol.c.unit_price) * ol.c.backordered_qty).label("value"),
        )
        .where(*pending_where(f))
        .subquery("waiting")
    )
    rows = conn.execute(
        select(waiting.c.bucket, func.count(), func.sum(waiting.c.units), func.sum(waiting.c.value)).group_by(
            waiting.c.bucket
        )
    ).all()
    out: Cells = {name: [0, 0, 0] for name, _ in AGE_BUCKETS}
    for bucket, n, units, value in rows:
        out[bucket] = [int(n), int(units), int(value)]
    return out


def by_age_bucket(cells: Cells) -> dict[str, dict[str, Any]]:
    return {name: {"lines": c[0], "units": c[1], "value": money_of_cents(c[2])} for name, c in cells.items()}
