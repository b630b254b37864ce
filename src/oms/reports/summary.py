"""The headline figures: the summary report (GET /reports/summary, the top of the Reports page), and
the database's gauges and counters behind GET /metrics (read by oms.reports.metrics at each scrape).

Both are built from the other reports' parts: the waiting lines by age (oms.reports.waiting), lead
times, cancellations and the fill rate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, select

from oms.reports.cancellations import cancellations
from oms.reports.filters import Filters
from oms.reports.lead_times import backorder_wait, placed_to_dispatched
from oms.reports.service_levels import fill_rate_total
from oms.reports.waiting import age_cells, by_age_bucket, pending_total
from oms.store.tables import allocations, event_batches, outbox, products, receipts, stock_movements

# ---- the summary (API.md) -----------------------------------------------------------------------


def summary(conn: Connection, f: Filters, now: datetime) -> dict[str, Any]:
    """The headline figures of GET /reports/summary.

    Pending figures are the lines waiting now, of orders placed in the period; lead time and
    back-order wait as in `lead_times`; cancellations by the cancel's time; fill rate over orders
    placed in the period.
    """
    cells = age_cells(conn, f, now)
    pending = pending_total(conn, f, now, cells)
    lead = placed_to_dispatched(conn, f)["all"]
    wait = backorder_wait(conn, f)
    cancelled = {row["reason"]: row["units"] for row in cancellations(conn, f)["items"]}
    fill = fill_rate_total(conn, f)
    return {
        "pending_backorder_lines": pending["lines"],
        "pending_backorder_units": pending["units"],
        "pending_backorder_value": pending["value"],
        "by_age_bucket": by_age_bucket(cells),
        "lead_time_hours": {"p50": lead["p50"], "p90": lead["p90"]},
        "backorder_wait_hours": {"p50": wait["p50"], "p90": wait["p90"]},
        "cancelled_units_by_reason": cancelled,
        "fill_rate_at_placement": fill,
    }


# ---- metrics (GET /metrics) ---------------------------------------------------------------------

SKU_PENDING_BUCKETS = (1, 5, 10, 50, 100, 500, 1000)


def metric_figures(conn: Connection, now: datetime) -> dict[str, Any]:
    """The database's gauges and counters for Prometheus: a handful of grouped selects."""
    by_age = by_age_bucket(age_cells(conn, Filters(), now))
    sku_units = [
        int(n)
        for n in conn.execute(
            select(
                *(
                    func.coalesce(func.sum(case((products.c.backordered <= b, 1), else_=0)), 0)
                    for b in SKU_PENDING_BUCKETS
                ),
                func.count(),
                func.coalesce(func.sum(products.c.backordered), 0),
            ).where(products.c.backordered > 0)
        ).one()
    ]
    alloc = {
        src: (int(n), int(units or 0))
        for src, n, units in conn.execute(
            select(allocations.c.source, func.count(), func.sum(allocations.c.qty)).group_by(allocations.c.source)
        )
    }
    n_receipts = int(conn.execute(select(func.count()).select_from(receipts)).scalar_one())
    received = int(
        conn.execute(
            select(func.coalesce(func.sum(stock_movements.c.qty_delta), 0)).where(stock_movements.c.kind == "receipt")
        ).scalar_one()
    )
    backlog = {
        (kind, status): (int(n), oldest)
        for kind, status, n, oldest in conn.execute(
            select(outbox.c.kind, outbox.c.status, func.count(), func.min(outbox.c.created_at))
            .where(outbox.c.status.in_(("pending", "dead")))
            .group_by(outbox.c.kind, outbox.c.status)
        )
    }
    oldest = [t for (_, status), (_, t) in backlog.items() if status == "pending" and t is not None]
    batches, first_batch = conn.execute(select(func.count(), func.min(event_batches.c.at))).one()
    return {
        "event_batches": int(batches),
        "event_batches_oldest_seconds": max(0.0, (now - first_batch).total_seconds()) if first_batch else 0.0,
        "outbox": {key: n for key, (n, _) in backlog.items()},
        "outbox_oldest_pending_seconds": max(0.0, (now - min(oldest)).total_seconds()) if oldest else 0.0,
        "pending_units_by_age": {k: v["units"] for k, v in by_age.items()},
        "pending_lines_by_age": {k: v["lines"] for k, v in by_age.items()},
        "sku_pending_le": list(zip(SKU_PENDING_BUCKETS, sku_units[: len(SKU_PENDING_BUCKETS)], strict=True)),
        "sku_pending_count": sku_units[-2],
        "sku_pending_sum": sku_units[-1],
        "allocations": alloc,
        "receipts": n_receipts,
        "received_units": received,
    }
