"""Report routes under /api/v1/reports (GET /metrics and request latency: oms.reports.metrics).

Every report answers JSON, or CSV with `?format=csv`, over the same optional filters: `from` and
`to` (a date `YYYY-MM-DD` or an RFC 3339 time; a date `to` takes in its whole day) and `channel`.
Reports read across customers, so channel keys may not read them (403), as with the shortfall.

`GET /metrics` needs no key: it carries aggregate counts only (no order, customer or SKU names),
which is what Prometheus scrapers expect; keep the port private if even those are sensitive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel

from oms.api import models as m
from oms.api.app import AuthError, require, store_of
from oms.api.schemas import CODE_PATTERN
from oms.domain.access import Action, Principal
from oms.reports import metrics
from oms.reports.filters import Filters, filters_from
from oms.reports.names import BREAKDOWN_LIMIT
from oms.reports.queries import run
from oms.reports.tables import as_table, to_csv

router = APIRouter(prefix="/reports", tags=["reports"])

Format = Literal["json", "csv"]
MAX_GROUPS = 100_000  # a breakdown's most groups in one answer (the CSV of every customer of a large shop)
Bound = Annotated[str | None, Query(max_length=40, description="YYYY-MM-DD or an RFC 3339 time")]
Channel = Annotated[str | None, Query(max_length=64, pattern=CODE_PATTERN)]  # as orders name channels


def json_or_csv(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The report as `model` (JSON), or as CSV with `?format=csv`."""
    out = m.answers(model)
    out[200]["content"] = {"text/csv": {"schema": {"type": "string"}}}
    return out


@dataclass(frozen=True)
class Asked:
    """What every report is asked: by whom, for which period (and channel), as JSON or CSV."""

    who: Principal
    filters: Filters
    format: str


def _asked(
    from_: Annotated[Bound, Query(alias="from")] = None,
    to: Bound = None,
    channel: Channel = None,
    format: Format = "json",
    who: Principal = Depends(require(Action.READ)),
) -> Asked:
    return Asked(who, filters_from(from_, to, channel), format)


def _asked_for_every_channel(
    from_: Annotated[Bound, Query(alias="from")] = None,
    to: Bound = None,
    format: Format = "json",
    who: Principal = Depends(require(Action.READ)),
) -> Asked:
    return Asked(who, filters_from(from_, to, None), format)


Report = Annotated[Asked, Depends(_asked)]
EveryChannelReport = Annotated[Asked, Depends(_asked_for_every_channel)]


def answer(request: Request, asked: Asked, name: str, group_by: str | None = None, limit: int = BREAKDOWN_LIMIT) -> Any:
    if asked.who.channel_scope is not None:
        raise AuthError(403, "Channel keys may not read reports: they span every channel's customers.")
    data = store_of(request).read(run(name, asked.filters, datetime.now(UTC), group_by, limit))
    if asked.format == "csv":
        columns, rows = as_table(name, data)
        return Response(
            to_csv(columns, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return data


@router.get("/summary", responses=json_or_csv(m.SummaryReport))
def summary_report(request: Request, asked: Report) -> Any:
    """Headline back-order health: pending lines/units/value by age, lead time, wait, cancellations, fill rate."""
    return answer(request, asked, "summary")


@router.get("/backorders", responses=json_or_csv(m.BackorderReport))
def backorders_report(
    request: Request,
    asked: Report,
    group_by: Literal["sku", "customer", "channel", "tier"] = "sku",
    limit: Annotated[
        int, Query(ge=1, le=MAX_GROUPS, description="How many groups, most units waiting first")
    ] = BREAKDOWN_LIMIT,
) -> Any:
    """Lines waiting now (of orders placed in the period): lines, units, value, oldest age, units by age.

    Groups come most units waiting first; `items` holds the first `limit`, `groups` counts them all
    and `total` sums them all.
    """
    return answer(request, asked, "backorders", group_by, limit)


@router.get("/lead-times", responses=json_or_csv(m.LeadTimesReport))
def lead_times_report(request: Request, asked: Report) -> Any:
    """Hours placed → dispatched (all, waited, never waited), back-ordered → allocated, receipt → allocation."""
    return answer(request, asked, "lead-times")


@router.get("/cancellations", responses=json_or_csv(m.CancellationsReport))
def cancellations_report(request: Request, asked: Report) -> Any:
    """Units cancelled by reason class (customer, aged_out, operations) and as a share of back-ordered units."""
    return answer(request, asked, "cancellations")


@router.get("/fill-rate", responses=json_or_csv(m.FillRateReport))
def fill_rate_report(
    request: Request, asked: Report, group_by: Literal["sku", "channel", "day", "week"] = "day"
) -> Any:
    """Units allocated at placement / units ordered, by SKU, channel, day or ISO week (Monday)."""
    return answer(request, asked, "fill-rate", group_by)


@router.get("/promise-accuracy", responses=json_or_csv(m.PromiseAccuracyReport))
def promise_accuracy_report(request: Request, asked: Report, group_by: Literal["sku", "channel"] = "sku") -> Any:
    """Back-ordered lines dispatched on or before their first promised ETA, and the slip of the late ones."""
    return answer(request, asked, "promise-accuracy", group_by)


@router.get("/supplier-on-time", responses=json_or_csv(m.SupplierOnTimeReport))
def supplier_on_time_report(request: Request, asked: EveryChannelReport) -> Any:
    """Per supplier: PO lines received in full by their expected date."""
    return answer(request, asked, "supplier-on-time")


def install(app: FastAPI) -> None:
    """Add the report routes, GET /metrics and the latency middleware to the app."""
    app.state.metrics = metrics.Metrics(store_of_app(app))
    app.add_middleware(metrics.TimeRequests, metrics=app.state.metrics)
    app.include_router(router, prefix="/api/v1")
    app.include_router(metrics.router)


def store_of_app(app: FastAPI) -> Any:
    return app.state.store
