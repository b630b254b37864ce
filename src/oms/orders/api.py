"""Routes under /api/v1 for orders and the back-order queue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from oms.api import models as m
from oms.api import schemas as s
from oms.api.app import AuthError, require
from oms.api.routing import (
    Cursor,
    Filter,
    Limit,
    answered,
    created_or_found,
    now,
    read,
    read_within_channel,
    shaped,
    write,
)
from oms.domain.access import Action, Principal
from oms.orders import use_cases as orders
from oms.orders import views as order_views

router = APIRouter()


@router.post(
    "/orders",
    status_code=201,
    tags=["orders"],
    response_model=None,
    responses=m.answers(m.Order, 201, "The same order again (same number and body): the stored order, unchanged."),
)
async def place_order(
    body: s.OrderIn, request: Request, who: Principal = Depends(require(Action.PLACE_ORDER))
) -> Response:
    """Place an order: units in stock are allocated at once, the rest wait in the back-order queue as
    the SKU's policy allows (a line it refuses: 409, nothing stored)."""
    # The hottest route: one hop to a worker thread, and the answer serialized there (see `answered`).
    if who.channel_scope is not None and body.channel != who.channel_scope:
        raise AuthError(403, f"This key places orders for channel '{who.channel_scope}' only.")
    queue_fields = body.queue_fields_sent()
    if queue_fields and not who.may_move_queue:
        raise AuthError(
            403,
            f"This key may not set {', '.join(queue_fields)}: they set the order's place in the back-order queue. "
            "Leave them out; the order waits with priority 0, placed now, at the catalogue prices.",
            [{"field": f, "reason": "not settable by this key's role"} for f in queue_fields],
        )
    cmd = orders.PlaceOrder(
        order_number=body.order_number,
        channel=body.channel,
        customer_id=body.customer_id,
        lines=[orders.NewLine(line.sku, line.qty, line.unit_price) for line in body.lines],
        ship_policy=body.ship_policy,
        placed_at=body.placed_at,
        priority=body.priority,
        body=body.model_dump(mode="json", exclude_unset=True),
    )
    skus = sorted({line.sku for line in body.lines})  # this process's orders for a SKU queue for it in arrival order
    use_case = shaped(lambda uow: orders.place_order(uow, cmd), _placed)
    return await run_in_threadpool(answered, lambda: write(request, who, use_case, created_or_found, skus))


def _placed(p: orders.PlacedOrder) -> tuple[dict[str, Any], bool]:
    return order_views.order_json(p.order), p.created


@router.get("/orders", tags=["orders"], responses=m.answers(m.OrderPage))
def list_orders(
    request: Request,
    status: Filter = None,
    channel: Filter = None,
    customer_id: Filter = None,
    sku: Filter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    who: Principal = Depends(require(Action.READ)),
) -> dict[str, Any]:
    return read_within_channel(
        request,
        who,
        channel,
        lambda c, ch: order_views.list_orders(
            c, status=status, channel=ch, customer_id=customer_id, sku=sku, limit=limit, cursor=cursor
        ),
    )


@router.get("/orders/{order_number}", tags=["orders"], responses=m.answers(m.Order))
def get_order(order_number: s.Code, request: Request, who: Principal = Depends(require(Action.READ))) -> dict[str, Any]:
    return read(request, lambda c: order_views.order_view(c, order_number, who.channel_scope))


@router.post("/orders/{order_number}/cancel", tags=["orders"], responses=m.answers(m.Order))
def cancel_order(
    order_number: s.Code, body: s.CancelIn, request: Request, who: Principal = Depends(require(Action.CHANGE_ORDER))
) -> dict[str, Any]:
    lines = [(line.line_no, line.qty) for line in body.lines] if body.lines is not None else None
    return write(
        request,
        who,
        shaped(
            lambda uow: orders.cancel_order(uow, order_number, body.reason, lines, who.channel_scope, body.reason_code),
            order_views.order_json,
        ),
    )


@router.post("/orders/{order_number}/priority", tags=["orders"], responses=m.answers(m.Order))
def set_order_priority(
    order_number: s.Code, body: s.PriorityIn, request: Request, who: Principal = Depends(require(Action.CHANGE_ORDER))
) -> dict[str, Any]:
    if not who.may_move_queue:
        raise AuthError(
            403,
            "Channel keys may not change priorities.",
            [{"field": "priority", "reason": "not settable by this key's role"}],
        )
    return write(
        request, who, shaped(lambda uow: orders.set_priority(uow, order_number, body.priority), order_views.order_json)
    )


@router.get("/orders/{order_number}/events", tags=["orders"], responses=m.answers(m.OrderEventList))
def list_order_events(
    order_number: s.Code, request: Request, who: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    return read(request, lambda c: order_views.order_events(c, order_number, who.channel_scope))


# ---- the back-order queue -----------------------------------------------------------------------


@router.get("/backorders", tags=["back orders"], responses=m.answers(m.BackorderLinePage))
def list_backorders(
    request: Request,
    sku: Filter = None,
    customer_id: Filter = None,
    order_number: Filter = None,
    channel: Filter = None,
    min_age_days: Annotated[int | None, Query(ge=0, le=36500)] = None,
    sort: s.SortName = "queue",
    limit: Limit = 50,
    cursor: Cursor = None,
    who: Principal = Depends(require(Action.READ)),
) -> dict[str, Any]:
    return read_within_channel(
        request,
        who,
        channel,
        lambda c, ch: order_views.list_backorders(
            c,
            sku=sku,
            customer_id=customer_id,
            order_number=order_number,
            channel=ch,
            min_age_days=min_age_days,
            sort=sort,
            limit=limit,
            cursor=cursor,
            now=now(),
        ),
    )
