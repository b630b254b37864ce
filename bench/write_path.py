"""The write path on a fresh, small store: phase `writepath` of `bench.run`, or `python -m bench.write_path`.

What it measures, through a real `oms serve` subprocess on each store (OMS_BENCH_STORES, default
sqlite,postgresql; PostgreSQL at OMS_BENCH_PG):

1. one keep-alive client: GET /healthz/s, then single-line orders/s that allocate (and release a
   shipment), then single-line orders/s that all back-order; orders per health check (>= 0.33);
2. the raw-driver floor: the rows such an allocating order writes, one transaction per order by hand
   (psycopg / sqlite3); HTTP intake as a share of it (>= 0.5 on PostgreSQL);
3. a flash sale: 16 clients, one SKU with 300 on hand and back-orders always allowed, 1,000
   single-unit orders (OMS_BENCH_FLASH_ORDERS); throughput per sequential health check (>= 0.30),
   latency p50/p95/p99 (p99 <= 250 ms), and the books checked afterwards;
4. PostgreSQL only: 8 clients against `oms serve --workers 1` and `--workers 2` (>= 1.5x).

Every measurement is repeated OMS_BENCH_RUNS times (default 3) for OMS_BENCH_SECONDS each (default 8);
medians are reported, and every target is a ratio to something measured in the same run, because the
machine (2 cores, shared) moves absolute figures. Results: bench/results/<date>-<store>-writepath.json.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from oms.domain.allocation import Tier
from oms.store.db import Store
from oms.store.migrate import upgrade
from oms.store.tables import order_lines, orders

from .common import SQLITE_DIR, Result, console, env_int, fresh_store, machine, pct, write_results
from .over_http import _children, admin_token, free_port, run_load

T = TypeVar("T")
PHASE = "writepath"
OMS = Path(sys.executable).with_name("oms")  # the console script of the running virtualenv
CUSTOMER = "WP-CUST"
STOCKED = "WP-STOCK"  # plenty on hand: every order allocates
WAITING = "WP-WAIT"  # nothing on hand, back-orders always allowed: every order waits
PLENTY = 1_000_000  # the API's largest adjustment; far more than any run takes
MP_CLIENTS = 8  # clients of the one-vs-two server processes comparison
FLASH_CLIENTS = 16
FLASH_STOCK = 300


@dataclass(frozen=True)
class Settings:
    """What a run measures, from the environment."""

    runs: int = field(default_factory=lambda: env_int("OMS_BENCH_RUNS", 3))
    seconds: float = field(default_factory=lambda: float(os.environ.get("OMS_BENCH_SECONDS", "8")))
    flash_orders: int = field(default_factory=lambda: env_int("OMS_BENCH_FLASH_ORDERS", 1000))


# ---- the server ---------------------------------------------------------------------------------


class OmsServer:
    """`oms serve` on a free loopback port, in a process group of its own so that stopping it stops its workers.

    Its log (one JSON line per request) goes to a file: a terminal would cost the server more than a file.
    """

    def __init__(self, url: str, workers: int, log_path: Path) -> None:
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log_path = log_path
        mail = SQLITE_DIR / "writepath-mail"  # where the in-process worker (SQLite) writes its emails
        mail.mkdir(parents=True, exist_ok=True)
        env = os.environ | {"OMS_DATABASE_URL": url, "OMS_RATE_LIMIT_PER_MINUTE": "0", "OMS_MAIL_DIR": str(mail)}
        self._log: IO[bytes] = log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(OMS), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)],
            env=env,
            cwd=SQLITE_DIR,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _worker_count(self) -> int:
        """Server processes up: uvicorn's spawned workers, or the one process itself."""
        if self.workers == 1:
            return 1
        found = 0
        for pid in _children(self.proc.pid):
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found += 1
            except OSError:
                pass
        return found

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oms serve exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.root}/healthz", timeout=5).status_code == 200 and (
                    self._worker_count() >= self.workers
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"oms serve did not answer within {timeout:.0f} s; see {self.log_path}")

    def retries_logged(self) -> int:
        """Transactions the server retried (deadlock, serialization, a unique key raced), from its log."""
        self._log.flush()
        return self.log_path.read_bytes().count(b"transaction retried")

    def _signal_group(self, sig: int) -> None:
        with suppress(ProcessLookupError):  # the group this server leads: it and its workers, nothing else
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()


