"""Running a report by name: `run` gives the named report as a read-only query for `Store.read`,
which the API (oms.reports.api), the Reports page's CSV (oms.reports.pages), `oms report`
(oms.reports.cli) and the benchmarks call; `tune` sets the read transaction up for them.

Each report lives in a module of its own (see oms.reports); their names, groupings and default
limit are in oms.reports.names.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from oms.reports.backorders import pending_backorders
from oms.reports.cancellations import cancellations
from oms.reports.filters import Filters
from oms.reports.lead_times import lead_times
from oms.reports.names import BREAKDOWN_LIMIT
from oms.reports.service_levels import fill_rate, promise_accuracy, supplier_on_time
from oms.reports.summary import summary

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
