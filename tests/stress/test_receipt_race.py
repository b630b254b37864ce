"""Issue 8, item 3: receipts racing new orders of the same SKU.

Each run makes a SKU with a few lines already waiting, then sends new orders for it and goods
receipts for it at the same moment (a barrier releases them), over both servers. Whatever the
interleaving, no line may get units while a line ahead of it in the rule's order still waits
afterwards, and no new order may take stock while older lines wait: checked by replaying the SKU's
history (harness.fifo_violations), and directly on each receipt's answer.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import Shared
from .harness import Answer, Caller, all_problems, fifo_violations, read, scaled, set_up

TIERS = {"RC-STD": "standard", "RC-GLD": "gold"}
ORDERS, RECEIPTS = 12, 4


def race(shared: Shared, tag: str, runs: int) -> int:
    c = shared.cluster
    setup = Caller(c.bases, shared.key)
    set_up(setup, [], TIERS)
    callers = [Caller(c.bases, shared.key, seed=i) for i in range(ORDERS + RECEIPTS)]
    filled = 0
    try:
        with ThreadPoolExecutor(ORDERS + RECEIPTS) as pool:
            for run in range(runs):
                rng = random.Random(run)
                sku = f"RACE-{tag}-{run:04d}"
                r = setup.put(f"/products/{sku}", {"name": sku, "unit_price": "3.00", "lead_time_days": 5})
                assert r.status == 201, r.body
                for n in range(3):  # lines already waiting
                    body = {
                        "order_number": f"{sku}-OLD-{n}",
                        "channel": "web",
                        "customer_id": rng.choice(sorted(TIERS)),
                        "lines": [{"sku": sku, "qty": rng.randint(1, 3)}],
                    }
                    assert setup.post("/orders", body).status == 201
                gate = threading.Barrier(ORDERS + RECEIPTS, timeout=60)

                def send(i: int, sku: str = sku, gate: threading.Barrier = gate, rng: random.Random = rng) -> Answer:
                    if i < ORDERS:
                        path, body = (
                            "/orders",
                            {
                                "order_number": f"{sku}-NEW-{i:02d}",
                                "channel": "web",
                                "customer_id": sorted(TIERS)[i % 2],
                                "priority": 1 if i % 5 == 0 else 0,
                                "lines": [{"sku": sku, "qty": 1 + i % 3}],
                            },
                        )
                    else:
                        path, body = (
                            "/receipts",
                            {"grn_number": f"{sku}-GRN-{i}", "lines": [{"sku": sku, "qty": 2 + i % 4}]},
                        )
                    gate.wait()
                    return callers[i].post(path, body)

                answers = list(pool.map(send, range(ORDERS + RECEIPTS)))
                assert {a.status for a in answers} == {201}, [a.body for a in answers if a.status != 201]
                filled += sum(x["qty"] for a in answers[ORDERS:] for x in a.body["allocations"])
                # Receipts only ever fill: each gave all it received while lines waited, or left the rest unallocated.
                for a in answers[ORDERS:]:
                    received = a.body["lines"][0]["qty"]
                    spare = sum(x["qty"] for x in a.body["unallocated"])
                    assert spare == 0 or received == spare + sum(x["qty"] for x in a.body["allocations"])
    finally:
        for caller in [setup, *callers]:
            caller.close()
    assert read(c.url, fifo_violations) == []
    assert all_problems(c.url, outbox=False) == {}
    return filled


def test_receipts_racing_new_orders_never_fill_a_newer_line_first(shared: Shared) -> None:
    assert race(shared, "b", runs=3) > 0


@pytest.mark.stress
def test_receipts_racing_new_orders_100_runs(shared: Shared) -> None:
    assert race(shared, "s", runs=scaled(100)) > 0
