"""Products, customers, policies, the allocation rule and stock adjustments."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update

from oms.domain.allocation import Tier, parse_rule
from oms.domain.errors import Conflict, NotFound
from oms.domain.policy import BackorderPolicy
from oms.store.tables import customers, order_lines, products, stock_movements

from . import engine
from .common import DEFAULT_POLICY_KEY, RULE_KEY, Ctx, lock_products, policy_to_json


@dataclass(frozen=True)
class ProductSpec:
    sku: str
    name: str
    unit_price: Decimal
    lead_time_days: int | None = None
    backorder_policy: BackorderPolicy | None = None


def put_product(ctx: Ctx, spec: ProductSpec) -> bool:
    """Create or replace a product's catalogue data (stock is untouched). True when created."""
    row = lock_products(ctx, [spec.sku]).get(spec.sku)
    values = {
        "name": spec.name,
        "unit_price": spec.unit_price,
        "lead_time_days": spec.lead_time_days,
        "backorder_policy": policy_to_json(spec.backorder_policy) if spec.backorder_policy else None,
        "updated_at": ctx.now,
    }
    if row is None:
        ctx.conn.execute(insert(products).values(sku=spec.sku, **values))
        ctx.event("product_created", {**values, "unit_price": str(spec.unit_price), "updated_at": None}, sku=spec.sku)
    else:
        ctx.conn.execute(update(products).where(products.c.sku == spec.sku).values(version=row.version + 1, **values))
        ctx.event("product_changed", {**values, "unit_price": str(spec.unit_price), "updated_at": None}, sku=spec.sku)
        if row.lead_time_days != spec.lead_time_days:
            engine.recompute_etas(ctx, [spec.sku])
    ctx.flush_events()
    return row is None


@dataclass(frozen=True)
class CustomerSpec:
    customer_id: str
    name: str
    email: str
    tier: Tier


def put_customer(ctx: Ctx, spec: CustomerSpec) -> bool:
    """Create or update a customer. A tier change moves their waiting lines in tier-ranked queues."""
    row = ctx.conn.execute(select(customers).where(customers.c.customer_id == spec.customer_id)).first()
    values = {"name": spec.name, "email": spec.email, "tier": spec.tier.value, "updated_at": ctx.now}
    logged = {"customer_id": spec.customer_id, "name": spec.name, "email": spec.email, "tier": spec.tier.value}
    if row is None:
        ctx.conn.execute(insert(customers).values(customer_id=spec.customer_id, **values))
        ctx.event("customer_created", logged)
        ctx.flush_events()
        return True
    ctx.conn.execute(update(customers).where(customers.c.customer_id == spec.customer_id).values(**values))
    ctx.event("customer_changed", logged)
    if row.tier != spec.tier.value:
        waiting = sorted(
            set(
                ctx.conn.scalars(
                    select(order_lines.c.sku).where(
                        order_lines.c.customer_id == spec.customer_id, order_lines.c.backordered_qty > 0
                    )
                )
            )
        )
        lock_products(ctx, waiting)
        ctx.conn.execute(
            update(order_lines).where(order_lines.c.customer_id == spec.customer_id).values(tier_rank=spec.tier.rank)
        )
        engine.recompute_etas(ctx, waiting)
        ctx.event("customer_tier_changed", {"customer_id": spec.customer_id, "from": row.tier, "to": spec.tier.value})
    ctx.flush_events()
    return False


def set_default_policy(ctx: Ctx, policy: BackorderPolicy) -> dict[str, Any]:
    value = policy_to_json(policy)
    ctx.put_setting(DEFAULT_POLICY_KEY, value)
    ctx.event("default_policy_changed", value)
    ctx.flush_events()
    return value


def set_allocation_rule(ctx: Ctx, keys: list[str]) -> dict[str, Any]:
    """Change the rule; every queue is re-dated in its new order."""
    rule = parse_rule(keys)
    waiting = sorted(ctx.conn.scalars(select(products.c.sku).where(products.c.backordered > 0)))
    lock_products(ctx, waiting)
    ctx.put_setting(RULE_KEY, {"keys": [k.value for k in rule]})
    ctx.event("allocation_rule_changed", {"keys": [k.value for k in rule]})
    engine.recompute_etas(ctx, waiting)
    ctx.flush_events()
    return {"keys": [k.value for k in rule]}


def adjust_stock(ctx: Ctx, sku: str, qty_delta: int, reason: str) -> dict[str, Any]:
    """Count stock up or down. On hand never drops below allocated; units found go to the queue."""
    row = lock_products(ctx, [sku]).get(sku)
    if row is None:
        raise NotFound(f"No product with SKU '{sku}'.")
    if row.on_hand + qty_delta < row.allocated:
        raise Conflict(
            f"On hand of {sku} would be {row.on_hand + qty_delta}, below the {row.allocated} allocated units. "
            f"The smallest delta accepted is {row.allocated - row.on_hand}.",
            [
                {
                    "field": "qty_delta",
                    "sku": sku,
                    "on_hand": row.on_hand,
                    "allocated": row.allocated,
                    "min_qty_delta": row.allocated - row.on_hand,
                }
            ],
        )
    ctx.conn.execute(update(products).where(products.c.sku == sku).values(on_hand=products.c.on_hand + qty_delta))
    ctx.conn.execute(
        insert(stock_movements).values(sku=sku, qty_delta=qty_delta, kind="adjustment", reason=reason, at=ctx.now)
    )
    ctx.event("stock_adjusted", {"qty_delta": qty_delta, "reason": reason, "on_hand": row.on_hand + qty_delta}, sku=sku)
    plan = engine.after_stock_change(ctx, {sku: row}, "adjustment")
    return {
        "sku": sku,
        "qty_delta": qty_delta,
        "on_hand": row.on_hand + qty_delta,
        "allocations": [
            {"order_number": a.line.order_number, "line_no": a.line.line_no, "sku": sku, "qty": a.qty} for a in plan
        ],
    }