@contextmanager
def oms_serve(url: str, workers: int, log_path: Path) -> Iterator[OmsServer]:
    server = OmsServer(url, workers, log_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def client(server: OmsServer, token: str) -> httpx.Client:
    """A keep-alive client of the API (health checks are at the root, so the base is the root)."""
    return httpx.Client(base_url=server.root, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def ok(r: httpx.Response, *statuses: int) -> httpx.Response:
    if r.status_code not in statuses:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
    return r


# ---- the catalog --------------------------------------------------------------------------------


def put_product(http: httpx.Client, sku: str, on_hand: int) -> None:
    """A product whose back orders are always allowed, with `on_hand` units counted in."""
    body = {"name": f"bench {sku}", "unit_price": "10.00", "backorder_policy": {"mode": "always"}}
    ok(http.put(f"/api/v1/products/{sku}", json=body), 200, 201)
    if on_hand:
        adj = {"sku": sku, "qty_delta": on_hand, "reason": "bench stock"}
        ok(http.post("/api/v1/inventory/adjustments", json=adj), 201)


def make_catalog(http: httpx.Client) -> None:
    """The few rows a fresh store needs: one customer, a stocked and an empty SKU, one SKU per load client."""
    body = {"name": "Bench customer", "email": "bench@example.com", "tier": "standard"}
    ok(http.put(f"/api/v1/customers/{CUSTOMER}", json=body), 200, 201)
    put_product(http, STOCKED, PLENTY)
    put_product(http, WAITING, 0)
    for c in range(MP_CLIENTS):
        put_product(http, f"WP-MP-{c}", PLENTY)


def order_body(number: str, sku: str) -> dict[str, Any]:
    return {"order_number": number, "channel": "web", "customer_id": CUSTOMER, "lines": [{"sku": sku, "qty": 1}]}


def label(what: str) -> str:
    """An order-number prefix no other run used."""
    return f"WP-{what}-{time.time_ns()}"


# ---- 1. one keep-alive client ------------------------------------------------------------------


def sequential_rate(seconds: float, call: Callable[[int], bool]) -> tuple[float, int]:
    """Calls per second of call(i) made back to back by one client for `seconds`; (rate, failed)."""
    good, bad, elapsed, _ = run_load(1, seconds, lambda _c, i: call(i))
    return good / elapsed, bad


def post_orders(http: httpx.Client, sku: str, seconds: float) -> tuple[float, int]:
    """Single-line, single-unit orders for `sku`/s, sent back to back by one client; (rate, failed)."""
    prefix = label(sku)
    return sequential_rate(
        seconds, lambda i: http.post("/api/v1/orders", json=order_body(f"{prefix}-{i}", sku)).status_code == 201
    )


def single_client(http: httpx.Client, seconds: float) -> dict[str, float]:
    """The same client's health checks/s, then allocating orders/s, then back-ordering orders/s."""
    out: dict[str, float] = {}
    out["healthz"], out["healthz_failed"] = sequential_rate(seconds, lambda _i: http.get("/healthz").status_code == 200)
    out["allocating"], out["allocating_failed"] = post_orders(http, STOCKED, seconds)
    out["backordering"], out["backordering_failed"] = post_orders(http, WAITING, seconds)
    return out


# ---- 2. the raw-driver floor --------------------------------------------------------------------


def _raw_connect(url: str) -> Any:
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
            db.execute(f"PRAGMA {pragma}")  # as the service's engine sets them
        return db
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), options="-c jit=off")


