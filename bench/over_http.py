"""Benchmarks through the HTTP API: uvicorn on loopback, keep-alive httpx clients."""

from __future__ import annotations

import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from oms.access.keys import create_key
from oms.bench.generate import ETA_SKU
from oms.domain.access import Role
from oms.store.db import Store

from .common import Result, console, pct, timed
from .in_store import _filters, grn_batch

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        out += [int(x) for x in task.read_text().split()]
    return out


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """uvicorn serving the app over one store; tracks the peak RSS of its serving processes."""

    def __init__(self, url: str, workers: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        env = os.environ | {"OMS_DATABASE_URL": url, "OMS_RATE_LIMIT_PER_MINUTE": "0"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "oms.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
            env=env,
            cwd=ROOT,
        )  # fmt: skip
        self.workers = workers
        self.peak_kb = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def serving_pids(self) -> list[int]:
        return _children(self.proc.pid) if self.workers > 1 else [self.proc.pid]

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            for pid in self.serving_pids():
                self.peak_kb = max(self.peak_kb, _status_kb(pid, "VmRSS"))

    def wait_ready(self, token: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the server exited")
            try:
                r = httpx.get(f"{self.base}/products?limit=1", headers={"Authorization": f"Bearer {token}"})
                if r.status_code == 200 and (self.workers == 1 or len(self.serving_pids()) >= self.workers):
                    self._sampler.start()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not answer within the timeout")

    def peak_mb(self) -> float:
        hwm = max((_status_kb(pid, "VmHWM") for pid in self.serving_pids()), default=0)
        return round(max(self.peak_kb, hwm) / 1024, 1)

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextmanager
def serving(url: str, workers: int, token: str) -> Iterator[Server]:
    server = Server(url, workers)
    try:
        server.wait_ready(token)
        yield server
    finally:
        server.stop()


def admin_token(store: Store) -> str:
    return store.write(lambda uow: create_key(uow.conn, Role.ADMIN, f"bench-{time.time_ns()}"))


# ---- order intake -------------------------------------------------------------------------------


def order_lines_for(rnd: random.Random, stocked: list[str], waiting: list[str]) -> list[str]:
    """Three distinct SKUs: mostly stocked ones (allocated now), a fifth from queues (back-ordered)."""
    out: list[str] = []
    while len(out) < 3:
        s = rnd.choice(waiting) if rnd.random() < 0.2 else rnd.choice(stocked)
        if s not in out:
            out.append(s)
    return out


def _skus(store: Store) -> tuple[list[str], list[str], list[str]]:
    with store.engine.connect() as conn:
        from sqlalchemy import text

        stocked = list(conn.execute(text("SELECT sku FROM products WHERE sku LIKE 'STK-%' ORDER BY sku")).scalars())
        waiting = list(
            conn.execute(text("SELECT sku FROM products WHERE sku LIKE 'SKU-%' ORDER BY sku LIMIT 2000")).scalars()
        )
        custs = list(conn.execute(text("SELECT customer_id FROM customers ORDER BY customer_id LIMIT 5000")).scalars())
    return stocked, waiting, custs


def run_load(clients: int, seconds: float, one: Callable[[int, int], bool]) -> tuple[int, int, float, list[float]]:
    """`clients` threads calling one(client, i) until the time is up; (ok, failed, elapsed, latencies)."""
    ok = [0] * clients
    bad = [0] * clients
    lat: list[list[float]] = [[] for _ in range(clients)]
    deadline = time.monotonic() + seconds

    def worker(c: int) -> None:
        i = 0
        while time.monotonic() < deadline and i < 1_000_000:
            t, good = timed(lambda: one(c, i))  # noqa: B023
            lat[c].append(t)
            if good:
                ok[c] += 1
            else:
                bad[c] += 1
            i += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    return sum(ok), sum(bad), time.monotonic() - started, [x for ls in lat for x in ls]


def intake_http(
    server: Server, token: str, store: Store, label: str, clients: int, seconds: float
) -> tuple[float, int]:
    stocked, waiting, custs = _skus(store)
    rnds = [random.Random(c) for c in range(clients)]
    http = [
        httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        for _ in range(clients)
    ]

    def one(c: int, i: int) -> bool:
        rnd = rnds[c]
        body = {
            "order_number": f"{label}-{c}-{i}",
            "channel": "web",
            "customer_id": rnd.choice(custs),
            "lines": [{"sku": s, "qty": rnd.randint(1, 3)} for s in order_lines_for(rnd, stocked, waiting)],
        }
        return http[c].post("/orders", json=body).status_code == 201

    try:
        ok, bad, elapsed, _ = run_load(clients, seconds, one)
    finally:
        for h in http:
            h.close()
    return ok / elapsed, bad


def intake_raw(store: Store, url: str, label: str, clients: int, seconds: float) -> tuple[float, int]:
    """The same writes by hand, one transaction per order, through the raw driver."""
    stocked, waiting, custs = _skus(store)
    rnds = [random.Random(100 + c) for c in range(clients)]
    sqlite = url.startswith("sqlite")
    conns: list[Any] = []
    for _ in range(clients):
        if sqlite:
            c = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            c.execute("PRAGMA busy_timeout=30000")
            conns.append(c)
        else:
            conns.append(psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")))

    def one(c: int, i: int) -> bool:
        rnd = rnds[c]
        skus = sorted(order_lines_for(rnd, stocked, waiting))
        qtys = [rnd.randint(1, 3) for _ in skus]
        try:
            _raw_order(conns[c], sqlite, f"{label}-{c}-{i}", rnd.choice(custs), skus, qtys)
            return True
        except (psycopg.Error, sqlite3.Error):
            if not sqlite:
                conns[c].rollback()
            else:
                conns[c].execute("ROLLBACK")
            return False

    try:
        ok, bad, elapsed, _ = run_load(clients, seconds, one)
    finally:
        for c in conns:
            c.close()
    return ok / elapsed, bad


def _raw_order(db: Any, sqlite: bool, number: str, customer: str, skus: list[str], qtys: list[int]) -> None:
    ph = "?" if sqlite else "%s"
    now = datetime.now(UTC)
    at: Any = now.replace(tzinfo=None).isoformat(sep=" ") if sqlite else now
    cur = db.cursor()
    if sqlite:
        cur.execute("BEGIN IMMEDIATE")
    lock = "" if sqlite else " FOR UPDATE"
    cur.execute(
        f"SELECT sku, on_hand - allocated, backordered, unit_price FROM products "
        f"WHERE sku IN ({ph}, {ph}, {ph}) ORDER BY sku{lock}",
        skus,
    )
    stock = {r[0]: r for r in cur.fetchall()}
    cur.execute(f"SELECT tier FROM customers WHERE customer_id = {ph}", (customer,))
    cur.fetchone()
    value = sum(stock[s][3] * q for s, q in zip(skus, qtys, strict=True))
    cur.execute(
        f"INSERT INTO orders (order_number, channel, customer_id, ship_policy, placed_at, priority, order_value, "
        f"status, request_hash, created_at) VALUES ({ph}, 'web', {ph}, 'partial', {ph}, 0, {ph}, 'backordered', "
        f"'raw', {ph}) RETURNING id",
        (number, customer, at, value, at),
    )
    order_id = cur.fetchone()[0]
    rows = []
    for no, (s, q) in enumerate(zip(skus, qtys, strict=True), start=1):
        avail = max(0, stock[s][1]) if stock[s][2] == 0 else 0
        take = min(q, avail)
        rows.append((order_id, no, s, q, stock[s][3], take, q - take, take, at if q > take else None, number,
                     customer, at, value))  # fmt: skip
    cur.executemany(
        f"INSERT INTO order_lines (order_id, line_no, sku, qty, unit_price, allocated_qty, backordered_qty, "
        f"released_qty, backordered_at, order_number, channel, customer_id, placed_at, priority, tier_rank, "
        f"order_value) VALUES ({ph}, {ph}, {ph}, {ph}, {ph}, {ph}, {ph}, {ph}, {ph}, {ph}, 'web', {ph}, {ph}, 0, 0, "
        f"{ph})",
        rows,
    )
    cur.executemany(
        f"UPDATE products SET allocated = allocated + {ph}, backordered = backordered + {ph} WHERE sku = {ph}",
        [(r[5], r[6], r[2]) for r in rows],
    )
    taken = [r for r in rows if r[5]]
    if taken:
        cur.execute(f"SELECT id, line_no FROM order_lines WHERE order_id = {ph} ORDER BY line_no", (order_id,))
        ids = {no: i for i, no in cur.fetchall()}
        cur.executemany(
            f"INSERT INTO allocations (line_id, sku, qty, source, ref, at) VALUES ({ph}, {ph}, {ph}, 'placement', "
            f"{ph}, {ph})",
            [(ids[r[1]], r[2], r[5], number, at) for r in taken],
        )
        cur.execute(
            f"INSERT INTO shipments (order_id, order_number, channel, status, created_at, updated_at) "
            f"VALUES ({ph}, {ph}, 'web', 'pick', {ph}, {ph}) RETURNING id",
            (order_id, number, at, at),
        )
        ship_id = cur.fetchone()[0]
        cur.executemany(
            f"INSERT INTO shipment_lines (shipment_id, line_id, line_no, sku, qty) VALUES ({ph}, {ph}, {ph}, {ph}, "
            f"{ph})",
            [(ship_id, ids[r[1]], r[1], r[2], r[5]) for r in taken],
        )
    cur.executemany(
        f"INSERT INTO events (at, type, actor, order_number, data) VALUES ({ph}, {ph}, 'raw', {ph}, {ph})",
        [(at, t, number, '{"lines": []}') for t in ("order_placed", "backordered", "shipment_created")],
    )
    if sqlite:
        cur.execute("COMMIT")
    else:
        db.commit()


def intake(store: Store, url: str, kind: str, lines: int, seconds: float, clients: int, token: str) -> list[Result]:
    """Orders/s through HTTP with 1 (and on PostgreSQL 2) server processes vs the raw transaction."""
    out = []
    raw_rate, raw_bad = intake_raw(store, url, f"RAW{time.time_ns()}", clients, seconds)
    console.print(f"  raw {kind} transactions: {raw_rate:.0f} orders/s ({raw_bad} failed)")
    rates = {}
    for workers in (1, 2) if kind == "postgresql" else (1,):
        with serving(url, workers, token) as server:
            rate, bad = intake_http(server, token, store, f"H{workers}-{time.time_ns()}", clients, seconds)
            rates[workers] = rate
            res = Result(
                f"order intake over HTTP, {workers} server process{'es' if workers > 1 else ''}, {clients} clients",
                kind,
                lines,
                [1 / rate] if rate else [float("inf")],
                work=1,
                work_unit="orders",
                floor=[1 / raw_rate] if raw_rate else [],
                target=">= 50% of raw" + ("; 2 processes >= 1.6x one" if workers == 2 else ""),
                note=f"{rate:.0f} orders/s vs raw {raw_rate:.0f}/s; {bad} failed; peak RSS {server.peak_mb()} MB",
                extra={"orders_per_s": round(rate, 1), "raw_orders_per_s": round(raw_rate, 1),
                       "share_of_raw": round(rate / raw_rate, 3) if raw_rate else None,
                       "peak_rss_mb": server.peak_mb(), "workers": workers, "seconds": seconds},
            )  # fmt: skip
            res.met = rate >= 0.5 * raw_rate and (workers == 1 or rate >= 1.6 * rates[1])
            if workers == 2:
                res.extra["speedup_vs_one"] = round(rate / rates[1], 2)
            res.show()
            out.append(res)
    return out


# ---- reads and a receipt through HTTP, with the server's memory --------------------------------


def backorder_pages(http: httpx.Client, store: Store, kind: str, lines: int, reps: int) -> list[Result]:
    """GET /backorders, page 1 of every filter and sort, through a running server (target p95 < 20 ms)."""
    out = []
    for fname, f in _filters(store).items():
        for sort in ("queue", "age"):
            params = {k: v for k, v in f.items() if v is not None} | {"sort": sort, "limit": 50}
            http.get("/backorders", params=params)  # warm: the first call plans and prepares
            samples = []
            for _ in range(reps):
                t, r = timed(lambda: http.get("/backorders", params=params))  # noqa: B023
                if r.status_code != 200:
                    raise RuntimeError(f"GET /backorders {params}: {r.status_code} {r.text[:300]}")
                samples.append(t)
            res = Result(
                f"back-order page (HTTP): filter={fname} sort={sort} page=1",
                kind,
                lines,
                samples,
                work=1,
                work_unit="pages",
                target="p95 < 20 ms",
            )
            res.met = pct(samples, 95) < 0.020
            res.show()
            out.append(res)
    return out


def http_reads_and_receipts(
    store: Store, url: str, kind: str, lines: int, token: str, reps: int, grn_skus: int
) -> tuple[list[Result], float]:
    """Back-order pages, reports, a GRN batch and a PO change through one server; returns its peak RSS."""
    out = []
    with (
        serving(url, 1, token) as server,
        httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=300) as http,
    ):
        out += backorder_pages(http, store, kind, lines, reps)
        for path in ("/reports/summary", "/reports/backorders?group_by=sku"):
            r = http.get(path)
            console.print(f"  GET {path}: {r.status_code}")
        batch = grn_batch(store, grn_skus, seed=11)
        skus = sorted(batch)
        samples, allocated = [], 0
        for i in range(0, len(skus), 500):
            part = skus[i : i + 500]
            body = {"grn_number": f"GRN-HTTP-{time.time_ns()}", "lines": [{"sku": s, "qty": batch[s]} for s in part]}
            t, r = timed(lambda: http.post("/receipts", json=body))  # noqa: B023
            if r.status_code != 201:
                raise RuntimeError(f"POST /receipts: {r.status_code} {r.text[:300]}")
            allocated += len(r.json()["allocations"])
            samples.append(t)
        res = Result(
            f"receipt over HTTP: {len(skus)} SKUs in GRNs of <= 500 lines",
            kind,
            lines,
            samples,
            work=allocated / max(1, len(samples)),
            work_unit="allocations",
            note=f"{allocated:,} lines allocated",
        )
        res.show()
        out.append(res)
        po = http.get("/purchase-orders", params={"sku": ETA_SKU, "status": "open", "limit": 1}).json()["items"]
        if po:
            when = datetime.now(UTC).date().isoformat()
            t, r = timed(
                lambda: http.patch(
                    f"/purchase-orders/{po[0]['po_number']}", json={"lines": [{"sku": ETA_SKU, "expected_date": when}]}
                )
            )
            console.print(f"  PATCH a BENCH-ETA PO (re-dates its queue): {r.status_code} in {t * 1000:.0f} ms")
        peak = server.peak_mb()
    console.print(f"  server peak RSS: {peak} MB")
    return out, peak
