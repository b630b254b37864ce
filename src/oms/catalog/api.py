"""Routes under /api/v1 for the catalogue: products, customers, stock adjustments and the settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Connection

from oms.api import models as m
from oms.api import preconditions as pre
from oms.api import schemas as s
from oms.api.app import require, store_of
from oms.api.preconditions import IfMatch
from oms.api.routing import (
    Cursor,
    Filter,
    Limit,
    policy,
    read,
    refuse_channel_keys,
    write,
)
from oms.catalog import rule_preview
from oms.catalog import use_cases as catalog
from oms.catalog import views as catalog_views
from oms.domain.access import Action, Principal
from oms.store import reads as common
from oms.store.uow import UnitOfWork

router = APIRouter()


@router.put("/products/{sku}", tags=["catalogue"], responses=m.answers(m.Product, 201, "Updated"))
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
        return saved.created, catalog_views.product_json(p, p.stored_policy, p.policy, saved.incoming)

    created, out = write(request, who, use_case)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = pre.etag(out["version"])
    return out


@router.get("/products/{sku}", tags=["catalogue"], responses=m.answers(m.Product))
def get_product(
    sku: s.Code, request: Request, response: Response, _: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    out = read(request, lambda c: catalog_views.product_view(c, sku))
    response.headers["ETag"] = pre.etag(out["version"])
    return out


@router.get("/products", tags=["catalogue"], responses=m.answers(m.ProductPage))
def list_products(
    request: Request, limit: Limit = 50, cursor: Cursor = None, _: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    return read(request, lambda c: catalog_views.list_products(c, limit, cursor))


@router.put("/customers/{customer_id}", tags=["catalogue"], responses=m.answers(m.Customer, 201, "Updated"))
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


@router.get("/customers/{customer_id}", tags=["catalogue"], responses=m.answers(m.Customer))
def get_customer(
    customer_id: s.Code, request: Request, who: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    refuse_channel_keys(who)  # customers' details are not a channel's to browse
    return read(request, lambda c: catalog_views.customer_view(c, customer_id))


def _read_setting(
    request: Request, response: Response, who: Principal, key: str, value_of: Callable[[Connection], dict[str, Any]]
) -> dict[str, Any]:
    """A setting as its value and its version as the ETag (If-Match on the PUT)."""
    refuse_channel_keys(who)
    out, version = read(request, lambda c: (value_of(c), pre.setting_version(c, key)))
    response.headers["ETag"] = pre.etag(version)
    return out


def _write_setting(
    request: Request,
    response: Response,
    who: Principal,
    setting: tuple[str, str, str | None],
    change: Callable[[UnitOfWork], tuple[dict[str, Any], int]],
) -> dict[str, Any]:
    """Change a setting when If-Match names its current version (or none is sent); answer the new ETag."""
    key, what, if_match = setting

    def use_case(uow: UnitOfWork) -> tuple[dict[str, Any], int]:
        pre.check(if_match, pre.setting_version(uow.conn, key, lock=True), what)
        return change(uow)

    out, version = write(request, who, use_case)
    response.headers["ETag"] = pre.etag(version)
    return out


@router.get("/settings/default-backorder-policy", tags=["settings"], responses=m.answers(m.BackorderPolicy))
def get_default_backorder_policy(
    request: Request, response: Response, who: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    return _read_setting(
        request, response, who, common.DEFAULT_POLICY_KEY, lambda c: common.policy_to_json(common.default_policy(c))
    )


@router.put("/settings/default-backorder-policy", tags=["settings"], responses=m.answers(m.BackorderPolicy))
def put_default_backorder_policy(
    body: s.BackorderPolicyIn,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
    who: Principal = Depends(require(Action.SETTINGS)),
) -> dict[str, Any]:
    p = body.to_policy()
    return _write_setting(
        request,
        response,
        who,
        (common.DEFAULT_POLICY_KEY, "The default back-order policy", if_match),
        lambda uow: catalog.set_default_policy(uow, p),
    )


@router.get("/settings/allocation-rule", tags=["settings"], responses=m.answers(m.AllocationRule))
def get_allocation_rule(
    request: Request, response: Response, who: Principal = Depends(require(Action.READ))
) -> dict[str, Any]:
    return _read_setting(
        request, response, who, common.RULE_KEY, lambda c: {"keys": [k.value for k in common.allocation_rule(c)]}
    )


@router.put("/settings/allocation-rule", tags=["settings"], responses=m.answers(m.AllocationRule))
def put_allocation_rule(
    body: s.AllocationRuleIn,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
    who: Principal = Depends(require(Action.SETTINGS)),
) -> dict[str, Any]:
    keys = [k.value for k in body.keys]
    return _write_setting(
        request,
        response,
        who,
        (common.RULE_KEY, "The allocation rule", if_match),
        lambda uow: catalog.set_allocation_rule(uow, keys),
    )


@router.post("/settings/allocation-rule/preview", tags=["settings"], responses=m.answers(m.AllocationRulePreview))
def preview_allocation_rule(
    body: s.AllocationRuleIn,
    request: Request,
    sku: Filter = None,
    who: Principal = Depends(require(Action.SETTINGS)),
) -> dict[str, Any]:
    """Queue positions before and after a proposed rule, for the lines that would move; nothing is committed."""
    keys = [k.value for k in body.keys]
    return store_of(request).dry_run(lambda uow: rule_preview.preview_rule(uow, keys, sku), actor=who.name)


@router.post("/inventory/adjustments", status_code=201, tags=["catalogue"], responses=m.answers(m.StockAdjustment, 201))
def adjust_stock(
    body: s.AdjustmentIn, request: Request, who: Principal = Depends(require(Action.ADJUST_STOCK))
) -> dict[str, Any]:
    return write(request, who, lambda uow: catalog.adjust_stock(uow, body.sku, body.qty_delta, body.reason))
