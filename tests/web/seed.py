"""A small, known store for the dashboard's tests, built through the same use cases as the API.

Each scenario has its own SKU so tests do not disturb each other:
  TENT-2P   three waiting lines (ALICE, BOB, CAROL)           finding by SKU
  LAMP-1    ERIN's waiting line                               finding by customer
  BOOT-42   SO-B1 (DAVE) ahead of SO-B2 (BOB)                 cancel a line: SO-B2 moves up
  STOVE-X   SO-S1 (3) and SO-S2 (2) waiting, PO-S1 of 10      receive a GRN after its preview
  MUG-1     stock 5, SO-M1 allocated at once: a shipment      Pick -> Dispatched
  RULE-1    SO-R1 (BOB, standard, older), SO-R2 (CAROL, platinum)  a tier-first rule swaps them
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from oms.access.users import create_user
from oms.catalog import use_cases as catalog
from oms.domain.access import Role
from oms.domain.allocation import Tier
from oms.domain.policy import BackorderMode, BackorderPolicy
from oms.orders import use_cases as orders
from oms.replenishment import use_cases as replenishment
from oms.store.db import Store
from oms.store.uow import UnitOfWork as Ctx

PASSWORD = "correct-horse-1"
USERS = {"ada": Role.ADMIN, "otto": Role.OPS, "pat": Role.PURCHASING}
CUSTOMERS = {
    "ALICE": Tier.GOLD,
    "BOB": Tier.STANDARD,
    "CAROL": Tier.PLATINUM,
    "DAVE": Tier.SILVER,
    "ERIN": Tier.STANDARD,
}
ALWAYS = BackorderPolicy(mode=BackorderMode.ALWAYS)
NOW = datetime.now(UTC)
PO_DATE = date.today() + timedelta(days=20)


def _order(ctx: Ctx, number: str, customer: str, sku: str, qty: int, days_ago: int, channel: str = "web") -> None:
    cmd = orders.PlaceOrder(
        order_number=number,
        channel=channel,
        customer_id=customer,
        lines=[orders.NewLine(sku, qty)],
        placed_at=NOW - timedelta(days=days_ago),
    )
    orders.place_order(ctx, cmd)


def seed(store: Store) -> None:
    """Users, catalogue, waiting orders, a purchase order and a shipment in pick."""
    for name, role in USERS.items():
        store.write(lambda uow, name=name, role=role: create_user(uow.conn, name, role, PASSWORD))

    def catalogue(ctx: Ctx) -> None:
        for sku, price in [
            ("TENT-2P", "149.00"),
            ("LAMP-1", "25.00"),
            ("BOOT-42", "90.00"),
            ("STOVE-X", "60.00"),
            ("MUG-1", "8.50"),
            ("RULE-1", "10.00"),
        ]:
            catalog.put_product(ctx, catalog.ProductSpec(sku, f"Product {sku}", Decimal(price), 21, ALWAYS))
        for customer, tier in CUSTOMERS.items():
            catalog.put_customer(
                ctx, catalog.CustomerSpec(customer, customer.title(), f"{customer.lower()}@example.com", tier)
            )

    store.write(catalogue, actor="seed")

    def trading(ctx: Ctx) -> None:
        _order(ctx, "SO-T1", "ALICE", "TENT-2P", 2, 9)
        _order(ctx, "SO-T2", "BOB", "TENT-2P", 3, 5, channel="phone")
        _order(ctx, "SO-T3", "CAROL", "TENT-2P", 1, 1)
        _order(ctx, "SO-L1", "ERIN", "LAMP-1", 4, 3, channel="retail")
        _order(ctx, "SO-B1", "DAVE", "BOOT-42", 2, 8)
        _order(ctx, "SO-B2", "BOB", "BOOT-42", 4, 2)
        _order(ctx, "SO-S1", "ALICE", "STOVE-X", 3, 6)
        _order(ctx, "SO-S2", "DAVE", "STOVE-X", 2, 4)
        _order(ctx, "SO-R1", "BOB", "RULE-1", 1, 7)
        _order(ctx, "SO-R2", "CAROL", "RULE-1", 1, 2)
        replenishment.create_po(ctx, "PO-S1", "Camp Supply Co", [replenishment.PoLine("STOVE-X", 10, PO_DATE)])
        catalog.adjust_stock(ctx, "MUG-1", 5, "stock count")
        _order(ctx, "SO-M1", "ALICE", "MUG-1", 1, 0)

    store.write(trading, actor="seed")
