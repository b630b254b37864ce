"""Reports: the read side's set-based figures on back-order health, lead times and promises.

Every figure is grouped and summed in the database. Percentiles are `percentile_cont` on
PostgreSQL; SQLite has no percentile aggregate, so there each one is read as at most two rows of an
ordered select of the one column (`ORDER BY x LIMIT 2 OFFSET k`) and interpolated the way
`percentile_cont` does. Nothing loads the lines into Python.

Figures that would otherwise recount every line (waiting lines by age, channel and tier; fill rate;
units that waited) read small rollup tables that database triggers keep exact in every writer's
transaction (migration 0009, oms.reports.rollups); see "rollups" below for when they apply. The
breakdowns by SKU and by customer rank their groups from the waiting-line rollups of migration
0010 (see `_pending_top`). A key's figures are the sum of all its rows, folded or not, and every
query here sums them (or, ranking customers, sums the keys with delta rows: `rollups.ranked`), so
reports never fold: they write nothing and run in read-only transactions, on a replica too.

Periods: `Filters.start` is inclusive and `Filters.end` exclusive, both UTC. Each report says which
time its period bounds (placement, dispatch, allocation, cancellation, promised or expected date).

Cancellations are counted by their recorded code (`CancelReason`: customer, aged_out, operations),
which every cancelled event carries next to its free-text reason. Ages count whole days since the
order was placed, as the Back Orders tab does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    case,
    func,
    select,
)

from oms.reports import names as report_names
from oms.reports.backorders import pending_backorders
from oms.reports.cancellations import cancellations
from oms.reports.filters import Filters
from oms.reports.lead_times import backorder_wait, lead_times, placed_to_dispatched
from oms.reports.service_levels import fill_rate, fill_rate_total, promise_accuracy, supplier_on_time
from oms.reports.waiting import age_cells, by_age_bucket, pending_total
from oms.store.tables import (
    allocations,
    event_batches,
    order_lines,
    outbox,
    products,
    receipts,
    stock_movements,
)

ol = order_lines

# The reports' names, groupings and default limit live in report_names (no SQLAlchemy: the CLI offers them).
REPORTS = report_names.REPORTS
GROUPS_BACKORDERS = report_names.GROUPS_BACKORDERS
GROUPS_FILL_RATE = report_names.GROUPS_FILL_RATE
GROUPS_PROMISE = report_names.GROUPS_PROMISE
GROUP_CHOICES = report_names.GROUP_CHOICES
BREAKDOWN_LIMIT = report_names.BREAKDOWN_LIMIT  # groups a breakdown shows unless asked for more


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


# ---- running a report by name -------------------------------------------------------------------

ReportFn = Callable[[Connection], dict[str, Any]]


def tune(conn: Connection) -> None:
    """Settings for this read transaction only: room to sort and hash in memory, no JIT compile.

    Reports sort a column of every line in the period for its percentiles; PostgreSQL's default
    4 MB spills that to disk, and JIT compilation costs more than it saves at this size.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        conn.exec_driver_sql("SET LOCAL jit = off")


def run(name: str, f: Filters, now: datetime, group_by: str | None = None, limit: int = BREAKDOWN_LIMIT) -> ReportFn:
    """The named report as a read-only query; group_by falls back to each report's default, `limit`
    bounds the groups of the back-order breakdown."""
    today = now.astimezone(UTC).date()
    fn: ReportFn
    match name:
        case "summary":
            fn = lambda c: summary(c, f, now)  # noqa: E731
        case "backorders":
            fn = lambda c: pending_backorders(c, f, now, group_by or "sku", limit)  # noqa: E731
        case "lead-times":
            fn = lambda c: lead_times(c, f)  # noqa: E731
        case "cancellations":
            fn = lambda c: cancellations(c, f)  # noqa: E731
        case "fill-rate":
            fn = lambda c: fill_rate(c, f, group_by or "day")  # noqa: E731
        case "promise-accuracy":
            fn = lambda c: promise_accuracy(c, f, today, group_by or "sku")  # noqa: E731
        case "supplier-on-time":
            fn = lambda c: supplier_on_time(c, f, today)  # noqa: E731
        case _:
            raise ValueError(name)

    def tuned(conn: Connection) -> dict[str, Any]:
        tune(conn)
        return fn(conn)

    return tuned
