"""The benchmark generator makes a store the engine would have made, and the floor allocates as the engine does."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy import text

from oms.bench.floor import allocations_of, receive_floor
from oms.bench.generate import ETA_SKU, Spec, generate
from oms.domain.allocation import DEFAULT_RULE, sort_fields
from oms.engine import recompute_etas
from oms.replenishment.use_cases import ReceiptLine, receive_goods
from oms.store.db import Store
from oms.store.uow import UnitOfWork

SPEC = Spec(lines=600, skus=40, customers=50, eta_lines=60, eta_po_lines=5, stocked=5, seed=3)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _rows(store: Store, sql: str) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_generated_store_keeps_the_engine_invariants(store: Store) -> None:
    counts = generate(store, SPEC, now=NOW)

    assert counts["order_lines"] == 600
    assert counts["products"] == 40 + 1 + 5
    assert _rows(store, "SELECT COUNT(*) FROM order_lines WHERE backordered_qty > 0") == [(600,)]
    assert _rows(store, f"SELECT COUNT(*) FROM order_lines WHERE sku = '{ETA_SKU}'") == [(60,)]
    assert _rows(store, f"SELECT COUNT(*) FROM po_lines WHERE sku = '{ETA_SKU}'") == [(5,)]
    # Counters are the sums of the lines: nothing allocated, every unit of a line waiting.
    mismatched = _rows(
        store,
        "SELECT p.sku FROM products p LEFT JOIN (SELECT sku, SUM(allocated_qty) a, SUM(backordered_qty) b "
        "FROM order_lines GROUP BY sku) l ON l.sku = p.sku "
        "WHERE p.allocated != COALESCE(l.a, 0) OR p.backordered != COALESCE(l.b, 0)",
    )
    assert mismatched == []
    # No idle stock: a SKU with waiting lines has nothing available.
    assert _rows(store, "SELECT sku FROM products WHERE backordered > 0 AND on_hand - allocated > 0") == []
    # On hand is the sum of stock movements; every tier and channel is present.
    assert (
        _rows(
            store,
            "SELECT p.sku FROM products p LEFT JOIN (SELECT sku, SUM(qty_delta) n FROM stock_movements GROUP BY sku) m "
            "ON m.sku = p.sku WHERE p.on_hand != COALESCE(m.n, 0)",
        )
        == []
    )
    assert _rows(store, "SELECT COUNT(DISTINCT tier) FROM customers") == [(4,)]
    assert _rows(store, "SELECT COUNT(DISTINCT channel) FROM order_lines") == [(5,)]
    # Each order's value is the sum of its lines (cents), and the lines carry it.
    assert (
        _rows(
            store,
            "SELECT o.id FROM orders o JOIN (SELECT order_id, SUM(qty * unit_price) v FROM order_lines "
            "GROUP BY order_id) l ON l.order_id = o.id WHERE l.v != o.order_value",
        )
        == []
    )


def test_generated_etas_are_the_engines(store: Store) -> None:
    generate(store, SPEC, now=NOW)
    before = _rows(store, "SELECT id, eta, eta_basis FROM order_lines ORDER BY id")

    with store.engine.connect() as conn, conn.begin():
        recompute_etas(UnitOfWork(conn, store.config, now=NOW), [f"SKU-{i:05d}" for i in range(1, 41)] + [ETA_SKU])
        after = [tuple(r) for r in conn.execute(text("SELECT id, eta, eta_basis FROM order_lines ORDER BY id"))]
        conn.rollback()

    assert after == before
    assert {basis.split(":")[0] for _, _, basis in before} >= {"po", "lead_time"}


def test_floor_allocates_exactly_as_the_service(store: Store) -> None:
    generate(store, SPEC, now=NOW)
    rows = _rows(store, "SELECT sku, backordered FROM products WHERE backordered > 1 ORDER BY sku")
    batch = {sku: n // 2 for sku, n in random.Random(5).sample(rows, 12)}
    results = {}
    for name in ("service", "floor"):
        with store.engine.connect() as conn:
            tx = conn.begin()
            if name == "service":
                receive_goods(
                    UnitOfWork(conn, store.config, now=NOW),
                    "GRN-T",
                    [ReceiptLine(s, q) for s, q in sorted(batch.items())],
                )
            else:
                receive_floor(conn, batch, "GRN-T", NOW, sort_fields(DEFAULT_RULE))
            counters = [
                tuple(r)
                for r in conn.execute(text("SELECT sku, on_hand, allocated, backordered FROM products ORDER BY sku"))
            ]
            results[name] = (allocations_of(conn, "GRN-T"), counters)
            tx.rollback()

    allocated, counters = results["service"]
    assert results["floor"] == results["service"]
    assert sum(q for _, q in allocated) == sum(batch.values())  # half of each queue: every unit finds a line
    assert len(allocated) >= len(batch)
    by_sku = {sku: (on_hand, alloc, back) for sku, on_hand, alloc, back in counters}
    for sku, qty in batch.items():
        assert by_sku[sku][0] == qty and by_sku[sku][1] == qty


def test_generated_store_keeps_the_declared_queue_indexes(store: Store) -> None:
    from sqlalchemy import inspect

    from oms.store.tables import order_lines

    generate(store, SPEC, now=NOW)

    found = {ix["name"] for ix in inspect(store.engine).get_indexes("order_lines")}
    assert {ix.name for ix in order_lines.indexes} <= found
    assert "ix_order_lines_pending_priority" in found
