"""Products: find one, see its stock and queue, set its own back-order policy."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from oms.catalog import use_cases as catalog
from oms.catalog import views as catalog_views
from oms.catalog.policy_form import MODES, parse_policy, policy_form
from oms.domain.errors import DomainError
from oms.http import status_of
from oms.orders import views as order_views
from oms.store.uow import UnitOfWork, utcnow
from oms.web.auth import CatalogueEditor, Reader
from oms.web.queries import next_supply
from oms.web.render import FormErrors, PostedForm, domain_errors, flash, read, redirect, render, write

router = APIRouter()


@router.get("/products", response_class=HTMLResponse)
def product_list(request: Request, user: Reader) -> Response:
    sku = request.query_params.get("sku", "").strip()
    if sku:
        return redirect("/products/" + quote(sku, safe=""))
    cursor = request.query_params.get("cursor") or None
    try:
        listing = read(request, lambda c: catalog_views.list_products(c, 50, cursor))
    except DomainError:
        listing = read(request, lambda c: catalog_views.list_products(c, 50, None))
    return render(request, "products.html", listing=listing, cursor=cursor)


def _detail(conn: Connection, sku: str) -> dict[str, Any]:
    product = catalog_views.product_view(conn, sku)
    queue = order_views.list_backorders(
        conn,
        sku=sku,
        customer_id=None,
        order_number=None,
        channel=None,
        min_age_days=None,
        sort="queue",
        limit=10,
        cursor=None,
        now=utcnow(),
    )
    return {"product": product, "queue": queue, "supply": next_supply(conn, [sku]).get(sku)}


def _page(
    request: Request, sku: str, status: int = 200, errors: FormErrors | None = None, form: Any = None
) -> HTMLResponse:
    detail = read(request, lambda c: _detail(c, sku))
    own = detail["product"]["backorder_policy"]
    shown = form or {**policy_form(own), "use_default": "" if own else "1"}
    return render(request, "product.html", status, modes=MODES, errors=errors or FormErrors(), form=shown, **detail)


@router.get("/products/{sku:path}", response_class=HTMLResponse)
def product_page(sku: str, request: Request, user: Reader) -> HTMLResponse:
    return _page(request, sku)


@router.post("/product-actions/policy", response_class=HTMLResponse)
def set_policy(
    request: Request,
    form: PostedForm,
    user: CatalogueEditor,
) -> Response:
    sku = str(form.get("sku", ""))
    use_default = bool(form.get("use_default"))
    policy, errors = (None, FormErrors()) if use_default else parse_policy(form)
    if errors:
        errors.summary = "The policy was not saved: " + "; ".join(f"{k}: {v}" for k, v in errors.items())
        return _page(request, sku, 422, errors, form)

    def use_case(uow: UnitOfWork) -> bool:
        """Only the policy changes: name, price and lead time are read in the same transaction."""
        product = catalog_views.product_view(uow.conn, sku)
        spec = catalog.ProductSpec(
            sku, product["name"], Decimal(product["unit_price"]), product["lead_time_days"], policy
        )
        return catalog.put_product(uow, spec).created

    try:
        write(request, user, use_case)
    except DomainError as exc:
        return _page(request, sku, status_of(exc), domain_errors(exc), form)
    flash(request, f"{sku}: " + ("the default policy applies now." if use_default else "its own policy is saved."))
    return redirect("/products/" + quote(sku, safe=""))
