"""The service-level reports: fill rate at placement, promise accuracy, and suppliers on time.

Fill rate is read from the placement rollups (migration 0009) when the period is whole UTC days
(`filters.aligned`), else counted from the lines. Promise accuracy judges back-ordered lines against
their first promised ETA; suppliers are judged on their PO lines' expected dates.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Date, Select, and_, case, func, literal, or_, select

from oms.reports.filters import Filters, aligned, day_span
from oms.reports.measures import day_key, days_between, fully_dispatched, ratio, rounded, taken_at_placement, utc_date
from oms.reports.names import GROUPS_FILL_RATE, GROUPS_PROMISE
from oms.store.tables import (
    order_lines,
    po_lines,
    purchase_orders,
    receipts,
    report_placed_rollup,
    report_sku_rollup,
    stock_movements,
)

ol = order_lines


# ---- fill rate at placement ---------------------------------------------------------------------


def fill_rate(conn: Connection, f: Filters, group_by: str) -> dict[str, Any]:
    """Units allocated the moment they were ordered / units ordered, for orders placed in the period."""
    if group_by not in GROUPS_FILL_RATE:
        raise ValueError(group_by)
    if aligned(f) and (group_by != "sku" or (f.start is None and f.end is None)):
        return _fill_rate_rolled(conn, f, group_by)
    key: Any
    if group_by in ("day", "week"):
        key = day_key(conn, ol.c.placed_at, week=group_by == "week")
    else:
        key = ol.c.sku if group_by == "sku" else ol.c.channel
    lines = (
        select(key.label("key"), ol.c.qty.label("qty"), taken_at_placement().label("taken"))
        .where(*f.period(ol.c.placed_at), *f.on_channel(ol.c.channel))
        .subquery("placed")
    )

    def q(*cols: Any) -> Select[Any]:
        return select(
            *cols,
            func.count().label("lines"),
            func.coalesce(func.sum(lines.c.qty), 0).label("ordered"),
            func.coalesce(func.sum(lines.c.taken), 0).label("taken"),
            func.coalesce(func.sum(case((lines.c.taken >= lines.c.qty, 1), else_=0)), 0).label("filled"),
        ).select_from(lines)

    def shape(r: Any) -> dict[str, Any]:
        return _fill_shape(int(r.lines), int(r.filled), int(r.ordered), int(r.taken))

    rows = conn.execute(q(lines.c.key).group_by(lines.c.key).order_by(lines.c.key)).all()
    total = conn.execute(q()).one()
    return {
        "group_by": group_by,
        "items": [{group_by: str(r.key), **shape(r)} for r in rows],
        "total": shape(total),
    }


def _fill_shape(lines: int, filled: int, ordered: int, taken: int) -> dict[str, Any]:
    return {
        "lines": lines,
        "lines_filled_at_placement": filled,
        "units_ordered": ordered,
        "units_allocated_at_placement": taken,
        "fill_rate": ratio(taken, ordered),
    }


def _fill_rate_rolled(conn: Connection, f: Filters, group_by: str) -> dict[str, Any]:
    """`fill_rate` from the rollups: by day, week or channel over an aligned period; by SKU over all time."""
    rows: list[Any]
    if group_by == "sku":
        k = report_sku_rollup
        rows = list(
            conn.execute(
                select(
                    k.c.sku,
                    func.sum(k.c.lines).label("lines"),
                    func.sum(k.c.units_ordered).label("ordered"),
                    func.sum(k.c.units_taken).label("taken"),
                    func.sum(k.c.lines_filled).label("filled"),
                )
                .where(*f.on_channel(k.c.channel))
                .group_by(k.c.sku)
            )
        )
    else:
        rows = _placed_rows(conn, f)
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        if not r.lines:
            continue
        if group_by == "sku":
            key = r.sku
        elif group_by == "channel":
            key = r.channel
        else:
            d = r.placed_day if group_by == "day" else r.placed_day - timedelta(days=r.placed_day.weekday())
            key = d.isoformat()
        a = acc[key]
        for i, v in enumerate((r.lines, r.filled, r.ordered, r.taken)):
            a[i] += int(v)
    total = [sum(a[i] for a in acc.values()) for i in range(4)]
    return {
        "group_by": group_by,
        "items": [{group_by: k, **_fill_shape(*acc[k])} for k in sorted(acc)],
        "total": _fill_shape(*total),
    }


def _placed_rows(conn: Connection, f: Filters) -> list[Any]:
    """Placement facts of an aligned period by day and channel."""
    p = report_placed_rollup
    return list(
        conn.execute(
            select(
                p.c.placed_day,
                p.c.channel,
                func.sum(p.c.lines).label("lines"),
                func.sum(p.c.units_ordered).label("ordered"),
                func.sum(p.c.units_taken).label("taken"),
                func.sum(p.c.lines_filled).label("filled"),
            )
            .where(*day_span(f, p.c.placed_day), *f.on_channel(p.c.channel))
            .group_by(p.c.placed_day, p.c.channel)
        )
    )


def fill_rate_total(conn: Connection, f: Filters) -> float | None:
    """Units allocated at placement / units ordered, over every order placed in the period (the summary's)."""
    if aligned(f):
        rows = _placed_rows(conn, f)
        return ratio(sum(int(r.taken) for r in rows), sum(int(r.ordered) for r in rows))
    ordered, taken = conn.execute(
        select(func.coalesce(func.sum(ol.c.qty), 0), func.coalesce(func.sum(taken_at_placement()), 0)).where(
            *f.period(ol.c.placed_at), *f.on_channel(ol.c.channel)
        )
    ).one()
    return ratio(int(taken), int(ordered))


# ---- promise accuracy ---------------------------------------------------------------------------


def promise_accuracy(conn: Connection, f: Filters, today: date, group_by: str) -> dict[str, Any]:
    """Back-ordered lines kept to their first promised ETA (order_lines.promised_date).

    A line is judged once it is fully dispatched (on time when its last units left on or before
    the promised day) or, still open, once its promised day has passed (late, and still late).
    Slip is days past the promise: to the dispatch day, or to today for an open late line;
    `mean_slip_days` is over the late lines. The period bounds the promised day.
    """
    if group_by not in GROUPS_PROMISE:
        raise ValueError(group_by)
    done = fully_dispatched()
    today_lit = literal(today, Date)
    outstanding = ol.c.qty - ol.c.shipped_qty - ol.c.cancelled_qty
    slip = case(
        (done, days_between(conn, utc_date(conn, ol.c.dispatched_at), ol.c.promised_date)),
        else_=days_between(conn, today_lit, ol.c.promised_date),
    )
    judged = (
        select(
            (ol.c.sku if group_by == "sku" else ol.c.channel).label("key"),
            done.label("done"),
            slip.label("slip"),
        )
        .select_from(ol)
        .where(
            ol.c.backordered_at.is_not(None),
            ol.c.promised_date.is_not(None),
            or_(and_(done, ol.c.dispatched_at.is_not(None)), and_(outstanding > 0, ol.c.promised_date < today_lit)),
            *f.date_period(ol.c.promised_date),
            *f.on_channel(ol.c.channel),
        )
        .subquery("judged")
    )
    late = judged.c.slip > 0

    def q(*cols: Any) -> Select[Any]:
        return select(
            *cols,
            func.count().label("n"),
            func.coalesce(func.sum(case((late, 0), else_=1)), 0).label("on_time"),
            func.coalesce(func.sum(case((and_(late, ~judged.c.done), 1), else_=0)), 0).label("late_open"),
            func.avg(case((late, judged.c.slip))).label("mean_slip"),
            func.max(case((late, judged.c.slip))).label("max_slip"),
        ).select_from(judged)

    def shape(r: Any) -> dict[str, Any]:
        n, on_time = int(r.n), int(r.on_time)
        return {
            "lines_judged": n,
            "on_time": on_time,
            "late": n - on_time,
            "late_still_open": int(r.late_open),
            "on_time_rate": ratio(on_time, n),
            "mean_slip_days": rounded(None if r.mean_slip is None else float(r.mean_slip)),
            "max_slip_days": None if r.max_slip is None else int(r.max_slip),
        }

    rows = conn.execute(q(judged.c.key).group_by(judged.c.key).order_by(judged.c.key)).all()
    return {
        "group_by": group_by,
        "items": [{group_by: r.key, **shape(r)} for r in rows],
        "total": shape(conn.execute(q()).one()),
    }


# ---- suppliers on time --------------------------------------------------------------------------


def supplier_on_time(conn: Connection, f: Filters, today: date) -> dict[str, Any]:
    """Per supplier: PO lines received in full on or before their expected date.

    A PO line's receipts are the GRNs booked against its PO for its SKU; it is complete on the
    first receipt that brings its received units to its quantity. Lines of open POs whose expected
    day has passed without completion count as late. Cancelled POs are left out. The period bounds
    the expected day; `channel` does not apply.
    """
    po, pl, r, sm = purchase_orders, po_lines, receipts, stock_movements
    running = (
        select(
            pl.c.id.label("po_line_id"),
            r.c.received_at.label("received_at"),
            pl.c.qty.label("qty"),
            func.sum(sm.c.qty_delta)
            .over(partition_by=pl.c.id, order_by=(r.c.received_at, r.c.id))
            .label("received_so_far"),
        )
        .select_from(r)
        .join(po, po.c.po_number == r.c.po_number)
        .join(pl, pl.c.po_id == po.c.id)
        .join(sm, and_(sm.c.kind == "receipt", sm.c.ref == r.c.grn_number, sm.c.sku == pl.c.sku))
        .subquery("running")
    )
    complete = (
        select(running.c.po_line_id, func.min(running.c.received_at).label("completed_at"))
        .where(running.c.received_so_far >= running.c.qty)
        .group_by(running.c.po_line_id)
        .subquery("complete")
    )
    today_lit = literal(today, Date)
    is_done = complete.c.completed_at.is_not(None)
    late_days = case(
        (is_done, days_between(conn, utc_date(conn, complete.c.completed_at), pl.c.expected_date)),
        else_=days_between(conn, today_lit, pl.c.expected_date),
    )
    judged = (
        select(po.c.supplier.label("supplier"), is_done.label("done"), late_days.label("late_days"))
        .select_from(pl)
        .join(po, po.c.id == pl.c.po_id)
        .outerjoin(complete, complete.c.po_line_id == pl.c.id)
        .where(
            po.c.status != "cancelled",
            or_(is_done, pl.c.expected_date < today_lit),
            *f.date_period(pl.c.expected_date),
        )
        .subquery("judged")
    )
    late = judged.c.late_days > 0

    def q(*cols: Any) -> Select[Any]:
        return select(
            *cols,
            func.count().label("n"),
            func.coalesce(func.sum(case((late, 0), else_=1)), 0).label("on_time"),
            func.coalesce(func.sum(case((and_(late, ~judged.c.done), 1), else_=0)), 0).label("late_open"),
            func.avg(case((late, judged.c.late_days))).label("mean_late"),
        ).select_from(judged)

    def shape(row: Any) -> dict[str, Any]:
        n, on_time = int(row.n), int(row.on_time)
        return {
            "po_lines_judged": n,
            "on_time": on_time,
            "late": n - on_time,
            "late_still_open": int(row.late_open),
            "on_time_rate": ratio(on_time, n),
            "mean_days_late": rounded(None if row.mean_late is None else float(row.mean_late)),
        }

    rows = conn.execute(q(judged.c.supplier).group_by(judged.c.supplier).order_by(judged.c.supplier)).all()
    return {
        "items": [{"supplier": row.supplier, **shape(row)} for row in rows],
        "total": shape(conn.execute(q()).one()),
    }
