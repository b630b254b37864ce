"""The Back Orders tab: the pending queue, filtered and sorted in the URL, bulk cancel and priority, CSV."""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import Connection

from oms import csv_cells
from oms.api import schemas as s
from oms.domain.allocation import Tier
from oms.domain.errors import DomainError
from oms.http import status_of
from oms.orders import use_cases as orders
from oms.orders import views as order_views
from oms.store.uow import UnitOfWork, utcnow
from oms.web.auth import OrderChanger, Reader
from oms.web.render import (
    FormErrors,
    as_list,
    domain_errors,
    flash,
    form_fields,
    read,
    redirect,
    render,
    store_of,
    whole,
    whole_in,
    write,
)

router = APIRouter()
TEXT_FILTERS = ("order_number", "sku", "customer_id", "channel")
LIMITS = (25, 50, 100, 200)
MAX_AGE_DAYS = 36500  # as GET /api/v1/backorders takes min_age_days
CSV_PAGE = 500
CSV_MAX_PAGES = 20_000  # 10 million lines: a bound, far above any real queue
CSV_COLUMNS = [
    "order_number",
    "line_no",
    "sku",
    "customer_id",
    "customer_tier",
    "channel",
    "placed_at",
    "age_days",
    "qty",
    "backordered_qty",
    "queue_position",
    "eta",
    "priority",
]


def parse_filters(params: Mapping[str, str]) -> tuple[dict[str, str], dict[str, Any], FormErrors]:
    """The URL's filters: what to echo back into the form, the listing's arguments, and complaints."""
    echo: dict[str, str] = {}
    kw: dict[str, Any] = {}
    errors = FormErrors()
    for name in TEXT_FILTERS:
        value = str(params.get(name, "")).strip()[:64]
        echo[name] = value
        kw[name] = value or None
    tier = str(params.get("tier", "")).strip()
    echo["tier"] = tier
    kw["tier_rank"] = None
    if tier:
        if tier in Tier.__members__.values():
            kw["tier_rank"] = Tier(tier).rank
        else:
            errors["tier"] = "Choose one of " + ", ".join(Tier)
    age = str(params.get("min_age_days", "")).strip()
    echo["min_age_days"] = age
    kw["min_age_days"] = None
    if age:
        kw["min_age_days"] = whole_in(age, 0, MAX_AGE_DAYS)
        if kw["min_age_days"] is None:
            errors["min_age_days"] = f"A whole number of days, 0 to {MAX_AGE_DAYS}"
    sort = str(params.get("sort", "queue"))
    echo["sort"] = kw["sort"] = sort if sort in ("queue", "age") else "queue"
    limit = whole_in(params.get("limit") or "50", min(LIMITS), max(LIMITS))
    kw["limit"] = limit if limit in LIMITS else 50
    if limit not in LIMITS:
        errors["limit"] = "Choose " + ", ".join(map(str, LIMITS)) + " lines a page"
    echo["limit"] = str(kw["limit"])
    kw["cursor"] = str(params.get("cursor", ""))[:2000] or None
    return echo, kw, errors


