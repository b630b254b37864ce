"""Issue 8, item 2: a soak on PostgreSQL with 2 server processes and 2 workers.

Clients place orders over 20 SKUs while goods are received, orders cancelled and shipments
advanced at the same time. Afterwards every invariant of the engine holds, the queue was served in
rule order at every step (replayed from the event history), every notification was delivered, and
the run's figures (latency p50/p99, Store.write retries by cause) are printed and written to
test-artifacts/stress/soak-<size>.json.
"""

from __future__ import annotations

import json
import time

import pytest

from .conftest import Shared
from .harness import (
    Caller,
    Stats,
    all_problems,
    read,
    run_load,
    scaled,
    set_up,
    wait_outbox_delivered,
    write_artifact,
)

TIERS = {"CU-STD": "standard", "CU-SIL": "silver", "CU-GLD": "gold", "CU-PLT": "platinum"}


def soak(shared: Shared, tag: str, clients: int, orders_per_client: int) -> dict[str, object]:
    c = shared.cluster
    skus = [f"SOAK-{tag}-{i:02d}" for i in range(20)]
    setup = Caller(c.bases, shared.key)
    set_up(setup, skus, TIERS)
    setup.close()
    retries_before = c.retries()
    stats = Stats()
    result = run_load(c.bases, shared.key, f"SK{tag}", skus, list(TIERS), clients, orders_per_client, stats, seed=7)
    began = time.monotonic()
    assert wait_outbox_delivered(c.url, 60 + result.seconds), "the workers did not deliver the outbox in time"
    drained = time.monotonic() - began
    problems = all_problems(c.url, shared.hook, c.mail_dir)
    assert problems == {}, json.dumps(problems, indent=1)[:6000]

    def mine(conn: object) -> tuple[int, int, int]:
        q = conn.exec_driver_sql  # type: ignore[attr-defined]
        return (
            q("SELECT COUNT(*) FROM orders WHERE order_number LIKE %(p)s", {"p": f"SK{tag}-%"}).scalar_one(),
            q("SELECT COUNT(*) FROM receipts WHERE grn_number LIKE %(p)s", {"p": f"SK{tag}-GRN-%"}).scalar_one(),
            q(
                "SELECT COALESCE(SUM(qty_delta), 0) FROM stock_movements WHERE kind = 'receipt' AND ref LIKE %(p)s",
                {"p": f"SK{tag}-GRN-%"},
            ).scalar_one(),
        )

    n_orders, n_receipts, received = read(c.url, mine)
    assert n_orders == len(result.orders)  # every accepted order stored once, nothing else
    assert len(result.orders) + result.refused == clients * orders_per_client
    assert n_receipts == len(result.receipts)
    assert received == sum(x["qty"] for r in result.receipts.values() for x in r["lines"])
    retries = c.retries() - retries_before
    figures: dict[str, object] = {
        "clients": clients,
        "orders_per_client": orders_per_client,
        "skus": len(skus),
        "servers": len(c.servers),
        "workers": len(c.workers),
        "orders_accepted": len(result.orders),
        "orders_refused": result.refused,
        "receipts": len(result.receipts),
        "cancels": dict(result.cancels),
        "shipment_steps": dict(result.steps),
        "load_seconds": round(result.seconds, 1),
        "outbox_drain_seconds": round(drained, 1),
        "orders_per_second": round(len(result.orders) / result.seconds, 1),
        "store_write_retries": dict(retries),
        "latency": stats.summary(),
        "fifo_violations": 0,
        "invariant_violations": 0,
    }
    path = write_artifact(f"soak-{clients}x{orders_per_client}.json", figures)
    print(f"\nsoak {clients}x{orders_per_client}: {json.dumps(figures)}\n-> {path}")  # noqa: T201 (the run's figures)
    return figures


def test_a_bounded_soak_keeps_every_invariant_and_serves_queues_in_rule_order(shared: Shared) -> None:
    figures = soak(shared, "b", clients=8, orders_per_client=20)
    assert figures["orders_accepted"] == 160


@pytest.mark.stress
def test_the_soak_32_clients_x_500_orders(shared: Shared) -> None:
    soak(shared, "s", clients=32, orders_per_client=scaled(500))
