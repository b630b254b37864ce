"""Routes under /api/v1 for shipments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from oms.api import models as m
from oms.api import schemas as s
from oms.api.app import require
from oms.api.routing import (
    Cursor,
    Filter,
    Limit,
    as_shipment_id,
    read,
    read_within_channel,
    shaped,
    write,
)
from oms.domain.access import Action, Principal
from oms.fulfillment import use_cases as fulfillment
from oms.fulfillment import views as shipment_views

router = APIRouter()


@router.get("/shipments", tags=["fulfillment"], responses=m.answers(m.ShipmentPage))
def list_shipments(
    request: Request,
    status: Annotated[str | None, Query(pattern="^(pick|pack|awaiting_shipment|dispatched|cancelled)$")] = None,
    channel: Filter = None,
    order_number: Filter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    who: Principal = Depends(require(Action.READ)),
) -> dict[str, Any]:
    return read_within_channel(
        request,
        who,
        channel,
        lambda c, ch: shipment_views.list_shipments(
            c, status=status, channel=ch, order_number=order_number, limit=limit, cursor=cursor
        ),
    )


@router.get("/shipments/{shipment_id}", tags=["fulfillment"], responses=m.answers(m.Shipment))
def get_shipment(shipment_id: str, request: Request, who: Principal = Depends(require(Action.READ))) -> dict[str, Any]:
    return read(request, lambda c: shipment_views.shipment_view(c, as_shipment_id(shipment_id), who.channel_scope))


@router.post("/shipments/{shipment_id}/advance", tags=["fulfillment"], responses=m.answers(m.Shipment))
def advance_shipment(
    shipment_id: str,
    request: Request,
    body: s.AdvanceIn | None = None,
    who: Principal = Depends(require(Action.FULFIL)),
) -> dict[str, Any]:
    body = body or s.AdvanceIn()
    return write(
        request,
        who,
        shaped(
            lambda uow: fulfillment.advance_shipment(
                uow, as_shipment_id(shipment_id), body.carrier, body.tracking_number
            ),
            lambda sh: shipment_views.shipment_json(sh, sh.lines),
        ),
    )


@router.post("/shipments/release-due", tags=["fulfillment"], responses=m.answers(m.ReleaseDueResult))
def release_due_shipments(request: Request, who: Principal = Depends(require(Action.FULFIL))) -> dict[str, int]:
    return {"orders_settled": write(request, who, fulfillment.release_due)}
