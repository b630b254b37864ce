"""SQLite, the embedded default, under 8 concurrent writers: no "database is locked" reaches a client.

Two shapes, each placing orders, receiving goods, cancelling units and adjusting stock on 4 SKUs:
8 OS processes, each with its own Store (engine) on the same file and the real app in process; and
8 threads through one real `oms serve`. Writers take BEGIN IMMEDIATE and wait (busy_timeout) for
the write lock; Store.write retries a transaction SQLite still reports as locked. Afterwards the
engine's invariants hold. `make test` runs a bounded version; `make stress` the long one
(OMS_STRESS_SCALE scales the operations per writer).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from oms.access.keys import create_key
from oms.domain.access import Role
from oms.store.db import Store, make_engine
from oms.store.migrate import upgrade
from tests.processes import stop_process

WRITERS = 8
SKUS = ["S-1", "S-2", "S-3", "S-4"]
CUSTOMERS = ["C-1", "C-2"]
SCALE = float(os.environ.get("OMS_STRESS_SCALE", "1"))
EXPECTED = {200, 201, 404, 409}  # 404: a cancel of an order not yet placed; 409: refused adjustment or cancel
TIME_LIMIT_S = 600.0


def set_up(url: str) -> str:
    upgrade(url)
    store = Store(make_engine(url))
    token = store.write(lambda uow: create_key(uow.conn, Role.ADMIN, "writers"))
    from fastapi.testclient import TestClient

    from oms.app import create_app

    with TestClient(create_app(store, rate_limit_per_minute=0)) as client:
        h = {"Authorization": f"Bearer {token}"}
        for sku in SKUS:
            body = {"name": sku, "unit_price": "4.00", "backorder_policy": {"mode": "always"}}
            assert client.put(f"/api/v1/products/{sku}", json=body, headers=h).status_code == 201
        for cid in CUSTOMERS:
            body = {"name": cid, "email": f"{cid.lower()}@example.com"}
            assert client.put(f"/api/v1/customers/{cid}", json=body, headers=h).status_code == 201
    store.engine.dispose()
    return token


def operations(writer: int, n: int) -> list[tuple[str, str, dict[str, Any]]]:
    """A writer's fixed mix: half orders, then receipts, cancels and adjustments."""
    rng = random.Random(1000 + writer)
    ops: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(n):
        kind = rng.choices(["order", "receipt", "cancel", "adjust"], weights=[5, 2, 2, 1])[0]
        if kind == "order":
            lines = [{"sku": s, "qty": rng.randint(1, 3)} for s in rng.sample(SKUS, rng.randint(1, 2))]
            body = {"order_number": f"W{writer}-{i}", "channel": "web", "customer_id": rng.choice(CUSTOMERS)}
            ops.append(("POST", "/api/v1/orders", {**body, "lines": lines}))
        elif kind == "receipt":
            lines = [{"sku": rng.choice(SKUS), "qty": rng.randint(1, 6)}]
            ops.append(("POST", "/api/v1/receipts", {"grn_number": f"G{writer}-{i}", "lines": lines}))
        elif kind == "cancel":
            target = f"W{writer}-{rng.randrange(max(i, 1))}"
            body = {"reason": "changed mind", "lines": [{"line_no": 1, "qty": 1}]}
            ops.append(("POST", f"/api/v1/orders/{target}/cancel", body))
        else:
            body = {"sku": rng.choice(SKUS), "qty_delta": rng.choice([-2, -1, 1, 2]), "reason": "count"}
            ops.append(("POST", "/api/v1/inventory/adjustments", body))
    return ops


def _tally(status: int, text: str, out: Counter[str]) -> None:
    out[str(status)] += 1
    if "database is locked" in text or "locked" in text.lower():
        out["locked"] += 1


def process_writer(url: str, token: str, writer: int, n: int, queue: Any) -> None:
    """One OS process: its own engine on the file, the real app in process, n operations."""
    from fastapi.testclient import TestClient

    from oms.app import create_app

    out: Counter[str] = Counter()
    store = Store(make_engine(url))
    try:
        with TestClient(create_app(store, rate_limit_per_minute=0), raise_server_exceptions=False) as client:
            h = {"Authorization": f"Bearer {token}"}
            for method, path, body in operations(writer, n):
                r = client.request(method, path, json=body, headers=h)
                _tally(r.status_code, r.text, out)
    except Exception as exc:  # reported to the parent, which fails the test with it
        out[f"crash: {exc!r}"] += 1
    finally:
        store.engine.dispose()
        queue.put(dict(out))


