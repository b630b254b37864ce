"""Routes under /api/v1 for purchase orders, receipts, promises and the shortfall."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from oms.api import models as m
from oms.api import preconditions as pre
from oms.api import schemas as s
from oms.api.app import AuthError, require, store_of
from oms.api.preconditions import IfMatch
from oms.api.routing import (
    Cursor,
    Filter,
    Limit,
    answered,
    created_or_found,
    now,
    read,
    refuse_channel_keys,
    shaped,
    write,
)
from oms.domain.access import Action, Principal
from oms.replenishment import preview
from oms.replenishment import use_cases as replenishment
from oms.replenishment import views as po_views
from oms.store.uow import UnitOfWork

router = APIRouter()


@router.post("/purchase-orders", status_code=201, tags=["replenishment"], responses=m.answers(m.PurchaseOrder, 201))
def create_purchase_order(
    body: s.PurchaseOrderIn, request: Request, who: Principal = Depends(require(Action.PURCHASE))
) -> dict[str, Any]:
    lines = [replenishment.PoLine(line.sku, line.qty, line.expected_date) for line in body.lines]
    return write(
        request,
        who,
        shaped(lambda uow: replenishment.create_po(uow, body.po_number, body.supplier, lines), _po_json),
    )


def _po_json(po: replenishment.PurchaseOrder) -> dict[str, Any]:
    return po_views.po_json(po, po.lines, now().date())


@router.get("/purchase-orders", tags=["replenishment"], responses=m.answers(m.PurchaseOrderPage))
def list_purchase_orders(
    request: Request,
    status: Annotated[str | None, Query(pattern="^(open|received|cancelled)$")] = None,
    sku: Filter = None,
    overdue: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    who: Principal = Depends(require(Action.READ)),
) -> dict[str, Any]:
    refuse_channel_keys(who)
    return read(
        request,
        lambda c: po_views.list_pos(
            c, status=status, sku=sku, overdue=overdue, today=now().date(), limit=limit, cursor=cursor
        ),
    )


@router.get("/purchase-orders/{po_number}", tags=["replenishment"], responses=m.answers(m.PurchaseOrder))
def get_purchase_order(
    po_number: s.Code, request: Request, response: Response, who: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    refuse_channel_keys(who)
    out = read(request, lambda c: po_views.po_view(c, po_number, now().date()))
    response.headers["ETag"] = pre.etag(out["version"])
    return out


@router.patch("/purchase-orders/{po_number}", tags=["replenishment"], responses=m.answers(m.PurchaseOrder))
def patch_purchase_order(
    po_number: s.Code,
    body: s.PurchaseOrderPatch,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
    who: Principal = Depends(require(Action.PURCHASE)),
) -> dict[str, Any]:
    changes = [replenishment.PoLineChange(line.sku, line.expected_date, line.qty) for line in body.lines]

    def use_case(uow: UnitOfWork) -> dict[str, Any]:
        current = pre.po_version(uow.conn, po_number)
        if current is not None:  # an unknown PO stays a 404
            pre.check(if_match, current, f"Purchase order {po_number}")
        return _po_json(replenishment.patch_po(uow, po_number, changes))

    out = write(request, who, use_case)
    if "version" in out:
        response.headers["ETag"] = pre.etag(out["version"])
    return out


@router.post("/purchase-orders/{po_number}/cancel", tags=["replenishment"], responses=m.answers(m.PurchaseOrder))
def cancel_purchase_order(
    po_number: s.Code, request: Request, who: Principal = Depends(require(Action.PURCHASE))
) -> dict[str, Any]:
    return write(request, who, shaped(lambda uow: replenishment.cancel_po(uow, po_number), _po_json))


@router.post(
    "/receipts",
    status_code=201,
    tags=["replenishment"],
    response_model=None,
    responses=m.answers(m.Receipt, 201, "The same GRN number again: the stored result, no second receipt."),
)
async def receive_goods(
    body: s.ReceiptIn, request: Request, who: Principal = Depends(require(Action.PURCHASE))
) -> Response:
    lines = [replenishment.ReceiptLine(line.sku, line.qty) for line in body.lines]
    use_case = shaped(
        lambda uow: replenishment.receive_goods(
            uow,
            body.grn_number,
            lines,
            body.po_number,
            body.received_at,
            body.model_dump(mode="json", exclude_unset=True),
        ),
        lambda r: (r.result, r.created),
    )
    skus = [line.sku for line in lines]
    return await run_in_threadpool(answered, lambda: write(request, who, use_case, created_or_found, skus))


@router.post("/receipts/preview", tags=["replenishment"], responses=m.answers(m.ReceiptPreview))
def preview_receipt(
    body: s.ReceiptIn, request: Request, who: Principal = Depends(require(Action.PURCHASE))
) -> dict[str, Any]:
    """What this receipt would allocate and whose ETA would move; nothing is committed."""
    lines = [replenishment.ReceiptLine(line.sku, line.qty) for line in body.lines]
    return store_of(request).dry_run(
        lambda uow: preview.preview_receipt(
            uow, body.grn_number, lines, body.po_number, body.model_dump(mode="json", exclude_unset=True)
        ),
        actor=who.name,
    )


@router.post("/promise", tags=["replenishment"], responses=m.answers(m.Promise))
def quote_promise(
    body: s.PromiseIn, request: Request, who: Principal = Depends(require(Action.PROMISE))
) -> dict[str, Any]:
    if who.channel_scope is not None and body.channel != who.channel_scope:
        raise AuthError(403, f"This key asks for channel '{who.channel_scope}' only.")
    lines = [replenishment.PromiseLine(line.sku, line.qty) for line in body.lines]
    store = store_of(request)
    return read(
        request,
        lambda c: replenishment.promise(
            c, store.config.current(c), now(), body.channel, lines, body.customer_id, body.priority
        ),
    )


@router.get("/reports/shortfall", tags=["replenishment"], responses=m.answers(m.ShortfallReport))
def shortfall_report(request: Request, who: Principal = Depends(require(Action.READ))) -> dict[str, Any]:
    refuse_channel_keys(who)
    return read(request, po_views.shortfall)