def raw_single_order(db: Any, sqlite: bool, number: str) -> None:
    """By hand, in one transaction, the rows the service writes for a single-line order that allocates.

    The product's row locked and read, the customer's tier read, then: the order, its line, the
    product's counters, the allocation, a shipment and its line, one event. (The rollup triggers fire
    here as they do for the service.) Adapted from over_http._raw_order, for one line.
    """
    ph = "?" if sqlite else "%s"
    now = datetime.now(UTC)
    at: Any = now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else now
    cur = db.cursor()
    if sqlite:
        cur.execute("BEGIN IMMEDIATE")
    lock = "" if sqlite else " FOR UPDATE"
    cur.execute(f"SELECT on_hand - allocated, backordered, unit_price FROM products WHERE sku = {ph}{lock}", (STOCKED,))
    available, waiting, price = cur.fetchone()
    if available < 1 or waiting:
        raise RuntimeError(f"the floor's product {STOCKED} has no unit left to allocate")
    cur.execute(f"SELECT tier FROM customers WHERE customer_id = {ph}", (CUSTOMER,))
    tier_rank = Tier(cur.fetchone()[0]).rank
    cur.execute(
        f"INSERT INTO orders (order_number, channel, customer_id, ship_policy, placed_at, priority, order_value, "
        f"status, request_hash, created_at) VALUES ({ph}, 'web', {ph}, 'partial', {ph}, 0, {ph}, 'in_fulfillment', "
        f"'raw', {ph}) RETURNING id",
        (number, CUSTOMER, at, price, at),
    )
    order_id = cur.fetchone()[0]
    cur.execute(
        f"INSERT INTO order_lines (order_id, line_no, sku, qty, unit_price, allocated_qty, backordered_qty, "
        f"released_qty, order_number, channel, customer_id, placed_at, priority, tier_rank, order_value) "
        f"VALUES ({ph}, 1, {ph}, 1, {ph}, 1, 0, 1, {ph}, 'web', {ph}, {ph}, 0, {ph}, {ph}) RETURNING id",
        (order_id, STOCKED, price, number, CUSTOMER, at, tier_rank, price),
    )
    line_id = cur.fetchone()[0]
    cur.execute(f"UPDATE products SET allocated = allocated + 1 WHERE sku = {ph}", (STOCKED,))
    cur.execute(
        f"INSERT INTO allocations (line_id, sku, qty, source, ref, at) VALUES ({ph}, {ph}, 1, 'placement', {ph}, {ph})",
        (line_id, STOCKED, number, at),
    )
    cur.execute(
        f"INSERT INTO shipments (order_id, order_number, channel, status, created_at, updated_at) "
        f"VALUES ({ph}, {ph}, 'web', 'pick', {ph}, {ph}) RETURNING id",
        (order_id, number, at, at),
    )
    shipment_id = cur.fetchone()[0]
    cur.execute(
        f"INSERT INTO shipment_lines (shipment_id, line_id, line_no, sku, qty) VALUES ({ph}, {ph}, 1, {ph}, 1)",
        (shipment_id, line_id, STOCKED),
    )
    data = {"channel": "web", "customer_id": CUSTOMER, "lines": [{"line_no": 1, "sku": STOCKED, "qty": 1,
            "allocated_qty": 1, "backordered_qty": 0}]}  # fmt: skip
    cur.execute(
        f"INSERT INTO events (at, type, actor, order_number, data) VALUES ({ph}, 'order_placed', 'raw', {ph}, {ph})",
        (at, number, json.dumps(data)),
    )
    if sqlite:
        cur.execute("COMMIT")
    else:
        db.commit()


def raw_floor(url: str, seconds: float) -> float:
    """Allocating single-line orders/s written by hand by one connection, one transaction each."""
    db = _raw_connect(url)
    sqlite = url.startswith("sqlite")
    prefix = label("raw")

    def one(i: int) -> bool:
        raw_single_order(db, sqlite, f"{prefix}-{i}")
        return True

    try:
        rate, failed = sequential_rate(seconds, one)
    finally:
        db.close()
    if failed:
        raise RuntimeError(f"{failed} raw orders failed")
    return rate


# ---- 3. the flash sale --------------------------------------------------------------------------


@dataclass
class Answer:
    """One flash-sale order as its client saw it."""

    status: int
    seconds: float
    allocated: int = 0
    backordered: int = 0


def flash_orders(server: OmsServer, token: str, sku: str, total: int, clients: int) -> tuple[list[Answer], float]:
    """`total` single-unit orders for `sku` from `clients` threads, each with its own keep-alive client.

    Threads take the next order number from one counter until `total` are sent (or 5 minutes pass).
    Connections are opened before the clock starts. Returns the answers and the elapsed seconds.
    """
    prefix = label("flash")
    numbers = itertools.count()
    lock = threading.Lock()
    answers: list[Answer] = []
    https = [client(server, token) for _ in range(clients)]
    for h in https:
        ok(h.get("/healthz"), 200)
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def worker(h: httpx.Client) -> None:
        start.wait()
        mine: list[Answer] = []
        while time.monotonic() < deadline[0]:
            with lock:
                i = next(numbers)
            if i >= total:
                break
            t0 = time.perf_counter()
            try:
                r = h.post("/api/v1/orders", json=order_body(f"{prefix}-{i}", sku))
            except httpx.HTTPError:  # counted (status 0), so the books show the order as not answered
                mine.append(Answer(0, time.perf_counter() - t0))
                continue
            a = Answer(r.status_code, time.perf_counter() - t0)
            if r.status_code == 201:
                line = r.json()["lines"][0]
                a.allocated, a.backordered = line["allocated_qty"], line["backordered_qty"]
            mine.append(a)
        with lock:
            answers.extend(mine)

    threads = [threading.Thread(target=worker, args=(h,)) for h in https]
    try:
        for t in threads:
            t.start()
        deadline[0] = time.monotonic() + 300
        started = time.perf_counter()
        start.wait()
        for t in threads:
            t.join(timeout=330)
        elapsed = time.perf_counter() - started
    finally:
        for h in https:
            h.close()
    return answers, elapsed


