"""Issue 3, "scale beyond one machine": 2 API processes + 2 workers end where one process ends.

A scripted workload (fixed seed) of orders, receipts, stock adjustments, cancellations and shipment
steps runs twice: through 2 `oms serve` processes and 2 `oms worker` processes on one PostgreSQL
(requests of a round sent concurrently, spread over both servers), and through a single process
(the app in this process, requests one at a time, the outbox drained by one worker). The final state
must be equal: each line's units, each SKU's stock, order statuses, shipments, allocation units by
source, events and outbox messages per kind.

Where order matters it is fixed: the script is a list of rounds, and the requests of one round touch
pairwise disjoint SKUs and orders, so they commute; rounds run one after the other.
"""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from oms.app import create_app
from oms.store.db import Store, make_engine
from oms.worker import Worker, WorkerConfig

from .conftest import SHARED_RULE, Shared
from .harness import (
    Caller,
    Hook,
    admin_key,
    all_problems,
    drop_database,
    fresh_database,
    read,
    scaled,
    set_up,
    wait_outbox_delivered,
)

TIERS = {"SC-STD": "standard", "SC-GLD": "gold", "SC-PLT": "platinum"}
Op = tuple[str, str, Any]  # method, path, body; ("STEP", order number, n): advance its open shipments n steps


def script(tag: str, rounds: int, seed: int = 2026) -> tuple[list[str], list[Op], list[list[Op]]]:
    """SKUs, the set-up requests, and the rounds of the workload."""
    rng = random.Random(seed)
    skus = [f"SC{tag}-{i:02d}" for i in range(12)]
    setup: list[Op] = [
        ("POST", "/inventory/adjustments", {"sku": s, "qty_delta": rng.randint(1, 6), "reason": "count"})
        for s in skus[::2]
    ]
    orders: dict[str, list[str]] = {}
    out: list[list[Op]] = []
    grn = 0
    for r in range(rounds):
        free = set(skus)
        ops: list[Op] = []
        for _ in range(rng.randint(4, 7)):
            kind = rng.choice(["place", "place", "receive", "adjust", "cancel", "step", "step"])
            if kind in ("cancel", "step"):
                candidates = [n for n, s in orders.items() if set(s) <= free and n not in {o[1] for o in ops}]
                if not candidates:
                    continue
                number = rng.choice(sorted(candidates))
                free -= set(orders[number])
                if kind == "step":
                    ops.append(("STEP", number, rng.randint(1, 3)))
                else:
                    body: dict[str, Any] = {"reason": "customer asked"}
                    if rng.random() < 0.5:
                        body["lines"] = [{"line_no": 1, "qty": 1}]
                    ops.append(("POST", f"/orders/{number}/cancel", body))
                continue
            want = rng.sample(sorted(free), min(len(free), rng.randint(1, 2)))
            if not want:
                continue
            free -= set(want)
            if kind == "place":
                number = f"SC{tag}-SO-{r:03d}-{len(ops)}"
                orders[number] = sorted(want)
                ops.append(
                    (
                        "POST",
                        "/orders",
                        {
                            "order_number": number,
                            "channel": "web",
                            "customer_id": rng.choice(sorted(TIERS)),
                            "ship_policy": rng.choice(["partial", "partial", "complete"]),
                            "priority": rng.choice([0, 0, 0, 1]),
                            "lines": [{"sku": s, "qty": rng.randint(1, 4)} for s in sorted(want)],
                        },
                    )
                )
            elif kind == "receive":
                grn += 1
                lines = [{"sku": s, "qty": rng.randint(1, 7)} for s in sorted(want)]
                ops.append(("POST", "/receipts", {"grn_number": f"SC{tag}-GRN-{grn:04d}", "lines": lines}))
            else:
                ops.append(
                    (
                        "POST",
                        "/inventory/adjustments",
                        {"sku": want[0], "qty_delta": rng.randint(1, 3), "reason": "found"},
                    )
                )
        out.append(ops)
    return skus, setup, out


def apply(caller: Caller, op: Op) -> list[int]:
    """Send one scripted request; the statuses it got."""
    method, path, body = op
    if method != "STEP":
        return [caller.send(method, path, body).status]
    statuses = []
    ships = caller.get(f"/shipments?order_number={path}").body["items"]
    for s in sorted(ships, key=lambda s: sorted((x["line_no"], x["qty"]) for x in s["lines"])):
        status = s["status"]
        for _ in range(body):
            if status not in ("pick", "pack", "awaiting_shipment"):
                break
            step = {"carrier": "DHL", "tracking_number": f"T-{path}"} if status == "awaiting_shipment" else {}
            answer = caller.post(f"/shipments/{s['id']}/advance", step)
            statuses.append(answer.status)
            status = answer.body["status"]
    return statuses


