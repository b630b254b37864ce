"""Routes under /api/v1. Each parses, calls one use case in one transaction, and answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from oms import views
from oms.domain.access import Action, Principal
from oms.domain.errors import NotFound
from oms.domain.policy import BackorderPolicy
from oms.services import catalog, common, fulfillment, orders, preview, replenishment
from oms.store.uow import UnitOfWork

from . import idempotency as idem
from . import preconditions as pre
from . import schemas as s
from .app import AuthError, require, store_of
from .preconditions import IfMatch

router = APIRouter()
T = TypeVar("T")
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=2000)]
Filter = Annotated[str | None, Query(max_length=64, pattern=s.CODE_PATTERN)]


def write(
    request: Request,
    who: Principal,
    use_case: Callable[[UnitOfWork], T],
    answer: Callable[[T], tuple[int, Any]] | None = None,
    queue_on: Sequence[str] = (),
) -> T:
    """Run a use case in one transaction. Under an Idempotency-Key the response — the result itself,
    or `answer(result)` as (status, body) where the route shapes it — is recorded in the same
    transaction, so a process dying after the commit can never leave the key to run a second time."""
    claim = getattr(request.state, "idempotency", None)

    def transaction(uow: UnitOfWork) -> T:
        result = use_case(uow)
        if claim is not None and (answer is not None or isinstance(result, dict)):
            status = getattr(request.scope.get("route"), "status_code", None) or 200
            status, shown = answer(result) if answer is not None else (status, result)
            body = json.dumps(jsonable_encoder(shown), ensure_ascii=False, separators=(",", ":"))
            principal, key = claim
            idem.applied(uow.conn, principal, key, status, body)
        return result

    return store_of(request).write(transaction, actor=who.name, queue_on=queue_on)


def created_or_found(result: tuple[dict[str, Any], bool]) -> tuple[int, dict[str, Any]]:
    """201 for a new order or receipt, 200 when its number was already stored."""
    out, created = result
    return (201 if created else 200), out


def answered(run: Callable[[], tuple[dict[str, Any], bool]]) -> Response:
    """Run a create use case and serialize its answer in the same worker thread: 201 when it created
    something, 200 when the same request found it stored. (FastAPI would encode a returned dict in a
    second trip to a worker thread.)"""
    out, created = run()
    return JSONResponse(out, status_code=201 if created else 200)


def _shaped(use_case: Callable[[UnitOfWork], Any], shape: Callable[[Any], Any]) -> Callable[[UnitOfWork], Any]:
    """A use case whose result the API shapes (inside the transaction, so an idempotent answer is the shaped one)."""
    return lambda uow: shape(use_case(uow))


def read(request: Request, query: Callable[[Connection], T]) -> T:
    return store_of(request).read(query)


def now() -> datetime:
    return datetime.now(UTC)


def policy(p: s.BackorderPolicyIn | None) -> BackorderPolicy | None:
    if p is None:
        return None
    return BackorderPolicy(
        mode=p.mode,
        max_backorder_qty=p.max_backorder_qty,
        max_qty_per_line=p.max_qty_per_line,
        channels=tuple(p.channels),
        preorder_ends_at=p.preorder_ends_at,
        release_date=p.release_date,
        auto_cancel_after_days=p.auto_cancel_after_days,
    )


# ---- catalogue and settings ---------------------------------------------------------------------


@router.put("/products/{sku}", tags=["catalogue"])
def put_product(
    sku: s.Code,
    body: s.ProductIn,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
    who: Principal = Depends(require(Action.CATALOGUE)),
) -> dict[str, Any]:
    spec = catalog.ProductSpec(sku, body.name, body.unit_price, body.lead_time_days, policy(body.backorder_policy))

    def use_case(uow: UnitOfWork) -> tuple[bool, dict[str, Any]]:
        pre.check(if_match, pre.product_version(uow.conn, sku), f"Product {sku}")
        saved = catalog.put_product(uow, spec)
        p = saved.product
        return saved.created, views.product_json(p, p.stored_policy, p.policy, saved.incoming)

    created, out = write(request, who, use_case)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = pre.etag(out["version"])
    return out


@router.get("/products/{sku}", tags=["catalogue"])
def get_product(
    sku: s.Code, request: Request, response: Response, _: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    out = read(request, lambda c: views.product_view(c, sku))
    response.headers["ETag"] = pre.etag(out["version"])
    return out


@router.get("/products", tags=["catalogue"])
def list_products(
    request: Request, limit: Limit = 50, cursor: Cursor = None, _: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    return read(request, lambda c: views.list_products(c, limit, cursor))


@router.put("/customers/{customer_id}", tags=["catalogue"])
def put_customer(
    customer_id: s.Code,
    body: s.CustomerIn,
    request: Request,
    response: Response,
    who: Principal = Depends(require(Action.CATALOGUE)),
) -> dict[str, Any]:
    spec = catalog.CustomerSpec(customer_id, body.name, body.email, body.tier)

    def use_case(uow: UnitOfWork) -> tuple[bool, dict[str, Any]]:
        created = catalog.put_customer(uow, spec)
        return created, {"customer_id": spec.customer_id, "name": spec.name, "email": spec.email, "tier": spec.tier}

    created, out = write(request, who, use_case)
    response.status_code = 201 if created else 200
    return out


@router.get("/customers/{customer_id}", tags=["catalogue"])
def get_customer(
    customer_id: s.Code, request: Request, who: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    _no_channel(who)  # customers' details are not a channel's to browse
    return read(request, lambda c: views.customer_view(c, customer_id))


@router.get("/settings/default-backorder-policy", tags=["settings"])
def get_default_policy(
    request: Request, response: Response, who: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    _no_channel(who)

    def query(c: Connection) -> tuple[dict[str, Any], int]:
        return common.policy_to_json(common.default_policy(c)), pre.setting_version(c, common.DEFAULT_POLICY_KEY)

    out, version = read(request, query)
    response.headers["ETag"] = pre.etag(version)
    return out


@router.put("/settings/default-backorder-policy", tags=["settings"])
def put_default_policy(
    body: s.BackorderPolicyIn,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
    who: Principal = Depends(require(Action.SETTINGS)),
) -> dict[str, Any]:
    p = policy(body)
    assert p is not None
    key = common.DEFAULT_POLICY_KEY

    def use_case(uow: UnitOfWork) -> tuple[dict[str, Any], int]:
        pre.check(if_match, pre.setting_version(uow.conn, key, lock=True), "The default back-order policy")
        return catalog.set_default_policy(uow, p)

    out, version = write(request, who, use_case)
    response.headers["ETag"] = pre.etag(version)
    return out


@router.get("/settings/allocation-rule", tags=["settings"])
def get_rule(request: Request, response: Response, who: Principal = Depends(require(Action.READ))) -> dict[str, Any]:
    _no_channel(who)

    def query(c: Connection) -> tuple[dict[str, Any], int]:
        return {"keys": [k.value for k in common.allocation_rule(c)]}, pre.setting_version(c, common.RULE_KEY)

    out, version = read(request, query)
    response.headers["ETag"] = pre.etag(version)
    return out


@router.put("/settings/allocation-rule", tags=["settings"])
def put_rule(
    body: s.AllocationRuleIn,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
    who: Principal = Depends(require(Action.SETTINGS)),
) -> dict[str, Any]:
    keys = [k.value for k in body.keys]

    def use_case(uow: UnitOfWork) -> tuple[dict[str, Any], int]:
        pre.check(if_match, pre.setting_version(uow.conn, common.RULE_KEY, lock=True), "The allocation rule")
        return catalog.set_allocation_rule(uow, keys)

    out, version = write(request, who, use_case)
    response.headers["ETag"] = pre.etag(version)
    return out


@router.post("/settings/allocation-rule/preview", tags=["settings"])
def preview_rule(
    body: s.AllocationRuleIn,
    request: Request,
    sku: Filter = None,
    who: Principal = Depends(require(Action.SETTINGS)),
) -> dict[str, Any]:
    """Queue positions before and after a proposed rule, for the lines that would move; nothing is committed."""
    keys = [k.value for k in body.keys]
    return store_of(request).dry_run(lambda uow: preview.preview_rule(uow, keys, sku), actor=who.name)


@router.post("/inventory/adjustments", status_code=201, tags=["catalogue"])
def adjust(
    body: s.AdjustmentIn, request: Request, who: Principal = Depends(require(Action.ADJUST_STOCK))
) -> dict[str, Any]:
    return write(request, who, lambda uow: catalog.adjust_stock(uow, body.sku, body.qty_delta, body.reason))


# ---- orders -------------------------------------------------------------------------------------


@router.post("/orders", status_code=201, tags=["orders"], response_model=dict[str, Any])
async def place_order(
    body: s.OrderIn, request: Request, who: Principal = Depends(require(Action.PLACE_ORDER))
) -> Response:
    """The hottest route: one hop to a worker thread, and the answer serialized there (see `answered`)."""
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
    return await run_in_threadpool(
        answered,
        lambda: write(request, who, _shaped(lambda uow: orders.place_order(uow, cmd), _placed), created_or_found),
    )


def _placed(p: orders.PlacedOrder) -> tuple[dict[str, Any], bool]:
    return views.order_json(p.order), p.created


@router.get("/orders", tags=["orders"])
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
    return _within_channel(
        who,
        channel,
        lambda ch: read(
            request,
            lambda c: views.list_orders(
                c, status=status, channel=ch, customer_id=customer_id, sku=sku, limit=limit, cursor=cursor
            ),
        ),
    )


@router.get("/orders/{order_number}", tags=["orders"])
def get_order(order_number: s.Code, request: Request, who: Principal = Depends(require(Action.READ))) -> dict[str, Any]:
    return read(request, lambda c: views.order_view(c, order_number, who.channel_scope))


@router.post("/orders/{order_number}/cancel", tags=["orders"])
def cancel_order(
    order_number: s.Code, body: s.CancelIn, request: Request, who: Principal = Depends(require(Action.CHANGE_ORDER))
) -> dict[str, Any]:
    lines = [(line.line_no, line.qty) for line in body.lines] if body.lines is not None else None
    return write(
        request,
        who,
        _shaped(
            lambda uow: orders.cancel_order(uow, order_number, body.reason, lines, who.channel_scope, body.reason_code),
            views.order_json,
        ),
    )


@router.post("/orders/{order_number}/priority", tags=["orders"])
def set_priority(
    order_number: s.Code, body: s.PriorityIn, request: Request, who: Principal = Depends(require(Action.CHANGE_ORDER))
) -> dict[str, Any]:
    if not who.may_move_queue:
        raise AuthError(
            403,
            "Channel keys may not change priorities.",
            [{"field": "priority", "reason": "not settable by this key's role"}],
        )
    return write(
        request, who, _shaped(lambda uow: orders.set_priority(uow, order_number, body.priority), views.order_json)
    )


@router.get("/orders/{order_number}/events", tags=["orders"])
def order_events(
    order_number: s.Code, request: Request, who: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    return read(request, lambda c: views.order_events(c, order_number, who.channel_scope))


# ---- the back-order queue -----------------------------------------------------------------------


@router.get("/backorders", tags=["back orders"])
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
    return _within_channel(
        who,
        channel,
        lambda ch: read(
            request,
            lambda c: views.list_backorders(
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
        ),
    )


# ---- replenishment ------------------------------------------------------------------------------


@router.post("/purchase-orders", status_code=201, tags=["replenishment"])
def create_po(
    body: s.PurchaseOrderIn, request: Request, who: Principal = Depends(require(Action.PURCHASE))
) -> dict[str, Any]:
    lines = [replenishment.PoLine(line.sku, line.qty, line.expected_date) for line in body.lines]
    return write(
        request,
        who,
        _shaped(lambda uow: replenishment.create_po(uow, body.po_number, body.supplier, lines), _po_json),
    )


def _po_json(po: replenishment.PurchaseOrder) -> dict[str, Any]:
    return views.po_json(po, po.lines, now().date())


@router.get("/purchase-orders", tags=["replenishment"])
def list_pos(
    request: Request,
    status: Annotated[str | None, Query(pattern="^(open|received|cancelled)$")] = None,
    sku: Filter = None,
    overdue: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    who: Principal = Depends(require(Action.READ)),
) -> dict[str, Any]:
    _no_channel(who)
    return read(
        request,
        lambda c: views.list_pos(
            c, status=status, sku=sku, overdue=overdue, today=now().date(), limit=limit, cursor=cursor
        ),
    )


@router.get("/purchase-orders/{po_number}", tags=["replenishment"])
def get_po(
    po_number: s.Code, request: Request, response: Response, who: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    _no_channel(who)
    out = read(request, lambda c: views.po_view(c, po_number, now().date()))
    response.headers["ETag"] = pre.etag(out["version"])
    return out


@router.patch("/purchase-orders/{po_number}", tags=["replenishment"])
def patch_po(
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


@router.post("/purchase-orders/{po_number}/cancel", tags=["replenishment"])
def cancel_po(
    po_number: s.Code, request: Request, who: Principal = Depends(require(Action.PURCHASE))
) -> dict[str, Any]:
    return write(request, who, _shaped(lambda uow: replenishment.cancel_po(uow, po_number), _po_json))


@router.post("/receipts", status_code=201, tags=["replenishment"], response_model=dict[str, Any])
async def receive(body: s.ReceiptIn, request: Request, who: Principal = Depends(require(Action.PURCHASE))) -> Response:
    lines = [replenishment.ReceiptLine(line.sku, line.qty) for line in body.lines]
    use_case = _shaped(
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


@router.post("/receipts/preview", tags=["replenishment"])
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


@router.post("/promise", tags=["replenishment"])
def promise(body: s.PromiseIn, request: Request, who: Principal = Depends(require(Action.PROMISE))) -> dict[str, Any]:
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


@router.get("/reports/shortfall", tags=["replenishment"])
def shortfall(request: Request, who: Principal = Depends(require(Action.READ))) -> dict[str, Any]:
    _no_channel(who)
    return read(request, views.shortfall)


# ---- fulfillment --------------------------------------------------------------------------------


@router.get("/shipments", tags=["fulfillment"])
def list_shipments(
    request: Request,
    status: Annotated[str | None, Query(pattern="^(pick|pack|awaiting_shipment|dispatched|cancelled)$")] = None,
    channel: Filter = None,
    order_number: Filter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    who: Principal = Depends(require(Action.READ)),
) -> dict[str, Any]:
    return _within_channel(
        who,
        channel,
        lambda ch: read(
            request,
            lambda c: views.list_shipments(
                c, status=status, channel=ch, order_number=order_number, limit=limit, cursor=cursor
            ),
        ),
    )


@router.get("/shipments/{shipment_id}", tags=["fulfillment"])
def get_shipment(shipment_id: str, request: Request, who: Principal = Depends(require(Action.READ))) -> dict[str, Any]:
    return read(request, lambda c: views.shipment_view(c, _id(shipment_id), who.channel_scope))


@router.post("/shipments/{shipment_id}/advance", tags=["fulfillment"])
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
        _shaped(
            lambda uow: fulfillment.advance_shipment(uow, _id(shipment_id), body.carrier, body.tracking_number),
            lambda sh: views.shipment_json(sh, sh.lines),
        ),
    )


@router.post("/shipments/release-due", tags=["fulfillment"])
def release_due(request: Request, who: Principal = Depends(require(Action.FULFIL))) -> dict[str, int]:
    return {"orders_settled": write(request, who, fulfillment.release_due)}


def _id(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if not 1 <= n < 2**62:
        raise NotFound(f"No shipment {value}.")
    return n


def _within_channel(
    who: Principal, channel: str | None, listing: Callable[[str | None], dict[str, Any]]
) -> dict[str, Any]:
    """A listing as a channel key may see it: its own channel only; asking for another is an empty page."""
    scope = who.channel_scope
    if scope is not None and channel not in (None, scope):
        return {"items": [], "next_cursor": None}
    return listing(scope or channel)


def _no_channel(who: Principal) -> None:
    if who.channel_scope is not None:
        raise AuthError(403, "Channel keys read orders, the queue and promises only.")
