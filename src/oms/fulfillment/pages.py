"""The fulfillment board: shipments in Pick, Pack, Awaiting shipment and Dispatched; advance one or many."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import Connection

from oms.api import schemas as s
from oms.domain import bounds
from oms.domain.errors import DomainError
from oms.fulfillment import use_cases as fulfillment
from oms.fulfillment import views as shipment_views
from oms.http import status_of
from oms.store.uow import UnitOfWork
from oms.web.auth import Fulfiller
from oms.web.queries import SHIPMENT_COLUMNS
from oms.web.render import (
    FormErrors,
    as_list,
    domain_errors,
    flash,
    form_fields,
    read,
    redirect,
    render,
    whole_in,
    write,
)

router = APIRouter()
COLUMN_SIZE = 40


def _column(
    state: str, channel: str | None, order_number: str | None, cursor: str | None
) -> Callable[[Connection], dict[str, Any]]:
    def listing(c: Connection) -> dict[str, Any]:
        return shipment_views.list_shipments(
            c, status=state, channel=channel, order_number=order_number, limit=COLUMN_SIZE, cursor=cursor
        )

    return listing


def _board(request: Request, errors: FormErrors | None = None, form: Any = None, status: int = 200) -> HTMLResponse:
    q = request.query_params
    channel = q.get("channel", "").strip()[:64] or None
    order_number = q.get("order_number", "").strip()[:64] or None
    columns = []
    for state, label in SHIPMENT_COLUMNS:
        cursor = q.get(f"{state}_cursor") or None

        try:
            page = read(request, _column(state, channel, order_number, cursor))
        except DomainError:  # a stale or edited cursor: that column starts again
            page = read(request, _column(state, channel, order_number, None))
        columns.append({"status": state, "label": label, "items": page["items"], "next_cursor": page["next_cursor"]})
    return render(
        request,
        "fulfillment.html",
        status,
        columns=columns,
        filters={"channel": channel or "", "order_number": order_number or ""},
        errors=errors or FormErrors(),
        form=form or {},
    )


@router.get("/fulfillment", response_class=HTMLResponse)
def board(request: Request, user: Fulfiller) -> HTMLResponse:
    return _board(request)


def _advance_all(uow: UnitOfWork, ids: list[int], carrier: str | None, tracking: str | None) -> list[dict[str, Any]]:
    """Every chosen shipment one step, in one transaction: all move or none does."""
    return [{"status": fulfillment.advance_shipment(uow, i, carrier, tracking).status} for i in ids]


@router.post("/fulfillment/advance", response_class=HTMLResponse)
def advance(
    request: Request,
    user: Fulfiller,
    form: dict[str, Any] = Depends(form_fields("id")),
) -> Response:
    one = str(form.get("one", ""))
    picked = [one] if one else as_list(form.get("id"))
    ids = sorted({n for n in (whole_in(v, 1, bounds.MAX_INTEGER) for v in picked) if n is not None})
    column = str(form.get("column", ""))
    errors = FormErrors()
    status = 422
    if not ids:
        errors[f"{column}:id"] = "Select at least one shipment."
    try:
        body = s.AdvanceIn.model_validate(
            {
                "carrier": str(form.get("carrier", "")).strip() or None,
                "tracking_number": str(form.get("tracking_number", "")).strip() or None,
            }
        )
        if not errors:
            moved = write(request, user, lambda uow: _advance_all(uow, ids, body.carrier, body.tracking_number))
            states = sorted({m["status"].replace("_", " ") for m in moved})
            flash(request, f"{len(moved)} shipment(s) moved to {', '.join(states)}: " + ", ".join(f"#{i}" for i in ids))
            return redirect("/fulfillment" + (f"?{request.url.query}" if request.url.query else ""))
    except ValidationError as exc:
        for e in exc.errors():
            errors[f"{column}:{e['loc'][0]}"] = str(e["msg"])
    except DomainError as exc:
        found = domain_errors(exc)
        errors = FormErrors({f"{column}:{k}": v for k, v in found.items()})
        errors.summary, status = found.summary, status_of(exc)
    errors.summary = errors.summary or "Nothing moved: " + "; ".join(errors.values())
    return _board(request, errors, {**form, "id": [str(i) for i in ids]}, status)
