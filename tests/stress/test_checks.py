"""The stress tests' checks can fail: a tampered history or ledger is reported (both stores)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from .harness import event_gaps, fifo_violations, invariant_violations


def history(api: Any) -> None:
    """Two lines wait for A (A-1 first); a receipt of 1 unit goes to A-1."""
    assert (
        api.put("/products/A", {"name": "A", "unit_price": "1.00", "backorder_policy": {"mode": "always"}}).status_code
        == 201
    )
    assert api.put("/customers/C", {"name": "C", "email": "c@example.com", "tier": "gold"}).status_code == 201
    for n, qty in (("SO-1", 2), ("SO-2", 1)):
        r = api.post(
            "/orders", {"order_number": n, "channel": "web", "customer_id": "C", "lines": [{"sku": "A", "qty": qty}]}
        )
        assert r.status_code == 201, r.text
    r = api.post("/receipts", {"grn_number": "G1", "lines": [{"sku": "A", "qty": 1}]})
    assert r.json()["allocations"] == [{"order_number": "SO-1", "line_no": 1, "sku": "A", "qty": 1}]


def checks(api: Any) -> tuple[list[str], list[str], list[str]]:
    return api.store.read(lambda c: (invariant_violations(c), fifo_violations(c), event_gaps(c)))


def test_an_honest_history_passes_every_check(api: Any) -> None:
    history(api)
    assert checks(api) == ([], [], [])


def test_a_receipt_that_skipped_the_head_of_the_queue_is_a_fifo_violation(api: Any) -> None:
    history(api)
    api.store.write(
        lambda uow: uow.conn.execute(text("UPDATE events SET order_number = 'SO-2' WHERE type = 'allocated'"))
    )
    _, fifo, gaps = checks(api)
    assert fifo == ["A: ('SO-2', 1) got units at " + fifo[0].split(" got units at ")[1]]
    assert "ahead still wait" in fifo[0] and "('SO-1', 1)" in fifo[0]
    assert gaps  # the allocation rows no longer match the history


def test_a_doubled_allocation_and_a_ledger_gap_are_invariant_violations(api: Any) -> None:
    history(api)

    def tamper(uow: Any) -> None:
        c = uow.conn
        c.execute(
            text(
                "INSERT INTO allocations (line_id, sku, qty, source, at) "
                "SELECT line_id, sku, qty, source, at FROM allocations"
            )
        )
        c.execute(text("UPDATE products SET on_hand = on_hand + 1 WHERE sku = 'A'"))

    api.store.write(tamper)
    bad, _, _ = checks(api)
    assert any("allocation lost or doubled" in b and "SO-1/1" in b for b in bad), bad
    assert "A: on hand 2 != sum of stock movements 1" in bad
    assert "A: 1 units available while 2 wait" in bad
