"""Load a realistic back-order store fast: COPY on PostgreSQL, one executemany per table on SQLite.

Every generated line waits in its SKU's queue (nothing is allocated yet), so a SKU with waiting
lines has nothing on hand and the products' counters are the sums of their lines. Popularity is
skewed (Zipf-like), customers come in every tier, orders are spread over 90 days and open POs
cover part of the demand. One SKU, BENCH-ETA, gets a fixed queue and 50 PO lines for the ETA
benchmark. ETAs are the ones the engine would give (oms.domain.eta.walk_etas in queue order).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Connection, Index, func, select, text

from oms.domain.allocation import Tier
from oms.domain.eta import Supply, walk_etas
from oms.reports import rollups
from oms.store.db import Store
from oms.store.tables import customers, order_lines, orders, po_lines, products, purchase_orders, stock_movements

CHANNELS = ("web", "retail", "marketplace", "phone", "b2b")
TIER_WEIGHTS = ((Tier.STANDARD, 70), (Tier.SILVER, 20), (Tier.GOLD, 8), (Tier.PLATINUM, 2))
ETA_SKU = "BENCH-ETA"
CHUNK = 20_000


@dataclass(frozen=True)
class Spec:
    """What to generate. `lines` counts every waiting line, the ETA SKU's included."""

    lines: int = 1_000_000
    skus: int = 10_000
    customers: int = 100_000
    eta_lines: int = 10_000
    eta_po_lines: int = 50
    days: int = 90
    seed: int = 42
    skew: float = 0.8
    stocked: int = 200  # STK-* products with stock on the shelf and no queue, for order intake


def sku_code(i: int) -> str:
    return f"SKU-{i:05d}"


def stocked_code(i: int) -> str:
    return f"STK-{i:05d}"


def _ts(t: datetime, sqlite: bool) -> Any:
    return t.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") if sqlite else t


def _d(d: date | None, sqlite: bool) -> Any:
    return d.isoformat() if (sqlite and d is not None) else d


@dataclass
class Data:
    products: list[tuple[Any, ...]]
    customers: list[tuple[Any, ...]]
    orders: list[tuple[Any, ...]]
    lines: list[tuple[Any, ...]]
    pos: list[tuple[Any, ...]]
    po_lines: list[tuple[Any, ...]]
    movements: list[tuple[Any, ...]]


PRODUCT_COLS = ("sku", "name", "unit_price", "lead_time_days", "on_hand", "allocated", "backordered", "updated_at")
CUSTOMER_COLS = ("customer_id", "name", "email", "tier", "updated_at")
ORDER_COLS = (
    "id",
    "order_number",
    "channel",
    "customer_id",
    "ship_policy",
    "placed_at",
    "priority",
    "order_value",
    "status",
    "request_hash",
    "created_at",
)
LINE_COLS = (
    "id",
    "order_id",
    "line_no",
    "sku",
    "qty",
    "unit_price",
    "allocated_qty",
    "backordered_qty",
    "shipped_qty",
    "cancelled_qty",
    "released_qty",
    "eta",
    "eta_basis",
    "promised_date",
    "backordered_at",
    "order_number",
    "channel",
    "customer_id",
    "placed_at",
    "priority",
    "tier_rank",
    "order_value",
)
PO_COLS = ("id", "po_number", "supplier", "status", "created_at")
PO_LINE_COLS = ("id", "po_id", "line_no", "sku", "qty", "received_qty", "expected_date", "open")
MOVEMENT_COLS = ("sku", "qty_delta", "kind", "ref", "reason", "at")


