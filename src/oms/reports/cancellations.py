"""The cancellations report: units cancelled by reason class, and as a share of the units back-ordered.

Cancellations are counted by their recorded code (`CancelReason`: customer, aged_out, operations),
which every cancelled event carries next to its free-text reason.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Integer, cast, func, select, true

from oms.domain.fulfillment import CancelReason
from oms.reports.filters import Filters, aligned, day_span
from oms.reports.measures import joins_placement, placement_units, ratio
from oms.store.tables import events, order_lines, orders, report_placed_rollup

ol = order_lines

REASON_CLASSES = tuple(c.value for c in CancelReason)


def _cancel_rows(conn: Connection, f: Filters) -> list[Any]:
    """Units cancelled per reason code: (reason, cancellations, units, back-ordered units)."""
    e = events
    reason = e.c.data["reason_code"].as_string()
    if conn.dialect.name == "postgresql":
        item = func.json_array_elements(e.c.data["lines"]).table_valued("value").alias("item")
        qty = cast(item.c.value.op("->>")("qty"), Integer)
        waited = cast(item.c.value.op("->>")("backordered"), Integer)
    else:
        item = func.json_each(e.c.data, "$.lines").table_valued("value").alias("item")
        qty = cast(func.json_extract(item.c.value, "$.qty"), Integer)
        waited = cast(func.json_extract(item.c.value, "$.backordered"), Integer)
    inner = (
        select(e.c.id.label("event_id"), reason.label("reason"), qty.label("qty"), waited.label("waited"))
        .select_from(e)
        .join(item, true())
        .where(e.c.type == "cancelled", *f.period(e.c.at))
    )
    if f.channel:
        inner = inner.join(orders, orders.c.order_number == e.c.order_number).where(orders.c.channel == f.channel)
    sq = inner.subquery("cancelled_lines")
    q = select(
        sq.c.reason,
        func.count(func.distinct(sq.c.event_id)).label("cancellations"),
        func.sum(sq.c.qty).label("units"),
        func.sum(sq.c.waited).label("backordered_units"),
    ).group_by(sq.c.reason)
    return list(conn.execute(q))


def _units_backordered(conn: Connection, f: Filters) -> int:
    """Units that ever waited, of lines that began waiting in the period: ordered minus taken at once."""
    if aligned(f):
        p = report_placed_rollup
        q = select(func.coalesce(func.sum(p.c.units_backordered), 0)).where(
            p.c.backordered_day.is_not(None), *day_span(f, p.c.backordered_day), *f.on_channel(p.c.channel)
        )
        return int(conn.execute(q).scalar_one())
    at_once = placement_units()
    q = (
        select(func.coalesce(func.sum(ol.c.qty - func.coalesce(at_once.c.qty, 0)), 0))
        .select_from(ol)
        .outerjoin(at_once, joins_placement(at_once))
        .where(ol.c.backordered_at.is_not(None), *f.period(ol.c.backordered_at), *f.on_channel(ol.c.channel))
    )
    return int(conn.execute(q).scalar_one())


def cancellations(conn: Connection, f: Filters) -> dict[str, Any]:
    """Units cancelled in the period by reason class, and as a share of the units that were back-ordered.

    `share_of_backordered_units` divides back-ordered units cancelled in the period by the units
    back-ordered in the period (lines whose wait began then).
    """
    per_class = {c: {"cancellations": 0, "units": 0, "backordered_units": 0} for c in REASON_CLASSES}
    for r in _cancel_rows(conn, f):
        acc = per_class[r.reason if r.reason in per_class else CancelReason.OPERATIONS.value]
        acc["cancellations"] += int(r.cancellations)
        acc["units"] += int(r.units or 0)
        acc["backordered_units"] += int(r.backordered_units or 0)
    waited = _units_backordered(conn, f)
    items = [
        {"reason": c, **v, "share_of_backordered_units": ratio(v["backordered_units"], waited)}
        for c, v in per_class.items()
    ]
    total_back = sum(v["backordered_units"] for v in per_class.values())
    return {
        "items": items,
        "total": {
            "cancellations": sum(v["cancellations"] for v in per_class.values()),
            "units": sum(v["units"] for v in per_class.values()),
            "backordered_units": total_back,
            "units_backordered": waited,
            "share_of_backordered_units": ratio(total_back, waited),
        },
    }