def inverted_pairs(allocated: list[datetime], waiting: list[datetime]) -> int:
    """Pairs (allocated order, back-ordered order) where the allocated one was placed later."""
    ordered = sorted(allocated)
    return sum(len(ordered) - bisect.bisect_right(ordered, w) for w in waiting)


def check_books(http: httpx.Client, store: Store, sku: str, answers: list[Answer], total: int) -> dict[str, Any]:
    """The flash sale's books, through the API (the product's stock) and the database (each order's line).

    The SKU had FLASH_STOCK on hand: exactly that many orders must hold one allocated unit and every
    other one back-ordered unit, with no server error; and first come, first served means no order
    that got a unit was placed after one that had to wait (counted, not asserted).
    """
    stock = ok(http.get(f"/api/v1/products/{sku}"), 200).json()["stock"]
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(orders.c.placed_at, order_lines.c.allocated_qty, order_lines.c.backordered_qty)
            .join(orders, orders.c.id == order_lines.c.order_id)
            .where(order_lines.c.sku == sku)
        ).all()
    took = [r.placed_at for r in rows if (r.allocated_qty, r.backordered_qty) == (1, 0)]
    waited = [r.placed_at for r in rows if (r.allocated_qty, r.backordered_qty) == (0, 1)]
    first_waiting = min(waited, default=None)
    late = sum(1 for t in took if first_waiting is not None and t > first_waiting)
    books = {
        "answers": len(answers),
        "status_201": sum(a.status == 201 for a in answers),
        "status_5xx": sum(a.status >= 500 for a in answers),
        "no_answer": sum(a.status == 0 for a in answers),
        "answered_allocated": sum(a.allocated == 1 and a.backordered == 0 for a in answers),
        "answered_backordered": sum(a.allocated == 0 and a.backordered == 1 for a in answers),
        "on_hand": stock["on_hand"],
        "allocated": stock["allocated"],
        "backordered": stock["backordered"],
        "orders_stored": len(rows),
        "orders_allocated": len(took),
        "orders_backordered": len(waited),
        "orders_neither": len(rows) - len(took) - len(waited),
        "allocated_placed_after_first_backordered": late,
        "inverted_pairs": inverted_pairs(took, waited),
    }
    books["books_ok"] = (
        books["status_201"] == total
        and stock["on_hand"] == stock["allocated"] == FLASH_STOCK == len(took) == books["answered_allocated"]
        and stock["backordered"] == total - FLASH_STOCK == len(waited) == books["answered_backordered"]
        and len(rows) == total
    )
    books["order_violations"] = late
    return books


def flash_sale(server: OmsServer, http: httpx.Client, store: Store, token: str, total: int) -> dict[str, Any]:
    """One flash sale on a new hot SKU: throughput, latency percentiles and the verified books."""
    sku = f"WP-FLASH-{time.time_ns()}"
    put_product(http, sku, FLASH_STOCK)
    retries_before = server.retries_logged()
    answers, elapsed = flash_orders(server, token, sku, total, FLASH_CLIENTS)
    lat = [a.seconds for a in answers] or [float("nan")]
    out: dict[str, Any] = {
        "sku": sku,
        "elapsed_s": elapsed,
        "orders_per_s": len(answers) / elapsed,
        "latencies": lat,
        "p50_ms": pct(lat, 50) * 1000,
        "p95_ms": pct(lat, 95) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "server_retries": server.retries_logged() - retries_before,
    }
    out["books"] = check_books(http, store, sku, answers, total)
    books = out["books"]
    if books["order_violations"] or not books["books_ok"]:
        console.print(
            f"[bold red]  FLASH SALE BOOKS: ok={books['books_ok']}; {books['order_violations']} allocated orders "
            f"placed after the first back-ordered one ({books['inverted_pairs']} inverted pairs)[/]"
        )
    return out


