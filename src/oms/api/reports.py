"""Report routes under /api/v1/reports, GET /metrics, and the request-latency middleware.

Every report answers JSON, or CSV with `?format=csv`, over the same optional filters: `from` and
`to` (a date `YYYY-MM-DD` or an RFC 3339 time; a date `to` takes in its whole day) and `channel`.
Reports read across customers, so channel keys may not read them (403), as with the shortfall.

`GET /metrics` needs no key: it carries aggregate counts only (no order, customer or SKU names),
which is what Prometheus scrapers expect; keep the port private if even those are sensitive.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oms import reports
from oms.domain.access import Action, Principal
from oms.store.db import RETRIES

from .app import AuthError, require, store_of
from .schemas import CODE_PATTERN

RETRY_CAUSES = ("40001", "40P01", "23505", "lost", "locked")  # always shown, at 0 until one happens
router = APIRouter(prefix="/reports", tags=["reports"])
metrics_router = APIRouter(tags=["health"])

Format = Literal["json", "csv"]
MAX_GROUPS = 100_000  # a breakdown's most groups in one answer (the CSV of every customer of a large shop)
Bound = Annotated[str | None, Query(max_length=40, description="YYYY-MM-DD or an RFC 3339 time")]
Channel = Annotated[str | None, Query(max_length=64, pattern=CODE_PATTERN)]  # as orders name channels
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}}
}


def answer(
    request: Request,
    who: Principal,
    name: str,
    f: reports.Filters,
    fmt: str,
    group_by: str | None = None,
    limit: int = reports.BREAKDOWN_LIMIT,
) -> Any:
    if who.channel_scope is not None:
        raise AuthError(403, "Channel keys may not read reports: they span every channel's customers.")
    data = store_of(request).read(reports.run(name, f, datetime.now(UTC), group_by, limit))
    if fmt == "csv":
        columns, rows = reports.as_table(name, data)
        return Response(
            reports.to_csv(columns, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return data


@router.get("/summary", responses=CSV_RESPONSE)
def summary(
    request: Request,
    from_: Annotated[Bound, Query(alias="from")] = None,
    to: Bound = None,
    channel: Channel = None,
    format: Format = "json",
    who: Principal = Depends(require(Action.READ)),
) -> Any:
    """Headline back-order health: pending lines/units/value by age, lead time, wait, cancellations, fill rate."""
    return answer(request, who, "summary", reports.filters_from(from_, to, channel), format)


@router.get("/backorders", responses=CSV_RESPONSE)
def backorders(
    request: Request,
    group_by: Literal["sku", "customer", "channel", "tier"] = "sku",
    from_: Annotated[Bound, Query(alias="from")] = None,
    to: Bound = None,
    channel: Channel = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_GROUPS, description="How many groups, most units waiting first")
    ] = reports.BREAKDOWN_LIMIT,
    format: Format = "json",
    who: Principal = Depends(require(Action.READ)),
) -> Any:
    """Lines waiting now (of orders placed in the period): lines, units, value, oldest age, units by age.

    Groups come most units waiting first; `items` holds the first `limit`, `groups` counts them all
    and `total` sums them all.
    """
    f = reports.filters_from(from_, to, channel)
    return answer(request, who, "backorders", f, format, group_by, limit)


@router.get("/lead-times", responses=CSV_RESPONSE)
def lead_times(
    request: Request,
    from_: Annotated[Bound, Query(alias="from")] = None,
    to: Bound = None,
    channel: Channel = None,
    format: Format = "json",
    who: Principal = Depends(require(Action.READ)),
) -> Any:
    """Hours placed → dispatched (all, waited, never waited), back-ordered → allocated, receipt → allocation."""
    return answer(request, who, "lead-times", reports.filters_from(from_, to, channel), format)


@router.get("/cancellations", responses=CSV_RESPONSE)
def cancellations(
    request: Request,
    from_: Annotated[Bound, Query(alias="from")] = None,
    to: Bound = None,
    channel: Channel = None,
    format: Format = "json",
    who: Principal = Depends(require(Action.READ)),
) -> Any:
    """Units cancelled by reason class (customer, aged_out, operations) and as a share of back-ordered units."""
    return answer(request, who, "cancellations", reports.filters_from(from_, to, channel), format)


@router.get("/fill-rate", responses=CSV_RESPONSE)
def fill_rate(
    request: Request,
    group_by: Literal["sku", "channel", "day", "week"] = "day",
    from_: Annotated[Bound, Query(alias="from")] = None,
    to: Bound = None,
    channel: Channel = None,
    format: Format = "json",
    who: Principal = Depends(require(Action.READ)),
) -> Any:
    """Units allocated at placement / units ordered, by SKU, channel, day or ISO week (Monday)."""
    return answer(request, who, "fill-rate", reports.filters_from(from_, to, channel), format, group_by)


@router.get("/promise-accuracy", responses=CSV_RESPONSE)
def promise_accuracy(
    request: Request,
    group_by: Literal["sku", "channel"] = "sku",
    from_: Annotated[Bound, Query(alias="from")] = None,
    to: Bound = None,
    channel: Channel = None,
    format: Format = "json",
    who: Principal = Depends(require(Action.READ)),
) -> Any:
    """Back-ordered lines dispatched on or before their first promised ETA, and the slip of the late ones."""
    return answer(request, who, "promise-accuracy", reports.filters_from(from_, to, channel), format, group_by)


@router.get("/supplier-on-time", responses=CSV_RESPONSE)
def supplier_on_time(
    request: Request,
    from_: Annotated[Bound, Query(alias="from")] = None,
    to: Bound = None,
    format: Format = "json",
    who: Principal = Depends(require(Action.READ)),
) -> Any:
    """Per supplier: PO lines received in full by their expected date."""
    return answer(request, who, "supplier-on-time", reports.filters_from(from_, to, None), format)


# ---- Prometheus ---------------------------------------------------------------------------------

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LatencyHistogram:
    """Request durations per (method, route template, status class), in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * len(LATENCY_BUCKETS))
        self._sums: dict[tuple[str, str, str], float] = defaultdict(float)
        self._totals: dict[tuple[str, str, str], int] = defaultdict(int)

    def observe(self, key: tuple[str, str, str], seconds: float) -> None:
        with self._lock:
            counts = self._counts[key]
            for i, le in enumerate(LATENCY_BUCKETS):
                if seconds <= le:
                    counts[i] += 1
            self._sums[key] += seconds
            self._totals[key] += 1

    def exposition(self) -> list[str]:
        name = "oms_http_request_duration_seconds"
        out = [
            f"# HELP {name} Time to answer HTTP requests, by method, route template and status class.",
            f"# TYPE {name} histogram",
        ]
        with self._lock:
            for key in sorted(self._totals):
                method, route, status = key
                labels = f'method="{_esc(method)}",route="{_esc(route)}",status="{status}"'
                for le, n in zip(LATENCY_BUCKETS, self._counts[key], strict=True):
                    out.append(f'{name}_bucket{{{labels},le="{le}"}} {n}')
                out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self._totals[key]}')
                out.append(f"{name}_sum{{{labels}}} {self._sums[key]:.6f}")
                out.append(f"{name}_count{{{labels}}} {self._totals[key]}")
        return out


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(figures: dict[str, Any], latency: LatencyHistogram) -> str:
    """The Prometheus text format (version 0.0.4) of the database figures and the latency histogram."""
    out: list[str] = []

    def family(name: str, kind: str, help_: str, samples: list[tuple[str, Any]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{labels} {value}" for labels, value in samples)

    family(
        "oms_backorder_pending_units",
        "gauge",
        "Back-ordered units waiting now, by age bucket (whole days since the order was placed).",
        [(f'{{age_bucket="{k}"}}', v) for k, v in figures["pending_units_by_age"].items()],
    )
    family(
        "oms_backorder_pending_lines",
        "gauge",
        "Order lines with back-ordered units waiting now, by age bucket.",
        [(f'{{age_bucket="{k}"}}', v) for k, v in figures["pending_lines_by_age"].items()],
    )
    n = figures["sku_pending_count"]
    family(
        "oms_sku_backorder_pending_units",
        "histogram",
        "SKUs with waiting units, bucketed by how many units wait for each SKU.",
        [(f'_bucket{{le="{le}"}}', c) for le, c in figures["sku_pending_le"]]
        + [('_bucket{le="+Inf"}', n), ("_sum", figures["sku_pending_sum"]), ("_count", n)],
    )
    sources = ("placement", "receipt", "adjustment", "cancellation")
    alloc = figures["allocations"]
    family(
        "oms_allocations_total",
        "counter",
        "Allocations made, by what released the stock.",
        [(f'{{source="{s}"}}', alloc.get(s, (0, 0))[0]) for s in sorted(set(sources) | set(alloc))],
    )
    family(
        "oms_allocated_units_total",
        "counter",
        "Units allocated, by what released the stock.",
        [(f'{{source="{s}"}}', alloc.get(s, (0, 0))[1]) for s in sorted(set(sources) | set(alloc))],
    )
    family("oms_receipts_total", "counter", "Goods-received notes booked.", [("", figures["receipts"])])
    family(
        "oms_received_units_total", "counter", "Units booked in by goods receipts.", [("", figures["received_units"])]
    )
    backlog = figures["outbox"]
    family(
        "oms_outbox_messages",
        "gauge",
        "Notifications not yet delivered, by kind and status (pending: to be sent; dead: given up).",
        [
            (f'{{kind="{_esc(k)}",status="{s}"}}', backlog.get((k, s), 0))
            for k in sorted({"email", "webhook"} | {k for k, _ in backlog})
            for s in ("pending", "dead")
        ],
    )
    family(
        "oms_outbox_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest notification still waiting to be delivered (0 when none waits).",
        [("", f"{figures['outbox_oldest_pending_seconds']:.3f}")],
    )
    family(
        "oms_event_batches_pending",
        "gauge",
        "Committed transactions whose events the worker has not yet turned into notifications.",
        [("", figures["event_batches"])],
    )
    family(
        "oms_event_batches_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest transaction whose notifications are not yet built (0 when none waits).",
        [("", f"{figures['event_batches_oldest_seconds']:.3f}")],
    )
    family(
        "oms_transaction_retries_total",
        "counter",
        "Write transactions this process ran again after a deadlock, serialization failure, unique-key race, "
        "lost connection or SQLite lock (cause: SQLSTATE, lost or locked).",
        [(f'{{cause="{_esc(c)}"}}', RETRIES.get(c, 0)) for c in sorted(set(RETRY_CAUSES) | set(RETRIES))],
    )
    out.extend(latency.exposition())
    return "\n".join(out) + "\n"


@metrics_router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus text: pending back orders, allocation and receipt counters, request latency."""
    figures = store_of(request).read(lambda c: reports.metric_figures(c, datetime.now(UTC)))
    return Response(exposition(figures, request.app.state.latency), media_type="text/plain; version=0.0.4")


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

    def __init__(self, app: ASGIApp, latency: LatencyHistogram) -> None:
        self.app = app
        self.latency = latency

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
            key = (scope["method"], route_template(scope), f"{status[0] // 100}xx")
            self.latency.observe(key, time.perf_counter() - began)


def install(app: FastAPI) -> None:
    """Add the report routes, GET /metrics and the latency middleware to the app."""
    app.state.latency = LatencyHistogram()
    app.add_middleware(TimeRequests, latency=app.state.latency)
    app.include_router(router, prefix="/api/v1")
    app.include_router(metrics_router)
