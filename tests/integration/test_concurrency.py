"""Concurrent writers on one store: the last unit goes to exactly one order, and nothing is lost."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from sqlalchemy import text

from oms.catalog import use_cases as catalog
from oms.domain.allocation import Tier
from oms.domain.errors import InsufficientStock
from oms.domain.policy import BackorderMode, BackorderPolicy
from oms.orders import use_cases as orders
from oms.replenishment import use_cases as replenishment
from oms.store.uow import UnitOfWork

WRITERS = 12


def _setup(store, mode: BackorderMode) -> None:
    def go(ctx: UnitOfWork) -> None:
        catalog.put_product(ctx, catalog.ProductSpec("LAST", "Last unit", Decimal("10.00"), 7, BackorderPolicy(mode)))
        catalog.put_customer(ctx, catalog.CustomerSpec("C1", "C", "c@example.com", Tier.STANDARD))
        catalog.adjust_stock(ctx, "LAST", 1, "count")

    store.write(go)


def _place(store, n: int) -> str:
    cmd = orders.PlaceOrder(f"SO-{n}", "web", "C1", [orders.NewLine("LAST", 1)])
    try:
        store.write(lambda uow: orders.place_order(uow, cmd))
        return "placed"
    except InsufficientStock:
        return "refused"


def _scalar(store, sql: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_the_last_unit_goes_to_exactly_one_of_many_concurrent_orders(store):
    _setup(store, BackorderMode.NEVER)
    with ThreadPoolExecutor(WRITERS) as pool:
        outcomes = list(pool.map(lambda n: _place(store, n), range(WRITERS)))
    assert outcomes.count("placed") == 1
    assert outcomes.count("refused") == WRITERS - 1
    assert _scalar(store, "SELECT allocated FROM products WHERE sku = 'LAST'") == 1
    assert _scalar(store, "SELECT count(*) FROM orders") == 1


def test_concurrent_orders_queue_up_and_a_receipt_fills_them_in_placement_order(store):
    _setup(store, BackorderMode.ALWAYS)
    with ThreadPoolExecutor(WRITERS) as pool:
        assert set(pool.map(lambda n: _place(store, n), range(WRITERS))) == {"placed"}
    assert _scalar(store, "SELECT allocated FROM products WHERE sku = 'LAST'") == 1
    assert _scalar(store, "SELECT backordered FROM products WHERE sku = 'LAST'") == WRITERS - 1
    assert _scalar(store, "SELECT sum(backordered_qty) FROM order_lines") == WRITERS - 1

    with store.engine.connect() as conn:
        queue = [
            r[0]
            for r in conn.execute(
                text("SELECT order_number FROM order_lines WHERE backordered_qty > 0 ORDER BY placed_at, order_number")
            )
        ]
    assert len(queue) == WRITERS - 1

    result = store.write(
        lambda uow: replenishment.receive_goods(uow, "GRN-1", [replenishment.ReceiptLine("LAST", 5)])
    ).result
    # The five oldest waiting lines, in queue order, and nobody else.
    assert [a["order_number"] for a in result["allocations"]] == queue[:5]
    assert _scalar(store, "SELECT backordered FROM products WHERE sku = 'LAST'") == WRITERS - 6
    assert _scalar(store, "SELECT on_hand - allocated FROM products WHERE sku = 'LAST'") == 0


def test_concurrent_retries_of_one_order_number_create_one_order(store):
    _setup(store, BackorderMode.ALWAYS)
    cmd = orders.PlaceOrder("SO-SAME", "web", "C1", [orders.NewLine("LAST", 2)], body={"same": 1})

    def place(_: int) -> bool:
        return store.write(lambda uow: orders.place_order(uow, cmd)).created

    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(place, range(8)))
    assert created.count(True) == 1
    assert _scalar(store, "SELECT count(*) FROM orders") == 1
    assert _scalar(store, "SELECT allocated + backordered FROM products WHERE sku = 'LAST'") == 2


def test_concurrent_retries_of_one_grn_book_it_once_and_all_get_its_answer(store):
    _setup(store, BackorderMode.ALWAYS)
    for n in range(4):
        _place(store, n)  # one takes the unit on hand, three wait
    lines = [replenishment.ReceiptLine("LAST", 3)]

    def receive(_: int) -> replenishment.Receipt:
        return store.write(lambda uow: replenishment.receive_goods(uow, "GRN-SAME", lines, body={"same": 1}))

    with ThreadPoolExecutor(6) as pool:
        receipts = list(pool.map(receive, range(6)))
    assert [r.created for r in receipts].count(True) == 1
    assert len({str(r.result) for r in receipts}) == 1  # the replays answer what the booking did
    assert _scalar(store, "SELECT on_hand FROM products WHERE sku = 'LAST'") == 4
    assert _scalar(store, "SELECT count(*) FROM allocations WHERE source = 'receipt'") == 3
