"""A realistic demo store: a few hundred SKUs, customers of every tier, weeks of trading.

Everything goes through the same use cases as the API, with the clock set to the simulated time,
so the demo's history (events, allocations, shipments) is what the real service would have made.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.console import Console
from sqlalchemy import Connection, func, select

from oms import engine
from oms.catalog import use_cases as catalog
from oms.domain.allocation import Tier
from oms.domain.errors import DomainError
from oms.domain.fulfillment import ShipPolicy
from oms.domain.policy import BackorderMode, BackorderPolicy
from oms.fulfillment import use_cases as fulfillment
from oms.orders import use_cases as orders
from oms.replenishment import use_cases as replenishment
from oms.store.db import Store
from oms.store.tables import orders as orders_table
from oms.store.tables import products, shipments
from oms.store.uow import UnitOfWork

ADJECTIVES = [
    "Alpine",
    "Basalt",
    "Cedar",
    "Delta",
    "Ember",
    "Fjord",
    "Granite",
    "Harbor",
    "Indigo",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Nimbus",
    "Onyx",
    "Prairie",
    "Quartz",
    "Redwood",
    "Sierra",
    "Tundra",
]
NOUNS = [
    "Backpack",
    "Jacket",
    "Lantern",
    "Tent",
    "Bottle",
    "Stove",
    "Boots",
    "Gloves",
    "Headlamp",
    "Compass",
    "Hammock",
    "Sleeping Bag",
    "Trekking Poles",
    "Rain Shell",
    "Fleece",
]
CHANNELS = ["web", "retail", "marketplace", "phone", "b2b"]
FIRST = [
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Finn",
    "Grace",
    "Hugo",
    "Iris",
    "Jonas",
    "Kira",
    "Luca",
    "Maya",
    "Noah",
    "Olga",
    "Pia",
    "Ravi",
    "Sara",
    "Tom",
    "Uma",
    "Vera",
    "Wen",
    "Yara",
    "Zoe",
]
LAST = ["Novak", "Okafor", "Silva", "Tanaka", "Berg", "Rossi", "Khan", "Meyer", "Dubois", "Larsen", "Costa"]
CARRIERS = ["DHL", "UPS", "DPD", "GLS"]


def store_is_empty(conn: Connection) -> bool:
    return conn.execute(select(func.count()).select_from(products)).scalar_one() == 0


def load_demo(
    store: Store,
    *,
    seed: int = 7,
    n_skus: int = 300,
    n_customers: int = 400,
    n_orders: int = 2000,
    weeks: int = 6,
    progress: Console | None = None,
) -> str:
    rnd = random.Random(seed)
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(weeks=weeks)

    def say(text: str) -> None:
        if progress is not None:
            progress.print(text)

    skus = [f"SKU-{i:04d}" for i in range(1, n_skus + 1)]
    weights = [1 / (i + 1) ** 0.9 for i in range(n_skus)]  # a few best sellers, a long tail
    tiers = [Tier.STANDARD] * 60 + [Tier.SILVER] * 25 + [Tier.GOLD] * 10 + [Tier.PLATINUM] * 5

    def at(t: datetime, use_case: Callable[..., Any], *args: Any) -> Any:
        return store.write(lambda uow: use_case(uow, *args), actor="demo", now=t)

    def setup(ctx: UnitOfWork) -> None:
        for i, sku in enumerate(skus):
            r = rnd.random()
            pol = None
            if r < 0.04:
                pol = BackorderPolicy(mode=BackorderMode.NEVER)
            elif r < 0.10:
                pol = BackorderPolicy(mode=BackorderMode.WHEN_INCOMING)
            elif r < 0.20:
                pol = BackorderPolicy(mode=BackorderMode.ALWAYS, max_backorder_qty=40, max_qty_per_line=5)
            elif r < 0.22:
                pol = BackorderPolicy(
                    mode=BackorderMode.PREORDER,
                    preorder_ends_at=end + timedelta(days=30),
                    release_date=(end + timedelta(days=10)).date(),
                )
            name = f"{ADJECTIVES[i % len(ADJECTIVES)]} {NOUNS[(i // len(ADJECTIVES)) % len(NOUNS)]} {i + 1}"
            price = Decimal(rnd.choice([9, 14, 19, 24, 29, 39, 49, 79, 99, 149, 249])) + Decimal("0.99")
            catalog.put_product(ctx, catalog.ProductSpec(sku, name, price, rnd.choice([7, 14, 21, 30, 45, None]), pol))
        for i in range(n_customers):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            catalog.put_customer(
                ctx,
                catalog.CustomerSpec(
                    f"C{i + 1:05d}",
                    f"{first} {last}",
                    f"{first}.{last}{i}@example.com".lower(),
                    list(Tier)[i] if i < len(Tier) else rnd.choice(tiers),
                ),
            )
        for sku in skus:
            if rnd.random() < 0.7:
                catalog.adjust_stock(ctx, sku, rnd.randint(5, 60), "opening stock count")

    at(start, setup)
    say(f"catalogue: {n_skus} SKUs, {n_customers} customers")

    # Purchase orders through the period: most arrive, some are late, the newest are still open.
    po_plans = []
    for n in range(1, 61):
        created = start + timedelta(hours=rnd.randint(0, weeks * 7 * 24 - 24))
        expected = (created + timedelta(days=rnd.randint(5, 25))).date()
        lines = [
            replenishment.PoLine(sku, rnd.choice([20, 40, 60, 100]), expected)
            for sku in sorted(set(rnd.choices(skus, weights=weights, k=rnd.randint(2, 8))))
        ]
        late = rnd.random() < 0.2
        arrives = None if late else datetime.combine(expected, created.timetz()) + timedelta(days=rnd.randint(-2, 3))
        po_plans.append((created, f"PO-{n:04d}", lines, arrives))

    timeline: list[tuple[datetime, int, Any]] = []
    for created, po_number, lines, arrives in po_plans:
        timeline.append((created, 0, ("po", po_number, lines)))
        if arrives is not None and arrives < end:
            timeline.append((arrives, 1, ("grn", po_number, lines)))
    for n in range(1, n_orders + 1):
        placed_at = start + timedelta(seconds=rnd.randint(3600, int((end - start).total_seconds()) - 60))
        timeline.append((placed_at, 2, ("order", n)))
    timeline.sort(key=lambda e: (e[0], e[1]))

    def step(ctx: UnitOfWork, item: Any) -> None:
        kind = item[0]
        if kind == "po":
            supplier = rnd.choice(["Nordic Supply", "Acme Outdoor", "Far East Textiles"])
            replenishment.create_po(ctx, item[1], supplier, item[2])
        elif kind == "grn":
            rcv = [replenishment.ReceiptLine(line.sku, line.qty) for line in item[2]]
            replenishment.receive_goods(ctx, f"GRN-{item[1]}", rcv, item[1])
        else:
            order_lines = [
                orders.NewLine(sku, rnd.choice([1, 1, 1, 2, 2, 3, 5]))
                for sku in sorted(set(rnd.choices(skus, weights=weights, k=rnd.choice([1, 1, 2, 3, 4]))))
            ]
            orders.place_order(
                ctx,
                orders.PlaceOrder(
                    order_number=f"SO-{item[1]:06d}",
                    channel=rnd.choice(CHANNELS),
                    customer_id=f"C{rnd.randint(1, n_customers):05d}",
                    lines=order_lines,
                    ship_policy=ShipPolicy.COMPLETE if rnd.random() < 0.1 else ShipPolicy.PARTIAL,
                    placed_at=ctx.now,
                    priority=5 if rnd.random() < 0.03 else 0,
                ),
            )

    def day(conn: Connection, items: list[tuple[datetime, int, Any]]) -> tuple[int, int]:
        """One transaction per simulated day; each step in a savepoint so a refusal undoes only itself."""
        ok = bad = 0
        for t, _, item in items:
            try:
                with conn.begin_nested():
                    uow = UnitOfWork(conn, store.config, actor="demo", now=t)
                    step(uow, item)
                    uow.write_events()
                ok += item[0] == "order"
            except DomainError:
                bad += 1
        return ok, bad

    placed = refused = 0
    by_day: dict[Any, list[tuple[datetime, int, Any]]] = {}
    for entry in timeline:
        by_day.setdefault(entry[0].date(), []).append(entry)
    for items in by_day.values():

        def one_day(uow: UnitOfWork, items: list[tuple[datetime, int, Any]] = items) -> tuple[int, int]:
            return day(uow.conn, items)

        ok, bad = store.write(one_day)
        placed, refused = placed + ok, refused + bad
    say(f"orders: {placed} placed, {refused} refused by back-order policies")

    # Work the warehouse: older shipments are further along; a few customers cancel.
    def work(ctx: UnitOfWork) -> None:
        rows = ctx.conn.execute(
            select(shipments.c.id, shipments.c.created_at).where(shipments.c.status == "pick").order_by(shipments.c.id)
        ).all()
        for sid, created in rows:
            age = (end - created).days
            steps = 3 if age > 5 else (2 if age > 3 else (1 if age > 1 else 0))
            for _ in range(steps):
                fulfillment.advance_shipment(ctx, sid, rnd.choice(CARRIERS), f"TRK{sid:08d}")
        waiting = ctx.conn.scalars(
            select(orders_table.c.order_number)
            .where(orders_table.c.status == "backordered")
            .order_by(orders_table.c.id)
        ).all()
        for number in rnd.sample(list(waiting), k=min(25, len(waiting))):
            orders.cancel_order(
                ctx, number, rnd.choice(["customer request", "found elsewhere", "too long a wait"]), None
            )
        pending = ctx.conn.scalars(select(products.c.sku).where(products.c.backordered > 0)).all()
        engine.recompute_etas(ctx, pending)

    at(end, work)
    return f"demo loaded: {n_skus} SKUs, {n_customers} customers, {placed} orders, {len(po_plans)} purchase orders"