def final_state(conn: Connection, tag: str) -> dict[str, Any]:
    """What both runs must agree on, for this script's SKUs and orders (ids and times left out)."""
    p = {"p": f"SC{tag}-%"}

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(r) for r in conn.execute(text(sql), p))

    return {
        "stock": rows("SELECT sku, on_hand, allocated, backordered FROM products WHERE sku LIKE :p"),
        "lines": rows(
            "SELECT order_number, line_no, sku, qty, allocated_qty, backordered_qty, shipped_qty, cancelled_qty, "
            "released_qty, eta FROM order_lines WHERE order_number LIKE :p"
        ),
        "orders": rows("SELECT order_number, status FROM orders WHERE order_number LIKE :p"),
        "shipments": Counter(
            rows(
                "SELECT s.order_number, s.status, l.line_no, l.qty FROM shipments s "
                "JOIN shipment_lines l ON l.shipment_id = s.id WHERE s.order_number LIKE :p"
            )
        ),
        "allocated_units": rows(
            "SELECT l.order_number, l.line_no, a.source, SUM(a.qty) FROM allocations a "
            "JOIN order_lines l ON l.id = a.line_id WHERE l.order_number LIKE :p "
            "GROUP BY l.order_number, l.line_no, a.source"
        ),
        "movements": rows(
            "SELECT sku, kind, SUM(qty_delta), COUNT(*) FROM stock_movements WHERE sku LIKE :p GROUP BY sku, kind"
        ),
        "events": Counter(rows("SELECT type, order_number FROM events WHERE order_number LIKE :p OR sku LIKE :p")),
        "outbox": Counter(rows("SELECT kind, event_type, order_number, status FROM outbox WHERE order_number LIKE :p")),
    }


def run_multi(shared: Shared, tag: str, setup: list[Op], rounds: list[list[Op]]) -> list[list[list[int]]]:
    c = shared.cluster
    callers = [Caller(c.bases, shared.key, seed=i) for i in range(10)]
    statuses: list[list[list[int]]] = []
    try:
        for op in setup:
            apply(callers[0], op)
        with ThreadPoolExecutor(8) as pool:
            for ops in rounds:
                statuses.append(list(pool.map(apply, callers[: len(ops)], ops)))
    finally:
        for caller in callers:
            caller.close()
    assert wait_outbox_delivered(c.url, 120), "the workers did not deliver the outbox in time"
    return statuses


def run_single(
    url: str, tag: str, setup: list[Op], rounds: list[list[Op]], skus: list[str], hook: Hook
) -> list[list[list[int]]]:
    store = Store(make_engine(url))
    key = admin_key(url)
    statuses: list[list[list[int]]] = []
    try:
        with TestClient(create_app(store, rate_limit_per_minute=0), raise_server_exceptions=False) as client:
            caller = Caller.over(client, key)
            set_up(caller, skus, TIERS, hook=hook, rule=list(SHARED_RULE), event_types=["allocated", "cancelled"])
            for op in setup:
                apply(caller, op)
            for ops in rounds:
                statuses.append([apply(caller, op) for op in ops])
        Worker(store, WorkerConfig(backoff_seconds=0.0, poll_seconds=0.05)).drain(max_batches=100_000)
    finally:
        store.engine.dispose()
    return statuses


def compare(shared: Shared, pg: str, tag: str, n_rounds: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    skus, setup, rounds = script(tag, n_rounds)
    caller = Caller(shared.cluster.bases, shared.key)
    set_up(caller, skus, TIERS)
    caller.close()
    multi = run_multi(shared, tag, setup, rounds)

    url = fresh_database(pg, f"single_{tag}")
    hook = Hook()
    monkeypatch.setenv("OMS_MAIL_DIR", str(tmp_path / "mail"))
    monkeypatch.delenv("OMS_SMTP_URL", raising=False)
    monkeypatch.setenv("OMS_WEBHOOK_ALLOW_PRIVATE", "1")  # the Hook listens on 127.0.0.1
    try:
        single = run_single(url, tag, setup, rounds, skus, hook)
        assert multi == single, "a request was answered differently"
        one, two = read(url, lambda c: final_state(c, tag)), read(shared.url, lambda c: final_state(c, tag))
        for part in one:
            assert two[part] == one[part], f"{part} differ between 2+2 processes and one process"
        # The comparison has substance: waiting, allocated, dispatched and cancelled units, and messages.
        assert sum(r[5] for r in one["lines"]) > 0 and sum(r[4] for r in one["lines"]) > 0
        assert sum(r[6] for r in one["lines"]) > 0 and sum(r[7] for r in one["lines"]) > 0
        assert {k[0] for k in one["outbox"]} == {"email", "webhook"}
        assert all_problems(url, hook, tmp_path / "mail") == {}
        assert all_problems(shared.url, shared.hook, shared.cluster.mail_dir) == {}
    finally:
        hook.close()
        drop_database(url)
    return sum(len(ops) for ops in rounds)


def test_two_servers_and_two_workers_end_where_one_process_ends(
    shared: Shared, stress_pg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert compare(shared, stress_pg, "b", 10, tmp_path, monkeypatch) >= 30


@pytest.mark.stress
def test_the_scaling_comparison_at_length(
    shared: Shared, stress_pg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compare(shared, stress_pg, "s", scaled(200), tmp_path, monkeypatch)