# ---- 4. one server process or two (PostgreSQL) --------------------------------------------------


def concurrent_intake(server: OmsServer, token: str, seconds: float) -> tuple[float, int]:
    """Allocating single-line orders/s from MP_CLIENTS clients, each on its own SKU (no shared row lock)."""
    https = [client(server, token) for _ in range(MP_CLIENTS)]
    prefix = label(f"mp{server.workers}")

    def one(c: int, i: int) -> bool:
        body = order_body(f"{prefix}-{c}-{i}", f"WP-MP-{c}")
        return https[c].post("/api/v1/orders", json=body).status_code == 201

    try:
        run_load(MP_CLIENTS, min(2.0, seconds), lambda c, i: one(c, -1 - i))  # warm every process and connection
        good, bad, elapsed, _ = run_load(MP_CLIENTS, seconds, one)
    finally:
        for h in https:
            h.close()
    return good / elapsed, bad


# ---- one store ----------------------------------------------------------------------------------


def per_order(rates: list[float]) -> list[float]:
    """Seconds per order of each run's rate: the samples a Result times."""
    return [1 / r if r else float("inf") for r in rates]


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


@dataclass
class Collected:
    """Every run's figures for one store."""

    single: list[dict[str, float]] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    flash: list[dict[str, Any]] = field(default_factory=list)
    mp: dict[int, list[float]] = field(default_factory=lambda: {1: [], 2: []})
    mp_failed: int = 0
    errors: list[str] = field(default_factory=list)


def attempt(errors: list[str], name: str, fn: Callable[..., T], *args: Any) -> T | None:
    """fn(*args), or None if it failed: the failure is printed and kept, and the other parts' figures are not lost."""
    try:
        return fn(*args)
    except Exception as exc:
        msg = f"{name}: {type(exc).__name__}: {str(exc)[:300]}"
        console.print(f"[red]{PHASE} {msg}[/]")
        errors.append(msg)
        return None


def measure(kind: str, url: str, store: Store, token: str, cfg: Settings) -> Collected:
    """Every measurement on one store: the server's runs first, then the floor with no server running."""
    got = Collected()
    log = SQLITE_DIR / f"writepath-{kind}-serve.log"
    log.unlink(missing_ok=True)
    with oms_serve(url, 1, log) as server, client(server, token) as http:
        make_catalog(http)
        for i in range(5):  # the first requests of a process pay for imports and prepared plans
            ok(http.post("/api/v1/orders", json=order_body(label(f"warm{i}"), STOCKED)), 201)
        for run in range(1, cfg.runs + 1):
            single = attempt(got.errors, f"single client, run {run}", single_client, http, cfg.seconds)
            if single:
                got.single.append(single)
                console.print(f"  {kind} run {run}: one client: {fmt_single(single)}")
        for run in range(1, cfg.runs + 1):
            flash = attempt(
                got.errors, f"flash sale, run {run}", flash_sale, server, http, store, token, cfg.flash_orders
            )
            if flash:
                got.flash.append(flash)
                console.print(f"  {kind} flash sale {run}: {fmt_flash(flash)}")
    for run in range(1, cfg.runs + 1):
        raw = attempt(got.errors, f"raw floor, run {run}", raw_floor, url, cfg.seconds)
        if raw:
            got.raw.append(raw)
            console.print(f"  {kind} raw floor {run}: {raw:.0f} orders/s")
    if kind == "postgresql":
        for run in range(1, cfg.runs + 1):
            for workers in (1, 2):  # alternated, so that both see the same load on a shared machine
                name = f"{workers} server processes, run {run}"
                mp = attempt(got.errors, name, processes_intake, url, workers, token, cfg.seconds)
                if mp:
                    got.mp[workers].append(mp[0])
                    got.mp_failed += mp[1]
                    console.print(f"  {kind} {MP_CLIENTS} clients, {name}: {mp[0]:.1f} orders/s ({mp[1]} failed)")
    return got


def processes_intake(url: str, workers: int, token: str, seconds: float) -> tuple[float, int]:
    """concurrent_intake against a new `oms serve --workers N`."""
    with oms_serve(url, workers, SQLITE_DIR / f"writepath-serve-w{workers}.log") as server:
        return concurrent_intake(server, token, seconds)


