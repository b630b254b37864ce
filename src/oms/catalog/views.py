"""The catalogue as the API and the dashboard show it: products and customers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    select,
)

from oms.domain.allocation import SortField
from oms.formats import money
from oms.store.paging import one_row, page
from oms.store.reads import default_policy, incoming_by_sku, policy_from_json, policy_to_json, stock_json
from oms.store.tables import (
    customers,
    products,
)


def product_view(conn: Connection, sku: str) -> dict[str, Any]:
    row = one_row(conn, products, f"No product with SKU '{sku}'.", sku=sku)
    incoming = incoming_by_sku(conn, [sku]).get(sku, 0)
    policy = policy_from_json(row.backorder_policy)
    return product_json(row, policy_to_json(policy) if policy else None, policy or default_policy(conn), incoming)


def product_json(row: Any, stored_policy: Any, effective: Any, incoming: int) -> dict[str, Any]:
    """A product as the API shows it, from a row or a use case's copy."""
    return {
        "sku": row.sku,
        "name": row.name,
        "unit_price": money(row.unit_price),
        "lead_time_days": row.lead_time_days,
        "backorder_policy": stored_policy,
        "effective_backorder_policy": policy_to_json(effective),
        "stock": stock_json(row, incoming),
        "version": row.version,
    }


def list_products(conn: Connection, limit: int, cursor: str | None) -> dict[str, Any]:
    fields = [SortField("sku")]
    rows, nxt = page(conn, select(products.c.sku), products, fields, limit, cursor)
    return {"items": [product_view(conn, r.sku) for r in rows], "next_cursor": nxt}


def customer_view(conn: Connection, customer_id: str) -> dict[str, Any]:
    row = one_row(conn, customers, f"No customer '{customer_id}'.", customer_id=customer_id)
    return {"customer_id": row.customer_id, "name": row.name, "email": row.email, "tier": row.tier}