def _listing(request: Request, kw: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    try:
        return read(request, lambda c: order_views.list_backorders(c, now=now, **kw))
    except DomainError:  # a stale or edited cursor: start again at the first page
        kw = {**kw, "cursor": None}
        return read(request, lambda c: order_views.list_backorders(c, now=now, **kw))


def _page(
    request: Request,
    params: Mapping[str, str],
    status: int = 200,
    errors: FormErrors | None = None,
    form: dict[str, Any] | None = None,
) -> HTMLResponse:
    echo, kw, filter_errors = parse_filters(params)
    listing = {"items": [], "next_cursor": None} if filter_errors else _listing(request, kw)
    if filter_errors and status < 400:
        status = 422  # the page shows each complaint next to its filter
    all_errors = FormErrors({**filter_errors, **(errors or {})})
    all_errors.summary = (errors.summary if errors is not None else "") or (
        "Some filters need attention." if filter_errors else ""
    )
    return render(
        request,
        "backorders.html",
        status,
        filters=echo,
        listing=listing,
        cursor=kw["cursor"],
        tiers=list(Tier),
        errors=all_errors,
        form=form or {},
        filter_qs={k: v for k, v in echo.items() if v and not (k == "sort" and v == "queue")},
    )


@router.get("/backorders", response_class=HTMLResponse)
def backorders(request: Request, user: Reader) -> HTMLResponse:
    return _page(request, request.query_params)


def _csv_page(args: dict[str, Any], now: datetime) -> Callable[[Connection], dict[str, Any]]:
    return lambda c: order_views.list_backorders(c, now=now, **args)


@router.get("/backorders.csv")
def backorders_csv(request: Request, user: Reader) -> Response:
    """Every row the filters select (all pages, streamed), not just the page on screen."""
    _, kw, errors = parse_filters(request.query_params)
    if errors:
        return _page(request, request.query_params, 422)
    store = store_of(request)
    now = utcnow()

    def rows() -> Iterator[str]:
        buf = io.StringIO()
        out = csv_cells.Writer(buf)
        out.writerow(CSV_COLUMNS)
        cursor = None
        for _ in range(CSV_MAX_PAGES):
            page = store.read(_csv_page({**kw, "limit": CSV_PAGE, "cursor": cursor}, now))
            for item in page["items"]:
                out.writerow([item[k] for k in CSV_COLUMNS])
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            cursor = page["next_cursor"]
            if cursor is None:
                break

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="backorders.csv"'},
    )


def _selected(values: list[str]) -> dict[str, list[int]]:
    """'SO-1|2' checkbox values to line numbers by order."""
    out: dict[str, list[int]] = defaultdict(list)
    for v in values:
        order_number, _, line = v.rpartition("|")
        line_no = whole_in(line, 1, s.MAX_LINES)
        if order_number and line_no is not None:
            out[order_number].append(line_no)
    return out


@router.post("/backorders/action", response_class=HTMLResponse)
def backorders_action(
    request: Request,
    user: OrderChanger,
    form: dict[str, Any] = Depends(form_fields("line")),
) -> Response:
    back = str(form.get("back", ""))
    params = dict(parse_qsl(back))
    picked = as_list(form.get("line"))
    kept = {"line": picked, "reason": form.get("reason", ""), "priority": form.get("priority", "")}
    selected = _selected(picked)
    action = form.get("action")
    errors = FormErrors()
    status = 422
    if not selected:
        errors["line"] = "Select at least one line."
    try:
        if action == "cancel":
            body = s.CancelIn.model_validate({"reason": form.get("reason", "")})
            if not errors:
                n = write(request, user, lambda uow: _cancel_waiting(uow, selected, body.reason))
                flash(request, f"Cancelled {n} waiting units on {sum(map(len, selected.values()))} lines.")
                return redirect("/backorders?" + back)
        elif action == "priority":
            prio = s.PriorityIn.model_validate({"priority": whole(form.get("priority"))})
            if not errors:
                write(request, user, lambda uow: _set_priorities(uow, selected, prio.priority))
                flash(request, f"Priority {prio.priority} set on {len(selected)} orders.")
                return redirect("/backorders?" + back)
        else:
            errors["_"] = "Choose an action."
    except ValidationError as exc:
        for e in exc.errors():
            errors[str(e["loc"][0])] = str(e["msg"])
    except DomainError as exc:
        errors, status = domain_errors(exc), status_of(exc)
    errors.summary = errors.summary or "Nothing was changed: " + "; ".join(errors.values())
    return _page(request, params, status, errors, kept)


def _cancel_waiting(uow: UnitOfWork, selected: dict[str, list[int]], reason: str) -> int:
    """Cancel the units still waiting on each selected line: one transaction for the whole selection."""
    total = 0
    for order_number, line_nos in sorted(selected.items()):
        lines = {line["line_no"]: line for line in order_views.order_view(uow.conn, order_number)["lines"]}
        todo = [(no, lines[no]["backordered_qty"]) for no in sorted(set(line_nos)) if no in lines]
        todo = [(no, q) for no, q in todo if q > 0]
        if todo:
            orders.cancel_order(uow, order_number, reason, todo)
            total += sum(q for _, q in todo)
    return total


def _set_priorities(uow: UnitOfWork, selected: dict[str, list[int]], priority: int) -> None:
    for order_number in sorted(selected):
        orders.set_priority(uow, order_number, priority)
