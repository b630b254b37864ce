"""The Reports page: back-order health, lead times, cancellations, fill rate and promises, with charts and CSV.

The figures come from the report modules of oms.reports, the same functions behind /api/v1/reports and
`oms report`, over the same filters (from, to, channel), so the page, the API and the CLI always agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from oms.access.users import User
from oms.domain.errors import Invalid
from oms.reports.backorders import pending_backorders
from oms.reports.cancellations import cancellations
from oms.reports.filters import Filters, filters_from
from oms.reports.lead_times import lead_times
from oms.reports.measures import AGE_BUCKETS
from oms.reports.names import GROUPS_BACKORDERS, REPORTS
from oms.reports.queries import run, tune
from oms.reports.service_levels import fill_rate, promise_accuracy, supplier_on_time
from oms.reports.summary import summary
from oms.reports.tables import as_table, to_csv
from oms.store.reads import utcnow
from oms.web.auth import Reader
from oms.web.errors import WebError
from oms.web.render import FormErrors, read, render

router = APIRouter()
PERIODS = (("day", "Day"), ("week", "Week"))
GROUPS = (("sku", "SKU"), ("customer", "Customer"), ("channel", "Channel"), ("tier", "Customer tier"))


def _filters(params: Mapping[str, str]) -> tuple[dict[str, str], Filters | None, FormErrors]:
    """The URL's filters: what to echo into the form, the report filters (None when invalid), complaints."""
    echo = {name: str(params.get(name, "")).strip()[:40] for name in ("from", "to", "channel")}
    group = str(params.get("group_by", "sku"))
    echo["group_by"] = group if group in GROUPS_BACKORDERS else "sku"
    period = str(params.get("period", "day"))
    echo["period"] = period if period in ("day", "week") else "day"
    errors = FormErrors()
    try:
        return echo, filters_from(echo["from"], echo["to"], echo["channel"]), errors
    except Invalid as exc:
        for item in exc.errors:
            errors[str(item["field"])] = "A date (YYYY-MM-DD), after the start" if item["field"] == "to" else "A date"
        errors.summary = exc.detail
        return echo, None, errors


def _no_channel_users(user: User) -> None:
    if user.principal.channel_scope is not None:
        raise WebError(403, "Not allowed", "Reports span every channel's customers; channel accounts cannot read them.")


def _figures(f: Filters, group_by: str, period: str) -> Any:
    now = utcnow()
    today = now.date()

    def query(c: Connection) -> dict[str, Any]:
        tune(c)
        return {
            "summary": summary(c, f, now),
            "backorders": pending_backorders(c, f, now, group_by),
            "lead_times": lead_times(c, f),
            "cancellations": cancellations(c, f),
            "fill_rate": fill_rate(c, f, period),
            "promise": promise_accuracy(c, f, today, "sku"),
            "suppliers": supplier_on_time(c, f, today),
        }

    return query


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, user: Reader) -> HTMLResponse:
    _no_channel_users(user)
    echo, f, errors = _filters(request.query_params)
    data = read(request, _figures(f, echo["group_by"], echo["period"])) if f is not None else None
    return render(
        request,
        "reports.html",
        200 if f is not None else 422,
        data=data,
        filters=echo,
        errors=errors,
        groups=GROUPS,
        periods=PERIODS,
        filter_qs={k: v for k, v in echo.items() if v and k in ("from", "to", "channel")},
        age_buckets=[label for label, _ in AGE_BUCKETS],
    )


@router.get("/reports/{name}.csv")
def report_csv(name: str, request: Request, user: Reader) -> Response:
    """One report as CSV over the page's filters: the same rows as the API's ?format=csv."""
    _no_channel_users(user)
    if name not in REPORTS:
        raise WebError(404, "Not found", f"No report '{name}'. Reports: {', '.join(REPORTS)}.")
    echo, f, errors = _filters(request.query_params)
    if f is None:
        raise WebError(422, "Invalid filters", errors.summary)
    group_by = {"backorders": echo["group_by"], "fill-rate": echo["period"]}.get(name)
    data = read(request, run(name, f, utcnow(), group_by))
    columns, rows = as_table(name, data)
    return Response(
        to_csv(columns, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
