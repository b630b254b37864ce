"""GET /metrics (Prometheus, through prometheus-client) and the request-latency middleware.

`/metrics` needs no key: it carries aggregate counts only (no order, customer or SKU names). The
database's figures are read at each scrape by a collector (one read-only transaction,
`oms.reports.summary.metric_figures`); request durations and transaction retries are this process's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import prometheus_client
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oms.reports.summary import metric_figures
from oms.store.db import RETRIES, Store

prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # nothing here is ever reset

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Transaction retries by cause: always shown, at 0 until one happens (SQLSTATE, or lost / locked).
RETRY_CAUSES = ("40001", "40P01", "23505", "lost", "locked")
ALLOCATION_SOURCES = ("placement", "receipt", "adjustment", "cancellation")

router = APIRouter(tags=["health"])


class StoreFigures(Collector):
    """The database's gauges and counters, read when Prometheus scrapes."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        f: dict[str, Any] = self.store.read(lambda c: metric_figures(c, datetime.now(UTC)))
        units = GaugeMetricFamily(
            "oms_backorder_pending_units",
            "Back-ordered units waiting now, by age bucket (whole days since the order was placed).",
            labels=["age_bucket"],
        )
        lines = GaugeMetricFamily(
            "oms_backorder_pending_lines",
            "Order lines with back-ordered units waiting now, by age bucket.",
            labels=["age_bucket"],
        )
        for bucket, n in f["pending_units_by_age"].items():
            units.add_metric([bucket], n)
        for bucket, n in f["pending_lines_by_age"].items():
            lines.add_metric([bucket], n)
        yield units
        yield lines
        yield HistogramMetricFamily(
            "oms_sku_backorder_pending_units",
            "SKUs with waiting units, bucketed by how many units wait for each SKU.",
            buckets=[(str(le), n) for le, n in f["sku_pending_le"]] + [("+Inf", f["sku_pending_count"])],
            sum_value=f["sku_pending_sum"],
        )
        alloc = f["allocations"]
        made = CounterMetricFamily(
            "oms_allocations", "Allocations made, by what released the stock.", labels=["source"]
        )
        allocated = CounterMetricFamily(
            "oms_allocated_units", "Units allocated, by what released the stock.", labels=["source"]
        )
        for source in sorted(set(ALLOCATION_SOURCES) | set(alloc)):
            count, n_units = alloc.get(source, (0, 0))
            made.add_metric([source], count)
            allocated.add_metric([source], n_units)
        yield made
        yield allocated
        yield CounterMetricFamily("oms_receipts", "Goods-received notes booked.", value=f["receipts"])
        yield CounterMetricFamily("oms_received_units", "Units booked in by goods receipts.", value=f["received_units"])
        backlog = GaugeMetricFamily(
            "oms_outbox_messages",
            "Notifications not yet delivered, by kind and status (pending: to be sent; dead: given up).",
            labels=["kind", "status"],
        )
        for kind in sorted({"email", "webhook"} | {k for k, _ in f["outbox"]}):
            for status in ("pending", "dead"):
                backlog.add_metric([kind, status], f["outbox"].get((kind, status), 0))
        yield backlog
        yield GaugeMetricFamily(
            "oms_outbox_oldest_pending_age_seconds",
            "Age of the oldest notification still waiting to be delivered (0 when none waits).",
            value=f["outbox_oldest_pending_seconds"],
        )
        yield GaugeMetricFamily(
            "oms_event_batches_pending",
            "Committed transactions whose events the worker has not yet turned into notifications.",
            value=f["event_batches"],
        )
        yield GaugeMetricFamily(
            "oms_event_batches_oldest_pending_age_seconds",
            "Age of the oldest transaction whose notifications are not yet built (0 when none waits).",
            value=f["event_batches_oldest_seconds"],
        )
        retries = CounterMetricFamily(
            "oms_transaction_retries",
            "Write transactions this process ran again after a deadlock, serialization failure, unique-key race, "
            "lost connection or SQLite lock (cause: SQLSTATE, lost or locked).",
            labels=["cause"],
        )
        for cause in sorted(set(RETRY_CAUSES) | set(RETRIES)):
            retries.add_metric([cause], RETRIES.get(cause, 0))
        yield retries


class Metrics:
    """This app's registry: the store's figures and the request-duration histogram."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StoreFigures(store))
        self.latency = Histogram(
            "oms_http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route template and status class.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus text: pending back orders, allocation and receipt counters, request latency."""
    found: Metrics = request.app.state.metrics
    return Response(found.exposition(), media_type=CONTENT_TYPE_LATEST)


def route_template(scope: Scope) -> str:
    """The matched route's path template with its router prefix ('/api/v1/orders/{order_number}').

    The router records the matched route in the scope; FastAPI keeps an included router's routes
    without its prefix, so the prefix is taken from the real path's leading segments. Unmatched
    paths share one label, so scanners cannot grow the label set.
    """
    fmt = getattr(scope.get("route"), "path", None)
    if not isinstance(fmt, str) or not fmt:
        return "unmatched"
    if ":path}" in fmt:
        return fmt
    actual = scope["path"].rstrip("/").split("/")
    mine = fmt.rstrip("/").split("/")
    return "/".join(actual[: max(1, len(actual) - len(mine) + 1)]) + fmt


class TimeRequests:
    """ASGI middleware: observe each HTTP request's duration under its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.latency = metrics.latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            labels = (scope["method"], route_template(scope), f"{status[0] // 100}xx")
            self.latency.labels(*labels).observe(time.perf_counter() - began)