def build(spec: Spec, now: datetime, sqlite: bool) -> Data:
    """All rows, as tuples in the column orders above (money in cents, times per store)."""
    rnd = random.Random(spec.seed)
    today = now.date()
    n_skus = spec.skus
    skus = [sku_code(i) for i in range(1, n_skus + 1)] + [ETA_SKU]
    price = {s: rnd.randint(100, 50_000) for s in skus}  # cents
    lead = {s: (None if rnd.random() < 0.1 else rnd.randint(7, 60)) for s in skus}
    lead[ETA_SKU] = 30

    tiers = [t for t, _ in TIER_WEIGHTS]
    tier_w = [w for _, w in TIER_WEIGHTS]
    cust_tier = rnd.choices(tiers, tier_w, k=spec.customers)
    cust_ids = [f"C{i:06d}" for i in range(1, spec.customers + 1)]
    cust_rows = [
        (cid, f"Customer {cid}", f"{cid.lower()}@example.com", t.value, _ts(now, sqlite))
        for cid, t in zip(cust_ids, cust_tier, strict=True)
    ]

    weights = [1.0 / (i**spec.skew) for i in range(1, n_skus + 1)]
    cum: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w
        cum.append(acc)

    eta_lines = min(spec.eta_lines, spec.lines)
    general = spec.lines - eta_lines
    orders_rows: list[tuple[Any, ...]] = []
    # [sku, -priority, placed_at, order_number, line_no, qty, order_id, channel, customer, tier rank, value, price]
    pending: list[list[Any]] = []
    span = spec.days * 86_400_000_000
    ranks = [t.rank for t in cust_tier]
    qty_choices = (1, 1, 1, 2, 2, 3, 5)
    draws = iter(rnd.choices(range(n_skus), cum_weights=cum, k=2 * general + 100))

    def add_order(oid: int, line_skus: Sequence[str]) -> None:
        number = f"BO-{oid:07d}"
        c = int(rnd.random() * spec.customers)
        channel = CHANNELS[int(rnd.random() * 5)]
        placed = now - timedelta(microseconds=int(rnd.random() * span))
        placed_s = _ts(placed, sqlite)
        priority = 0 if rnd.random() < 0.95 else 1 + int(rnd.random() * 5)
        qtys = [qty_choices[int(rnd.random() * 7)] for _ in line_skus]
        value = sum(price[s] * q for s, q in zip(line_skus, qtys, strict=True))
        ship = "complete" if rnd.random() < 0.1 else "partial"
        cid = cust_ids[c]
        orders_rows.append(
            (oid, number, channel, cid, ship, placed_s, priority, value, "backordered", "bench", placed_s)
        )
        rank = ranks[c]
        for no, (s, q) in enumerate(zip(line_skus, qtys, strict=True), start=1):
            pending.append([s, -priority, placed_s, number, no, q, oid, channel, cid, rank, value, price[s]])

    made = 0
    eta_left = eta_lines
    while made < general or eta_left:
        # The ETA SKU's orders come in among the others, as a shop's orders would (not as one
        # block of ids, which would put its lines on pages of their own).
        if eta_left and rnd.random() * (eta_left + general - made) < eta_left:
            add_order(len(orders_rows) + 1, [ETA_SKU])
            eta_left -= 1
            continue
        r = rnd.random()
        k = min(1 if r < 0.6 else 2 if r < 0.85 else 3, general - made)
        picked: list[str] = []
        while len(picked) < k:
            s = skus[next(draws)]
            if s not in picked:
                picked.append(s)
        add_order(len(orders_rows) + 1, picked)
        made += k

    # Open POs: ~1 per 20 SKUs with 20 lines each covering part of the demand; some already late.
    demand: dict[str, int] = defaultdict(int)
    for p in pending:
        demand[p[0]] += p[5]
    po_rows: list[tuple[Any, ...]] = []
    po_line_rows: list[tuple[Any, ...]] = []
    supplies: dict[str, list[Supply]] = defaultdict(list)

    def add_po(lines: list[tuple[str, int, date]]) -> None:
        pid = len(po_rows) + 1
        number = f"PO-{pid:06d}"
        po_rows.append(
            (pid, number, f"Supplier {pid % 97}", "open", _ts(now - timedelta(days=rnd.randint(1, 60)), sqlite))
        )
        for no, (s, q, when) in enumerate(lines, start=1):
            po_line_rows.append((len(po_line_rows) + 1, pid, no, s, q, 0, _d(when, sqlite), 1))
            supplies[s].append(Supply(when, q, number))

    waiting = [s for s in skus[:-1] if demand.get(s)]
    rnd.shuffle(waiting)
    for i in range(0, len(waiting), 20):
        add_po(
            [
                (s, max(1, int(demand[s] * rnd.uniform(0.2, 0.8))), today + timedelta(days=rnd.randint(-10, 60)))
                for s in waiting[i : i + 20]
            ]
        )
    eta_demand = demand.get(ETA_SKU, 0)
    for i in range(spec.eta_po_lines if eta_lines else 0):
        add_po([(ETA_SKU, max(1, eta_demand * 8 // 10 // spec.eta_po_lines), today + timedelta(days=3 + i))])

    # ETAs as the engine gives them: each SKU's queue in rule order (default rule: priority, placed_at).
    pending.sort(key=lambda p: (p[0], p[1], p[2], p[3], p[4]))
    line_rows: list[tuple[Any, ...]] = []
    i = 0
    while i < len(pending):
        j = i
        sku = pending[i][0]
        while j < len(pending) and pending[j][0] == sku:
            j += 1
        group = pending[i:j]
        etas = walk_etas([p[5] for p in group], supplies.get(sku, []), today, lead[sku])
        for p, e in zip(group, etas, strict=True):
            eta = _d(e.eta, sqlite)
            line_rows.append(
                (
                    p[6], p[4], sku, p[5], p[11], 0, p[5], 0, 0, 0, eta, e.basis, eta,
                    p[2], p[3], p[7], p[8], p[2], -p[1], p[9], p[10],
                )
            )  # fmt: skip
        i = j
    # Line ids in order of placement (order id, line no), as the service would have given them.
    line_rows.sort(key=lambda r: (r[0], r[1]))
    line_rows = [(n, *r) for n, r in enumerate(line_rows, start=1)]

    on_hand = {s: (0 if demand.get(s) else rnd.randint(0, 100)) for s in skus}
    for i in range(1, spec.stocked + 1):
        s = stocked_code(i)
        skus.append(s)
        price[s], lead[s], on_hand[s] = rnd.randint(100, 20_000), 14, rnd.randint(50_000, 100_000)
    product_rows = [
        (s, f"Product {s}", price[s], lead[s], on_hand[s], 0, demand.get(s, 0), _ts(now, sqlite)) for s in skus
    ]
    movements = [(s, q, "adjustment", None, "opening stock", _ts(now, sqlite)) for s, q in on_hand.items() if q]
    return Data(product_rows, cust_rows, orders_rows, line_rows, po_rows, po_line_rows, movements)


def _secondary_indexes() -> list[Index]:
    return [ix for ix in order_lines.indexes if not ix.unique]


def _copy_pg(
    conn: Connection, table: str, cols: Sequence[str], rows: Iterable[tuple[Any, ...]], tick: Callable[[int], None]
) -> None:
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
        n = 0
        for r in rows:
            cp.write_row(r)
            n += 1
            if n == CHUNK:
                tick(n)
                n = 0
        tick(n)


def _insert_sqlite(
    conn: Connection, table: str, cols: Sequence[str], rows: Sequence[tuple[Any, ...]], tick: Callable[[int], None]
) -> None:
    raw: Any = conn.connection.driver_connection
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
    for i in range(0, len(rows), CHUNK):
        part = rows[i : i + CHUNK]
        raw.executemany(sql, part)
        tick(len(part))


def store_is_empty(conn: Connection) -> bool:
    return conn.execute(select(func.count()).select_from(orders)).scalar_one() == 0 and (
        conn.execute(select(func.count()).select_from(products)).scalar_one() == 0
    )


def generate(store: Store, spec: Spec, console: Console | None = None, now: datetime | None = None) -> dict[str, int]:
    """Fill an empty, migrated store; returns the row counts. One transaction: all or nothing."""
    now = now or datetime.now(UTC)
    sqlite = store.dialect == "sqlite"
    data = build(spec, now, sqlite)
    tables: list[tuple[str, Sequence[str], Sequence[tuple[Any, ...]]]] = [
        (products.name, PRODUCT_COLS, data.products),
        (customers.name, CUSTOMER_COLS, data.customers),
        (orders.name, ORDER_COLS, data.orders),
        (order_lines.name, LINE_COLS, data.lines),
        (purchase_orders.name, PO_COLS, data.pos),
        (po_lines.name, PO_LINE_COLS, data.po_lines),
        (stock_movements.name, MOVEMENT_COLS, data.movements),
    ]
    progress = Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=False,
        disable=console is None,
    )
    with progress, store.engine.connect() as conn, conn.begin():
        if not store_is_empty(conn):
            raise ValueError("the store already has data: benchmark data goes only into a new store")
        # Build the queue's secondary indexes once at the end rather than row by row.
        for ix in _secondary_indexes():
            ix.drop(conn)
        if sqlite:
            conn.exec_driver_sql("PRAGMA cache_size=-200000")
        for name, cols, rows in tables:
            task = progress.add_task(name, total=len(rows))

            def tick(n: int, task: Any = task) -> None:
                progress.advance(task, n)

            if sqlite:
                _insert_sqlite(conn, name, cols, rows, tick)
            else:
                _copy_pg(conn, name, cols, rows, tick)
        task = progress.add_task("indexes", total=len(_secondary_indexes()))
        for ix in _secondary_indexes():
            ix.create(conn)
            progress.advance(task)
        if not sqlite:
            for name in (orders.name, order_lines.name, purchase_orders.name, po_lines.name, stock_movements.name):
                top = f"(SELECT COALESCE(max(id), 1) FROM {name})"
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), {top})"))
            # The COPY's report triggers left one delta row per key: fold them, as the worker
            # would, so the store is as the service leaves it.
            rollups.fold(conn)
    if sqlite:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    return {name: len(rows) for name, _, rows in tables}