def fmt_single(d: dict[str, float]) -> str:
    return f"healthz {d['healthz']:.0f}/s, allocating {d['allocating']:.1f}/s, back-ordering {d['backordering']:.1f}/s"


def fmt_flash(f: dict[str, Any]) -> str:
    b = f["books"]
    return (
        f"{f['orders_per_s']:.1f} orders/s, p50/p95/p99 {f['p50_ms']:.0f}/{f['p95_ms']:.0f}/{f['p99_ms']:.0f} ms, "
        f"books ok {b['books_ok']}, order violations {b['order_violations']}, server retries {f['server_retries']}"
    )


# ---- figures, results and the table -------------------------------------------------------------


def figures(got: Collected) -> dict[str, Any]:
    """The medians of every run, and the ratios the targets are stated in.

    Ratios of one client's orders to its health checks, and of two server processes to one, are taken
    per run (the two were measured side by side) and their median reported; the others are ratios of
    medians (the floor runs while no server does).
    """
    nan = float("nan")
    healthz = median([s["healthz"] for s in got.single])
    alloc = median([s["allocating"] for s in got.single])
    raw = median(got.raw)
    thr = median([f["orders_per_s"] for f in got.flash])
    w1, w2 = median(got.mp[1]), median(got.mp[2])
    speedups = [b / a for a, b in zip(got.mp[1], got.mp[2], strict=False) if a]
    return {
        "healthz_per_s": healthz,
        "allocating_per_s": alloc,
        "allocating_per_healthz": median([s["allocating"] / s["healthz"] for s in got.single]),
        "backordering_per_s": median([s["backordering"] for s in got.single]),
        "backordering_per_healthz": median([s["backordering"] / s["healthz"] for s in got.single]),
        "single_client_failed": sum(int(s[k]) for s in got.single for k in s if k.endswith("_failed")),
        "raw_per_s": raw,
        "http_share_of_raw": alloc / raw if got.raw and got.single else nan,
        "flash_per_s": thr,
        "flash_per_healthz": thr / healthz if got.flash and got.single else nan,
        "flash_p50_ms": median([f["p50_ms"] for f in got.flash]),
        "flash_p95_ms": median([f["p95_ms"] for f in got.flash]),
        "flash_p99_ms": median([f["p99_ms"] for f in got.flash]),
        "flash_runs": len(got.flash),
        "flash_books_ok_runs": sum(bool(f["books"]["books_ok"]) for f in got.flash),
        "flash_order_violations": [f["books"]["order_violations"] for f in got.flash],
        "flash_5xx": sum(f["books"]["status_5xx"] for f in got.flash),
        "flash_server_retries": [f["server_retries"] for f in got.flash],
        "mp1_per_s": w1 if got.mp[1] else None,
        "mp2_per_s": w2 if got.mp[2] else None,
        "mp_speedup": median(speedups) if speedups else None,
        "mp_failed": got.mp_failed,
    }


def met(figs: dict[str, Any], kind: str) -> dict[str, bool | None]:
    """Each target: met, missed, or None where it does not apply to this store."""
    return {
        "orders_per_healthz": figs["allocating_per_healthz"] >= 0.33,
        "share_of_raw": figs["http_share_of_raw"] >= 0.5 if kind == "postgresql" else None,
        "flash_per_healthz": figs["flash_per_healthz"] >= 0.30,
        "flash_p99": figs["flash_p99_ms"] <= 250,
        "flash_books": figs["flash_runs"] > 0
        and figs["flash_books_ok_runs"] == figs["flash_runs"]
        and not any(figs["flash_order_violations"]),
        "two_processes": figs["mp_speedup"] >= 1.5 if figs["mp_speedup"] is not None else None,
    }


