"""Orders: find one, and the order page with its lines, why each waits, its timeline and actions."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import Connection

from oms.api import schemas as s
from oms.domain.errors import DomainError
from oms.fulfillment import views as shipment_views
from oms.http import status_of
from oms.orders import use_cases as orders
from oms.orders import views as order_views
from oms.orders.explain import explain
from oms.store.reads import stock_by_sku
from oms.web.auth import OrderChanger, Reader
from oms.web.render import (
    FormErrors,
    PostedForm,
    domain_errors,
    flash,
    read,
    redirect,
    render,
    validation_errors,
    whole,
    write,
)

router = APIRouter()
STATUSES = ("backordered", "in_fulfillment", "dispatched", "cancelled")


@router.get("/orders", response_class=HTMLResponse)
def order_list(request: Request, user: Reader) -> Response:
    q = request.query_params
    number = q.get("order_number", "").strip()
    if number:
        return redirect("/orders/" + quote(number, safe=""))
    filters = {k: q.get(k, "").strip()[:64] for k in ("status", "customer_id", "sku", "channel")}
    if filters["status"] not in STATUSES:
        filters["status"] = ""
    cursor = q.get("cursor") or None
    try:
        listing = read(
            request,
            lambda c: order_views.list_orders(c, **{k: v or None for k, v in filters.items()}, limit=50, cursor=cursor),
        )
    except DomainError:
        listing = read(
            request,
            lambda c: order_views.list_orders(c, **{k: v or None for k, v in filters.items()}, limit=50, cursor=None),
        )
    return render(request, "orders.html", filters=filters, listing=listing, statuses=STATUSES, cursor=cursor)


def order_detail(conn: Connection, order_number: str) -> dict[str, Any]:
    """The order, why each waiting line waits, its shipments and its timeline."""
    order = order_views.order_view(conn, order_number)
    skus = [line["sku"] for line in order["lines"] if line["backordered_qty"] > 0]
    stock = stock_by_sku(conn, skus)
    for line in order["lines"]:
        waiting = line["backordered_qty"] > 0
        # the same explanation as GET /api/v1/orders/{n}/lines/{line}/explain
        line["why"] = explain(conn, order_number, line["line_no"]) if waiting else None
        line["stock"] = stock.get(line["sku"])
    return {
        "order": order,
        "events": order_views.order_events(conn, order_number)["items"],
        "shipments": shipment_views.list_shipments(
            conn, status=None, channel=None, order_number=order_number, limit=100, cursor=None
        )["items"],
    }


def _page(
    request: Request, order_number: str, status: int = 200, errors: FormErrors | None = None, form: Any = None
) -> HTMLResponse:
    detail = read(request, lambda c: order_detail(c, order_number))
    return render(request, "order.html", status, errors=errors or FormErrors(), form=form or {}, **detail)


@router.get("/orders/{order_number:path}", response_class=HTMLResponse)
def order_page(order_number: str, request: Request, user: Reader) -> Response:
    return _page(request, order_number)


@router.post("/order-actions/cancel", response_class=HTMLResponse)
def cancel(
    request: Request,
    form: PostedForm,
    user: OrderChanger,
) -> Response:
    order_number = str(form.get("order_number", ""))
    lines = []
    errors = FormErrors()
    for key, value in form.items():
        line_no = whole(key.removeprefix("qty_")) if key.startswith("qty_") else None
        if isinstance(line_no, int) and str(value).strip():
            qty = whole(value)
            if not isinstance(qty, int) or qty < 0:
                errors[f"line:{line_no}"] = "A whole number of units"
            elif qty > 0:
                lines.append({"line_no": line_no, "qty": qty})  # CancelIn bounds both
    if not lines and not errors:
        errors["lines"] = "Enter the units to cancel on at least one line."
    try:
        body = s.CancelIn.model_validate({"reason": form.get("reason", ""), "lines": lines or None})
        if not errors:
            pairs = [(line.line_no, line.qty) for line in body.lines or []]
            write(request, user, lambda uow: orders.cancel_order(uow, order_number, body.reason, pairs))
            flash(request, f"Cancelled {sum(q for _, q in pairs)} units of {order_number}.")
            return redirect("/orders/" + quote(order_number, safe=""))
        status = 422
    except ValidationError as exc:
        errors.update(validation_errors(exc))
        status = 422
    except DomainError as exc:
        errors, status = domain_errors(exc), status_of(exc)
    errors.summary = errors.summary or "Nothing was cancelled: " + "; ".join(errors.values())
    return _page(request, order_number, status, errors, form)


@router.post("/order-actions/priority", response_class=HTMLResponse)
def priority(
    request: Request,
    form: PostedForm,
    user: OrderChanger,
) -> Response:
    order_number = str(form.get("order_number", ""))
    try:
        body = s.PriorityIn.model_validate({"priority": whole(form.get("priority"))})
        write(request, user, lambda uow: orders.set_priority(uow, order_number, body.priority))
    except ValidationError as exc:
        errors = validation_errors(exc)
        return _page(request, order_number, 422, errors, form)
    except DomainError as exc:
        return _page(request, order_number, status_of(exc), domain_errors(exc), form)
    flash(request, f"Priority of {order_number} is now {body.priority}.")
    return redirect("/orders/" + quote(order_number, safe=""))
