"""The lead-times report: hours from placement to dispatch, of the back-order wait, and from a goods
receipt to the allocations it made, each as count, p50, p90 and max (`measures.distribution`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, and_, func, select, true

from oms.reports.filters import Filters
from oms.reports.measures import PCTS, distribution, fully_dispatched, hours_between, stats_of
from oms.store.tables import allocations, order_lines, receipts

ol = order_lines


def _dispatched_lines(conn: Connection, f: Filters) -> Select[Any]:
    """Fully dispatched lines in the period: (waited, hours from placement to their latest dispatch)."""
    return select(
        ol.c.backordered_at.is_not(None).label("waited"),
        hours_between(conn, ol.c.dispatched_at, ol.c.placed_at).label("x"),
    ).where(fully_dispatched(), *f.period(ol.c.dispatched_at), *f.on_channel(ol.c.channel))


def placed_to_dispatched(conn: Connection, f: Filters) -> dict[str, dict[str, Any]]:
    """Lead-time distributions: over all fully dispatched lines, and split by whether they waited."""
    lines = _dispatched_lines(conn, f)
    if conn.dialect.name == "postgresql":  # one scan: the split and the whole as grouping sets
        sq = lines.subquery()
        x = sq.c.x
        out = {"all": stats_of(0, [None, None], None), "backordered": stats_of(0, [None, None], None)}
        out["not_backordered"] = out["backordered"]
        q = select(
            sq.c.waited,
            func.grouping(sq.c.waited),
            func.count(x),
            *(func.percentile_cont(p).within_group(x) for p in PCTS),
            func.max(x),
        ).group_by(func.rollup(sq.c.waited))
        for waited, whole, n, *ps, mx in conn.execute(q):
            key = "all" if whole else ("backordered" if waited else "not_backordered")
            out[key] = stats_of(int(n), [None if p is None else float(p) for p in ps], mx)
        return out
    return {
        "all": distribution(conn, lines.with_only_columns(lines.selected_columns.x)),
        "backordered": distribution(
            conn, lines.with_only_columns(lines.selected_columns.x).where(ol.c.backordered_at.is_not(None))
        ),
        "not_backordered": distribution(
            conn, lines.with_only_columns(lines.selected_columns.x).where(ol.c.backordered_at.is_(None))
        ),
    }


def backorder_wait(conn: Connection, f: Filters) -> dict[str, Any]:
    a = allocations
    # A line whose last allocation is in the period has one at or after its start: filtering on
    # the start before grouping keeps the maximum right and the grouping small.
    last = (
        select(a.c.line_id.label("line_id"), func.max(a.c.at).label("allocated_at"))
        .where(a.c.source != "placement", *([a.c.at >= f.start] if f.start is not None else []))
        .group_by(a.c.line_id)
        .subquery("last_allocation")
    )
    waited = [ol.c.backordered_at.is_not(None), ol.c.backordered_qty == 0, *f.on_channel(ol.c.channel)]
    if conn.dialect.name == "postgresql":
        # Each allocated line looked up by its key (LIMIT 1 keeps the planner from turning the
        # lookups into a scan of every order line).
        line = select(ol.c.backordered_at).where(ol.c.id == last.c.line_id, *waited).limit(1).lateral("line")
        q = (
            select(hours_between(conn, last.c.allocated_at, line.c.backordered_at).label("x"))
            .select_from(last)
            .join(line, true())
            .where(*f.period(last.c.allocated_at))
        )
        return distribution(conn, q)
    q = (
        select(hours_between(conn, last.c.allocated_at, ol.c.backordered_at).label("x"))
        .join_from(ol, last, last.c.line_id == ol.c.id)
        .where(*waited, *f.period(last.c.allocated_at))
    )
    return distribution(conn, q)


def _receipt_to_allocation(conn: Connection, f: Filters) -> dict[str, Any]:
    a = allocations
    q = (
        select(hours_between(conn, a.c.at, receipts.c.received_at).label("x"))
        .join_from(a, receipts, and_(a.c.source == "receipt", receipts.c.grn_number == a.c.ref))
        .where(*f.period(a.c.at))
    )
    if f.channel:
        q = q.join(ol, ol.c.id == a.c.line_id).where(ol.c.channel == f.channel)
    return distribution(conn, q)


def lead_times(conn: Connection, f: Filters) -> dict[str, Any]:
    """Placed → dispatched (by whether the line waited), back-ordered → allocated, receipt → allocation.

    A line counts once it is fully dispatched (every unit not cancelled has left), at the time its
    last units left; the period bounds that time. The back-order wait of a line ends at its last
    allocation after placement, once nothing of it waits any more; the period bounds that time.
    Receipt → allocation is per allocation made by a goods receipt, from the GRN's received_at.
    """
    lead = placed_to_dispatched(conn, f)
    rows = [
        ("placed_to_dispatched", "all", lead["all"]),
        ("placed_to_dispatched", "backordered", lead["backordered"]),
        ("placed_to_dispatched", "not_backordered", lead["not_backordered"]),
        ("backorder_wait", "backordered", backorder_wait(conn, f)),
        ("receipt_to_allocation", "all", _receipt_to_allocation(conn, f)),
    ]
    return {
        "unit": "hours",
        "items": [{"measure": m, "segment": s, **stats} for m, s, stats in rows],
    }
