"""Issue 8, item 1: the last unit, 50 concurrent orders through HTTP against 2 server processes.

Each trial makes a new SKU with one unit on the shelf and sends 50 orders for it at once (a barrier
releases them together), spread over both servers. Exactly one order gets the unit; the others are
refused (policy `never`) or wait in the queue (policy `always`); the counters never go negative.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import Shared
from .harness import Answer, Caller, all_problems, read, scaled, set_up

CLIENTS = 50


def run_trials(shared: Shared, trials: int, tag: str) -> dict[str, int]:
    c, key = shared.cluster, shared.key
    setup_caller = Caller(c.bases, key)
    set_up(setup_caller, [], {"C1": "standard"})
    callers = [Caller(c.bases, key, seed=i) for i in range(CLIENTS)]
    outcomes = {"placed_with_unit": 0, "refused": 0, "backordered": 0}
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            for t in range(trials):
                sku, mode = f"LAST-{tag}-{t:04d}", ("never", "always")[t % 2]
                r = setup_caller.put(
                    f"/products/{sku}", {"name": sku, "unit_price": "5.00", "backorder_policy": {"mode": mode}}
                )
                assert r.status == 201, r.body
                r = setup_caller.post("/inventory/adjustments", {"sku": sku, "qty_delta": 1, "reason": "count"})
                assert r.status == 201, r.body
                gate = threading.Barrier(CLIENTS, timeout=30)

                def place(i: int, sku: str = sku, gate: threading.Barrier = gate) -> Answer:
                    body = {
                        "order_number": f"{sku}-SO-{i:02d}",
                        "channel": "web",
                        "customer_id": "C1",
                        "lines": [{"sku": sku, "qty": 1}],
                    }
                    gate.wait()
                    return callers[i].post("/orders", body)

                answers = list(pool.map(place, range(CLIENTS)))
                winners = [a for a in answers if a.status == 201 and a.body["lines"][0]["allocated_qty"] == 1]
                assert len(winners) == 1, f"trial {t} ({mode}): {len(winners)} orders got the last unit"
                if mode == "never":
                    assert sorted(a.status for a in answers) == [201] + [409] * (CLIENTS - 1), f"trial {t}"
                    outcomes["refused"] += CLIENTS - 1
                else:
                    assert [a.status for a in answers] == [201] * CLIENTS, f"trial {t}"
                    waiting = [a for a in answers if a.body["lines"][0]["backordered_qty"] == 1]
                    assert len(waiting) == CLIENTS - 1, f"trial {t}"
                    outcomes["backordered"] += CLIENTS - 1
                outcomes["placed_with_unit"] += 1
                stock = setup_caller.get(f"/products/{sku}").body["stock"]
                assert (stock["on_hand"], stock["allocated"], stock["available"]) == (1, 1, 0), stock
                assert stock["backordered"] == (CLIENTS - 1 if mode == "always" else 0), stock
    finally:
        for caller in [setup_caller, *callers]:
            caller.close()
    assert all_problems(c.url, outbox=False) == {}
    n_orders = read(
        c.url,
        lambda conn: conn.exec_driver_sql(
            "SELECT COUNT(*) FROM orders WHERE order_number LIKE %(p)s", {"p": f"LAST-{tag}-%"}
        ).scalar_one(),
    )
    assert n_orders == trials // 2 * CLIENTS + (trials - trials // 2) * 1
    return outcomes


def test_the_last_unit_goes_to_exactly_one_of_50_orders_over_two_servers(shared: Shared) -> None:
    outcomes = run_trials(shared, trials=2, tag="b")
    assert outcomes == {"placed_with_unit": 2, "refused": 49, "backordered": 49}


@pytest.mark.stress
def test_the_last_unit_200_trials(shared: Shared) -> None:
    trials = scaled(200)
    outcomes = run_trials(shared, trials=trials, tag="s")
    assert outcomes["placed_with_unit"] == trials