def results(kind: str, got: Collected, figs: dict[str, Any], cfg: Settings) -> list[Result]:
    """The suite's Result rows (rates as seconds per order per run, so `rate` is orders/s)."""
    ok_ = met(figs, kind)
    out = [
        Result("writepath: GET /healthz, 1 keep-alive client", kind, 0,
               per_order([s["healthz"] for s in got.single]), work_unit="requests"),
        Result("writepath: single-line allocating orders, 1 keep-alive client", kind, 0,
               per_order([s["allocating"] for s in got.single]), work_unit="orders", floor=per_order(got.raw),
               target=">= 0.33 orders per health check; >= 50% of the raw floor (PostgreSQL)",
               met=ok_["orders_per_healthz"] and ok_["share_of_raw"] is not False,
               extra={"orders_per_healthz": figs["allocating_per_healthz"], "share_of_raw": figs["http_share_of_raw"]}),
        Result("writepath: single-line back-ordering orders, 1 keep-alive client", kind, 0,
               per_order([s["backordering"] for s in got.single]), work_unit="orders",
               target=">= 0.33 orders per health check", met=figs["backordering_per_healthz"] >= 0.33,
               extra={"orders_per_healthz": figs["backordering_per_healthz"]}),
        Result("writepath: raw-driver floor, single-line allocating order", kind, 0, per_order(got.raw),
               work_unit="orders"),
        Result(f"writepath: flash sale, {FLASH_CLIENTS} clients, 1 SKU, {FLASH_STOCK} on hand, "
               f"{cfg.flash_orders} orders", kind, 0, [f["elapsed_s"] for f in got.flash], work=cfg.flash_orders,
               work_unit="orders", target=">= 0.30x the health-check rate; p99 <= 250 ms; books exact",
               met=ok_["flash_per_healthz"] and ok_["flash_p99"] and ok_["flash_books"],
               extra={k: figs[k] for k in figs if k.startswith("flash_")}),
        Result("writepath: flash sale, latency of each order (all runs pooled)", kind, 0,
               [x for f in got.flash for x in f["latencies"]], work_unit="orders per client",
               target="p99 <= 250 ms (median of the runs' p99)",
               met=ok_["flash_p99"], extra={"p99_ms": figs["flash_p99_ms"]}),
    ]  # fmt: skip
    if kind == "postgresql":
        for w in (1, 2):
            out.append(
                Result(f"writepath: {MP_CLIENTS} clients, oms serve --workers {w}", kind, 0, per_order(got.mp[w]),
                       work_unit="orders", target="--workers 2 >= 1.5x --workers 1" if w == 2 else "",
                       met=ok_["two_processes"] if w == 2 else None,
                       extra={"speedup_vs_one": figs["mp_speedup"]} if w == 2 else {})
            )  # fmt: skip
    return [r for r in out if r.samples]


def show(t: Table) -> None:
    """Print a table whole: piped output would otherwise be cut to 80 columns."""
    (console if console.is_terminal else Console(width=150)).print(t)


def rounded(x: Any) -> Any:
    """Floats to 4 significant digits, for a results file people read."""
    if isinstance(x, float):
        return float(f"{x:.4g}")
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [rounded(v) for v in x]
    return x


def _num(x: Any, spec: str) -> str:
    return "-" if x is None or math.isnan(x) else format(x, spec)  # NaN: a part that did not run


def _mark(flag: bool | None) -> str:
    return "" if flag is None else (" [green]met[/]" if flag else " [red]missed[/]")


ROWS: list[tuple[str, str, Callable[[dict[str, Any], dict[str, Any]], str]]] = [
    ("GET /healthz, 1 client", "", lambda f, m: f"{_num(f['healthz_per_s'], ',.0f')}/s"),
    ("allocating orders, 1 client", ">= 0.33x healthz",
     lambda f, m: f"{_num(f['allocating_per_s'], '.1f')}/s = {_num(f['allocating_per_healthz'], '.3f')}x"
     + _mark(m["orders_per_healthz"])),
    ("back-ordering orders, 1 client", ">= 0.33x healthz",
     lambda f, m: f"{_num(f['backordering_per_s'], '.1f')}/s = {_num(f['backordering_per_healthz'], '.3f')}x"
     + _mark(f["backordering_per_healthz"] >= 0.33)),
    ("raw-driver floor; HTTP / raw", ">= 0.5 (PostgreSQL)",
     lambda f, m: f"{_num(f['raw_per_s'], ',.0f')}/s; {_num(f['http_share_of_raw'], '.3f')}"
     + _mark(m["share_of_raw"])),
    (f"flash sale, {FLASH_CLIENTS} clients", ">= 0.30x healthz",
     lambda f, m: f"{_num(f['flash_per_s'], '.1f')}/s = {_num(f['flash_per_healthz'], '.3f')}x"
     + _mark(m["flash_per_healthz"])),
    ("flash sale p50 / p95 / p99", "p99 <= 250 ms",
     lambda f, m: f"{_num(f['flash_p50_ms'], '.0f')} / {_num(f['flash_p95_ms'], '.0f')} / "
     f"{_num(f['flash_p99_ms'], '.0f')} ms" + _mark(m["flash_p99"])),
    ("flash sale books", "exact, 0 violations",
     lambda f, m: f"ok {f['flash_books_ok_runs']}/{f['flash_runs']} runs; 5xx {f['flash_5xx']}; "
     f"order violations {f['flash_order_violations']}" + _mark(m["flash_books"])),
    (f"{MP_CLIENTS} clients: --workers 1 / 2", ">= 1.5x",
     lambda f, m: "-" if f["mp_speedup"] is None else f"{_num(f['mp1_per_s'], '.1f')} / "
     f"{_num(f['mp2_per_s'], '.1f')}/s = {_num(f['mp_speedup'], '.2f')}x" + _mark(m["two_processes"])),
]  # fmt: skip