def violations(conn: Connection) -> list[str]:
    """The engine's invariants, read with plain SQL."""

    def rows(sql: str) -> list[Any]:
        return list(conn.exec_driver_sql(sql).all())

    found = [f"on_hand {r[1]} != movements {r[2]} for {r[0]}" for r in rows(
        "SELECT p.sku, p.on_hand, (SELECT coalesce(sum(qty_delta), 0) FROM stock_movements m WHERE m.sku = p.sku)"
        " FROM products p") if r[1] != r[2]]  # fmt: skip
    found += [f"allocated out of bounds for {r[0]}: {r[1]} of {r[2]}" for r in rows(
        "SELECT sku, allocated, on_hand FROM products WHERE allocated < 0 OR allocated > on_hand")]  # fmt: skip
    found += [f"{r[0]} has {r[1]} available while lines wait" for r in rows(
        "SELECT sku, on_hand - allocated FROM products p WHERE on_hand > allocated AND EXISTS"
        " (SELECT 1 FROM order_lines l WHERE l.sku = p.sku AND l.backordered_qty > 0)")]  # fmt: skip
    found += [f"line {r[0]} units do not add up" for r in rows(
        "SELECT id FROM order_lines WHERE qty != allocated_qty + backordered_qty + shipped_qty + cancelled_qty"
        " OR allocated_qty < 0 OR backordered_qty < 0 OR cancelled_qty < 0")]  # fmt: skip
    found += [f"counters of {r[0]} disagree with its lines" for r in rows(
        "SELECT p.sku FROM products p WHERE p.allocated != (SELECT coalesce(sum(allocated_qty), 0) FROM order_lines l"
        " WHERE l.sku = p.sku) OR p.backordered != (SELECT coalesce(sum(backordered_qty), 0) FROM order_lines l"
        " WHERE l.sku = p.sku)")]  # fmt: skip
    return found


def check(url: str, tally: Counter[str], expected_ops: int) -> dict[str, Any]:
    crashes = [k for k in tally if k.startswith("crash")]
    assert crashes == [], crashes
    assert tally["locked"] == 0, tally
    statuses = {int(k) for k in tally if k.isdigit()}
    assert statuses <= EXPECTED, tally
    assert sum(v for k, v in tally.items() if k.isdigit()) == expected_ops
    assert tally["201"] > expected_ops // 3, tally  # most orders and receipts went through
    store = Store(make_engine(url))
    try:
        with store.engine.connect() as conn:
            problems = violations(conn)
            orders = conn.exec_driver_sql("SELECT count(*) FROM orders").scalar_one()
            receipts = conn.exec_driver_sql("SELECT count(*) FROM receipts").scalar_one()
    finally:
        store.engine.dispose()
    assert problems == [], problems[:20]
    return {"orders": orders, "receipts": receipts, **tally}


def run_processes(tmp_path: Path, per_writer: int) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path / 'writers.db'}"
    token = set_up(url)
    ctx = multiprocessing.get_context("fork")  # the parent has imported everything: no 8 cold starts
    queue = ctx.Queue()
    procs = [ctx.Process(target=process_writer, args=(url, token, w, per_writer, queue)) for w in range(WRITERS)]
    started = time.monotonic()
    for p in procs:
        p.start()
    tally: Counter[str] = Counter()
    try:
        for _ in procs:
            tally.update(queue.get(timeout=TIME_LIMIT_S))
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    result = check(url, tally, WRITERS * per_writer)
    return {**result, "seconds": round(time.monotonic() - started, 1)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_threads_through_a_server(tmp_path: Path, per_writer: int) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    token = set_up(url)
    port = _free_port()
    env = {
        **os.environ,
        "OMS_DATABASE_URL": url,
        "OMS_MAIL_DIR": str(tmp_path / "mail"),
        "OMS_RATE_LIMIT_PER_MINUTE": "0",
    }
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "oms"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    tally: Counter[str] = Counter()
    lock = threading.Lock()

    def call(method: str, path: str, body: Any) -> tuple[int, str]:
        data = json.dumps(body).encode()
        req = urllib.request.Request(base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def writer(w: int) -> None:
        mine: Counter[str] = Counter()
        try:
            for method, path, body in operations(w, per_writer):
                status, text = call(method, path, body)
                _tally(status, text, mine)
        except Exception as exc:
            mine[f"crash: {exc!r}"] += 1
        with lock:
            tally.update(mine)

    try:
        deadline = time.monotonic() + 120  # a cold start on a loaded 2-core machine can take a while
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        started = time.monotonic()
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIME_LIMIT_S)
        seconds = round(time.monotonic() - started, 1)
    finally:
        stop_process(proc)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    return {**check(url, tally, WRITERS * per_writer), "seconds": seconds}


def report(name: str, result: dict[str, Any]) -> None:
    """One line per run for docs/reliability.md (shown with pytest -s, and kept in test-artifacts/)."""
    line = json.dumps({"run": name, **result}, sort_keys=True)
    print(line)  # noqa: T201
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts" / "stress"
    artifacts.mkdir(parents=True, exist_ok=True)
    with (artifacts / "sqlite_writers.jsonl").open("a") as f:
        f.write(line + "\n")


RUNS: dict[str, Callable[[Path, int], dict[str, Any]]] = {
    "processes": run_processes,
    "threads-through-oms-serve": run_threads_through_a_server,
}


@pytest.mark.parametrize("shape", list(RUNS))
def test_eight_sqlite_writers_see_no_locked_errors_and_the_invariants_hold(tmp_path, shape):
    result = RUNS[shape](tmp_path, 12)
    assert result["orders"] > 0 and result["receipts"] > 0


@pytest.mark.stress
@pytest.mark.parametrize("shape", list(RUNS))
def test_eight_sqlite_writers_at_scale(tmp_path, shape):
    per_writer = max(12, int(250 * SCALE))
    result = RUNS[shape](tmp_path, per_writer)
    report(f"sqlite-writers-{shape}", {"per_writer": per_writer, **result})
