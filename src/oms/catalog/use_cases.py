"""Products, customers, policies, the allocation rule and stock adjustments."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update

from oms import engine
from oms.domain.allocation import Tier, parse_rule
from oms.domain.errors import Conflict, NotFound
from oms.domain.policy import BackorderPolicy, policy_to_json
from oms.engine import Product, WorkingSet
from oms.store.tables import customers, order_lines, products
from oms.store.uow import DEFAULT_POLICY_KEY, RULE_KEY, UnitOfWork


@dataclass(frozen=True)
class ProductSpec:
    sku: str
    name: str
    unit_price: Decimal
    lead_time_days: int | None = None
    backorder_policy: BackorderPolicy | None = None


@dataclass(frozen=True)
class SavedProduct:
    """A product as `put_product` left it, with its incoming units; `views.product_json` shapes it."""

    product: Product
    incoming: int
    created: bool


def put_product(uow: UnitOfWork, spec: ProductSpec) -> SavedProduct:
    """Create or replace a product's catalogue data (stock is untouched)."""
    ws = WorkingSet(uow)
    row = engine.lock_products(ws, [spec.sku]).get(spec.sku)
    stored = policy_to_json(spec.backorder_policy) if spec.backorder_policy else None
    values = {
        "name": spec.name,
        "unit_price": spec.unit_price,
        "lead_time_days": spec.lead_time_days,
        "backorder_policy": stored,
        "updated_at": uow.now,
    }
    logged = {**values, "unit_price": str(spec.unit_price), "updated_at": None}
    policy = spec.backorder_policy or uow.default_policy()
    if row is None:
        uow.conn.execute(insert(products).values(sku=spec.sku, **values))
        uow.event("product_created", logged, sku=spec.sku)
        product = Product(spec.sku, spec.name, spec.unit_price, spec.lead_time_days, stored, policy, 0, 0, 0, 1)
        return SavedProduct(product, 0, True)
    uow.conn.execute(update(products).where(products.c.sku == spec.sku).values(version=row.version + 1, **values))
    uow.event("product_changed", logged, sku=spec.sku)
    supplies = engine.read_supplies(ws, [spec.sku])
    if row.lead_time_days != spec.lead_time_days and row.backordered > 0:
        row.lead_time_days = spec.lead_time_days
        engine.read_queues(ws, [spec.sku])
        engine.redate(ws, [spec.sku], supplies)
        engine.flush(ws)
    product = Product(
        spec.sku,
        spec.name,
        spec.unit_price,
        spec.lead_time_days,
        stored,
        policy,
        row.on_hand,
        row.allocated,
        row.backordered,
        row.version + 1,
    )
    return SavedProduct(product, sum(s.qty for s in supplies.get(spec.sku, ())), False)


@dataclass(frozen=True)
class CustomerSpec:
    customer_id: str
    name: str
    email: str
    tier: Tier


def put_customer(uow: UnitOfWork, spec: CustomerSpec) -> bool:
    """Create or update a customer (True when created); a tier change moves their lines in tier-ranked queues."""
    row = uow.conn.execute(select(customers.c.tier).where(customers.c.customer_id == spec.customer_id)).first()
    values = {"name": spec.name, "email": spec.email, "tier": spec.tier.value, "updated_at": uow.now}
    logged = {"customer_id": spec.customer_id, "name": spec.name, "email": spec.email, "tier": spec.tier.value}
    if row is None:
        # A twin creating the same customer at once fails on the key; Store.write retries into the update.
        uow.conn.execute(insert(customers).values(customer_id=spec.customer_id, **values))
        uow.event("customer_created", logged)
        return True
    if row.tier == spec.tier.value:
        uow.conn.execute(update(customers).where(customers.c.customer_id == spec.customer_id).values(**values))
        uow.event("customer_changed", logged)
        return False
    # The tier is copied onto the customer's lines (a queue key): lock their SKUs, then the customer.
    ws = WorkingSet(uow)
    waiting = sorted(
        set(
            uow.conn.scalars(
                select(order_lines.c.sku).where(
                    order_lines.c.customer_id == spec.customer_id, order_lines.c.backordered_qty > 0
                )
            )
        )
    )
    engine.lock_products(ws, waiting)
    old = uow.conn.execute(
        update(customers)
        .where(customers.c.customer_id == spec.customer_id)
        .values(**values)
        .returning(customers.c.tier)
    ).scalar_one()
    uow.event("customer_changed", logged)
    queues = engine.read_queues(ws, waiting)
    for queue in queues.values():
        for line in queue:
            if line.customer_id == spec.customer_id:
                line.tier_rank = spec.tier.rank
    engine.redate(ws, waiting, engine.read_supplies(ws, waiting))
    engine.flush(ws)
    uow.conn.execute(
        update(order_lines).where(order_lines.c.customer_id == spec.customer_id).values(tier_rank=spec.tier.rank)
    )
    uow.event("customer_tier_changed", {"customer_id": spec.customer_id, "from": old, "to": spec.tier.value})
    return False


def set_default_policy(uow: UnitOfWork, policy: BackorderPolicy) -> tuple[dict[str, Any], int]:
    """The new default policy and its version."""
    value = policy_to_json(policy)
    version = uow.put_setting(DEFAULT_POLICY_KEY, value)
    uow.event("default_policy_changed", value)
    return value, version


def set_allocation_rule(uow: UnitOfWork, keys: list[str]) -> tuple[dict[str, Any], int]:
    """Change the rule (its new version is returned); every queue is re-dated in its new order."""
    rule = parse_rule(keys)
    ws = WorkingSet(uow)
    waiting = sorted(uow.conn.scalars(select(products.c.sku).where(products.c.backordered > 0)))
    engine.lock_products(ws, waiting)
    version = uow.put_setting(RULE_KEY, {"keys": [k.value for k in rule]})
    uow.event("allocation_rule_changed", {"keys": [k.value for k in rule]})
    engine.read_queues(ws, waiting)
    engine.redate(ws, waiting, engine.read_supplies(ws, waiting))
    engine.flush(ws)
    return {"keys": [k.value for k in rule]}, version


def adjust_stock(uow: UnitOfWork, sku: str, qty_delta: int, reason: str) -> dict[str, Any]:
    """Count stock up or down. On hand never drops below allocated; units found go to the queue."""
    ws = WorkingSet(uow)
    row = engine.lock_products(ws, [sku]).get(sku)
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
    engine.refuse_beyond_ceiling(ws, {sku: qty_delta}, "qty_delta")
    row.on_hand += qty_delta
    ws.move(sku, qty_delta, "adjustment", None, reason)
    uow.event("stock_adjusted", {"qty_delta": qty_delta, "reason": reason, "on_hand": row.on_hand}, sku=sku)
    plan = engine.after_stock_change(ws, [sku], "adjustment")
    engine.flush(ws)
    return {
        "sku": sku,
        "qty_delta": qty_delta,
        "on_hand": row.on_hand,
        "allocations": [
            {"order_number": a.line.order_number, "line_no": a.line.line_no, "sku": sku, "qty": a.qty} for a in plan
        ],
    }
