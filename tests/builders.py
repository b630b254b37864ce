"""The shop's setup steps, written once.

`Shop` drives the use cases directly, each in its own transaction as the API runs them, on a clock
the test moves (`shop.now`, `shop.tick`): the service-level tests use it. The functions below it
take the test client (`conftest.Api`) and do the same through HTTP, for the tests that are about
HTTP; they assert the answer they need, so a setup step that fails says so where it failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection

from oms.catalog import use_cases as catalog
from oms.domain.allocation import RuleKey, Tier
from oms.domain.fulfillment import CancelReason, ShipPolicy
from oms.domain.policy import BackorderPolicy
from oms.engine import Order
from oms.fulfillment import use_cases as fulfillment
from oms.orders import use_cases as orders
from oms.replenishment import use_cases as replenishment
from oms.store.db import Store
from oms.store.uow import UnitOfWork

T = TypeVar("T")
START = datetime(2030, 3, 2, 9, 0, tzinfo=UTC)  # a Saturday morning, far from any real clock
# An order line: (sku, qty) or (sku, qty, unit price).
LineSpec = tuple[str, int] | tuple[str, int, str]


class Shop:
    """One store seen through its use cases, at `now` (which only the test moves)."""

    def __init__(self, store: Store, now: datetime = START) -> None:
        self.store = store
        self.now = now

    def tick(self, **delta: float) -> datetime:
        """Move the clock on (`shop.tick(minutes=5)`) and return the new time."""
        self.now += timedelta(**delta)
        return self.now

    def run(self, use_case: Callable[[UnitOfWork], T], actor: str = "test") -> T:
        return self.store.write(use_case, actor=actor, now=self.now)

    def read(self, query: Callable[[Connection], T]) -> T:
        return self.store.read(query)

    # ---- catalog --------------------------------------------------------------------------------

    def product(
        self,
        sku: str,
        *,
        on_hand: int = 0,
        price: str = "10.00",
        lead_time_days: int | None = None,
        policy: BackorderPolicy | None = None,
    ) -> catalog.SavedProduct:
        spec = catalog.ProductSpec(sku, f"Product {sku}", Decimal(price), lead_time_days, policy)
        saved = self.run(lambda uow: catalog.put_product(uow, spec))
        if on_hand:
            self.adjust(sku, on_hand)
        return saved

    def customer(self, customer_id: str = "C1", tier: Tier = Tier.STANDARD) -> bool:
        spec = catalog.CustomerSpec(customer_id, f"Customer {customer_id}", f"{customer_id.lower()}@example.com", tier)
        return self.run(lambda uow: catalog.put_customer(uow, spec))

    def adjust(self, sku: str, delta: int, reason: str = "count") -> dict[str, Any]:
        return self.run(lambda uow: catalog.adjust_stock(uow, sku, delta, reason))

    def rule(self, *keys: RuleKey) -> None:
        self.run(lambda uow: catalog.set_allocation_rule(uow, [k.value for k in keys]))

    # ---- orders ---------------------------------------------------------------------------------

    def order(
        self,
        number: str,
        lines: Sequence[LineSpec],
        *,
        customer: str = "C1",
        channel: str = "web",
        ship_policy: ShipPolicy = ShipPolicy.PARTIAL,
        priority: int = 0,
        placed_at: datetime | None = None,
    ) -> Order:
        """Place an order (placed now unless told); each line as (sku, qty) or (sku, qty, unit price)."""
        new_lines = [orders.NewLine(x[0], x[1], Decimal(x[2]) if len(x) == 3 else None) for x in lines]
        cmd = orders.PlaceOrder(number, channel, customer, new_lines, ship_policy, placed_at or self.now, priority)
        return self.run(lambda uow: orders.place_order(uow, cmd)).order

    def cancel(
        self,
        number: str,
        reason: str = "customer asked",
        lines: list[tuple[int, int]] | None = None,
        code: CancelReason | None = None,
    ) -> Order:
        return self.run(lambda uow: orders.cancel_order(uow, number, reason, lines, reason_code=code))

    def prioritise(self, number: str, priority: int) -> Order:
        return self.run(lambda uow: orders.set_priority(uow, number, priority))

    def load(self, number: str) -> Order:
        """The order as stored now (its lines with their quantities)."""
        found = self.read(lambda conn: _load(conn, self.store, number))
        assert found is not None, f"no order {number}"
        return found

    # ---- replenishment and fulfilment ----------------------------------------------------------

    def purchase_order(
        self, number: str, lines: Sequence[tuple[str, int, date]], supplier: str = "Acme"
    ) -> replenishment.PurchaseOrder:
        po_lines = [replenishment.PoLine(sku, qty, when) for sku, qty, when in lines]
        return self.run(lambda uow: replenishment.create_po(uow, number, supplier, po_lines))

    def receive(self, grn: str, lines: Sequence[tuple[str, int]], po: str | None = None) -> replenishment.Receipt:
        got = [replenishment.ReceiptLine(sku, qty) for sku, qty in lines]
        return self.run(lambda uow: replenishment.receive_goods(uow, grn, got, po))

    def advance(self, shipment_id: int, carrier: str | None = None, tracking: str | None = None) -> Any:
        return self.run(lambda uow: fulfillment.advance_shipment(uow, shipment_id, carrier, tracking))


def _load(conn: Connection, store: Store, number: str) -> Order | None:
    """`load_order` wants a unit of work; a read-only one over this connection is enough to read."""
    uow = UnitOfWork(conn, store.config, actor="test", now=START)
    found = orders.load_order(uow, number)
    return None if found is None else found[0]


# ---- the same through HTTP ------------------------------------------------------------------------


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def minutes_after(base: datetime, minutes: int) -> str:
    """A placement time `minutes` after `base`, as the API takes it."""
    return rfc3339(base + timedelta(minutes=minutes))


def put_product(
    api: Any,
    sku: str,
    *,
    on_hand: int = 0,
    price: str = "10.00",
    lead_time_days: int | None = None,
    policy: dict[str, Any] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name or f"Product {sku}", "unit_price": price}
    if lead_time_days is not None:
        body["lead_time_days"] = lead_time_days
    if policy is not None:
        body["backorder_policy"] = policy
    r = api.put(f"/products/{sku}", body)
    assert r.status_code in (200, 201), r.text
    if on_hand:
        adjust(api, sku, on_hand)
    return dict(r.json())


def put_customer(api: Any, customer_id: str = "C1", tier: str = "standard") -> None:
    body = {"name": f"Customer {customer_id}", "email": f"{customer_id.lower()}@example.com", "tier": tier}
    r = api.put(f"/customers/{customer_id}", body)
    assert r.status_code in (200, 201), r.text


def adjust(api: Any, sku: str, delta: int, reason: str = "count") -> dict[str, Any]:
    r = api.post("/inventory/adjustments", {"sku": sku, "qty_delta": delta, "reason": reason})
    assert r.status_code == 201, r.text
    return dict(r.json())


def order_body(
    number: str,
    lines: Sequence[LineSpec],
    *,
    customer_id: str = "C1",
    channel: str = "web",
    placed_at: datetime | str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"order_number": number, "channel": channel, "customer_id": customer_id, "lines": []}
    for line in lines:
        item: dict[str, Any] = {"sku": line[0], "qty": line[1]}
        if len(line) == 3:
            item["unit_price"] = line[2]
        body["lines"].append(item)
    if placed_at is not None:
        body["placed_at"] = placed_at if isinstance(placed_at, str) else rfc3339(placed_at)
    return body | {k: v for k, v in extra.items() if v is not None}


def place(api: Any, number: str, lines: Sequence[LineSpec], **kw: Any) -> dict[str, Any]:
    """Place an order that must be accepted (201); keywords as `order_body` takes them."""
    r = api.post("/orders", order_body(number, lines, **kw))
    assert r.status_code == 201, r.text
    return dict(r.json())


def receive(api: Any, grn: str, lines: Sequence[tuple[str, int]], po_number: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"grn_number": grn, "lines": [{"sku": s, "qty": q} for s, q in lines]}
    if po_number is not None:
        body["po_number"] = po_number
    r = api.post("/receipts", body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def po_body(number: str, lines: Sequence[tuple[str, int, str]], supplier: str = "Acme") -> dict[str, Any]:
    return {
        "po_number": number,
        "supplier": supplier,
        "lines": [{"sku": s, "qty": q, "expected_date": d} for s, q, d in lines],
    }


def purchase_order(api: Any, number: str, lines: Sequence[tuple[str, int, str]], supplier: str = "Acme") -> Any:
    r = api.post("/purchase-orders", po_body(number, lines, supplier))
    assert r.status_code == 201, r.text
    return r.json()


def get_ok(api: Any, path: str, **params: Any) -> Any:
    r = api.get(path, params=params or None)
    assert r.status_code == 200, r.text
    return r.json()


def stock(api: Any, sku: str) -> dict[str, int]:
    return dict(get_ok(api, f"/products/{sku}")["stock"])


def order_json(api: Any, number: str) -> dict[str, Any]:
    return dict(get_ok(api, f"/orders/{number}"))


def shipments(api: Any, **params: Any) -> list[dict[str, Any]]:
    return list(get_ok(api, "/shipments", **params)["items"])