def table(by_store: dict[str, dict[str, Any]]) -> Table:
    """The medians and ratios of each store, one column per store."""
    t = Table(title=f"write path: medians of {Settings().runs} runs")
    t.add_column("measure")
    for kind in by_store:
        t.add_column(kind)
    t.add_column("target")
    for name, target, cell in ROWS:
        t.add_row(name, *(cell(f, met(f, kind)) for kind, f in by_store.items()), target)
    return t


def markdown(by_store: dict[str, dict[str, Any]]) -> str:
    """The same table in Markdown (the Rich markup turned into words)."""
    kinds = list(by_store)
    out = [f"| measure | {' | '.join(kinds)} | target |", "|---|" + "---|" * len(kinds) + "---|"]
    for name, target, cell in ROWS:
        cells = [cell(f, met(f, kind)).replace("[green]", "").replace("[red]", "").replace("[/]", "")
                 for kind, f in by_store.items()]  # fmt: skip
        out.append(f"| {name} | {' | '.join(cells)} | {target} |")
    return "\n".join(out)


# ---- entry points -------------------------------------------------------------------------------


def bench_store(kind: str) -> dict[str, Any]:
    """The phase on a new store of this kind; writes <date>-<kind>-writepath.json and returns the figures."""
    cfg = Settings()
    started = time.monotonic()
    meta: dict[str, Any] = {"date": datetime.now(UTC).isoformat(), "machine": machine(), "store": kind,
                            "phase": PHASE, "settings": vars(cfg), "server": "oms serve --host 127.0.0.1"}  # fmt: skip
    store, url = fresh_store(kind, "oms_bench_writepath")
    try:
        upgrade(url)
        token = admin_token(store)
        got = measure(kind, url, store, token, cfg)
    finally:
        store.engine.dispose()
    figs = figures(got)
    meta |= {
        "figures": figs,
        "met": met(figs, kind),
        "errors": got.errors,
        "took_s": round(time.monotonic() - started),
        "load_avg_at_end": os.getloadavg(),
    }
    meta["runs"] = {
        "single_client": got.single,
        "raw_per_s": got.raw,
        "flash": [{k: v for k, v in f.items() if k != "latencies"} for f in got.flash],
        "workers": got.mp if kind == "postgresql" else None,
    }
    rows = results(kind, got, figs, cfg)
    for r in rows:
        r.show()
    tag = "-".join(t for t in (PHASE, os.environ.get("OMS_BENCH_TAG", "")) if t)
    path = write_results(kind, [r.as_dict() for r in rows], rounded(meta), tag=tag)
    show(table({kind: figs}))
    console.print(f"[bold]{kind}[/]: {PHASE} results in {path}")
    return figs


def run_stores(stores: list[str]) -> dict[str, dict[str, Any]]:
    """The phase on each store, then one table of them all."""
    by_store = {kind: bench_store(kind) for kind in stores}
    if len(by_store) > 1:
        show(table(by_store))
    return by_store


def summary(day: str) -> None:
    """The Markdown table of one day's writepath results files."""
    from .common import RESULTS

    by_store = {}
    for path in sorted(RESULTS.glob(f"{day}-*-{PHASE}.json")):
        meta = json.loads(path.read_text())["meta"]
        by_store[meta["store"]] = meta["figures"]
    sys.stdout.write(markdown(by_store) + "\n")


def main() -> None:
    if sys.argv[1:2] == ["summary"]:
        summary(sys.argv[2] if len(sys.argv) > 2 else datetime.now(UTC).date().isoformat())
        return
    stores = [s.strip() for s in os.environ.get("OMS_BENCH_STORES", "sqlite,postgresql").split(",") if s.strip()]
    run_stores(stores)


if __name__ == "__main__":
    main()
