"""A small harness for multi-process tests on one PostgreSQL.

- `fresh_database` makes an empty migrated database (copied from a migrated template, so each test
  starts in well under a second).
- `Cluster` starts N real `oms serve` processes (uvicorn, loopback, their own free ports) and M
  `oms worker` processes on one database, restarts them, kills them (SIGKILL) and always stops
  them (use it as a context manager or through the `cluster` fixture).
- `Caller` is one HTTP client: a keep-alive httpx client per server; each logical request is sent
  with one Idempotency-Key and retried (other server, short sleeps) on connection errors, 5xx and
  "still in progress" until it gets an answer, bounded in attempts and time. It records latency.
- `Hook` is a webhook endpoint on loopback that records every delivery.
- `invariant_violations`, `fifo_violations`, `event_gaps` and `outbox_problems` read the database
  back with plain SQL and return what is wrong (an empty list when all is well), so an assertion
  prints every problem at once.

FIFO under the active rule is checked from the event history: events are flushed at the end of each
use case, while its SKU locks are held, so for one SKU the events' ids follow the order in which the
use cases ran. Replaying them per SKU rebuilds the queue as each use case saw it; a use case that gave
units to a line while a line ahead of it (by the allocation rule) was waiting and still waited after
it is a violation, and so is a new order taking stock while lines of its SKU waited.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from oms.access.keys import create_key
from oms.domain.access import Role
from oms.domain.allocation import DEFAULT_RULE, QueueLine, RuleKey, order_queue
from oms.store.db import Store, make_engine
from oms.store.migrate import upgrade
from tests.processes import stop_process

OMS = str(Path(sys.executable).parent / "oms")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_URL = os.environ.get("OMS_TEST_PG_URL")
SCALE = float(os.environ.get("OMS_STRESS_SCALE", "1"))
SECRET = "stress-test-secret-shared-by-every-process"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "stress"


def scaled(n: float) -> int:
    """A count for the long (stress) runs, scaled by OMS_STRESS_SCALE."""
    return max(1, round(n * SCALE))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Any, seconds: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def write_artifact(name: str, data: dict[str, Any]) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return path


# ---- databases ------------------------------------------------------------------------------------


def _with_db(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin(url: str, sql: str) -> None:
    engine = make_engine(_with_db(url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


_templates: set[str] = set()
_templates_lock = threading.Lock()


def fresh_database(base_url: str, suffix: str) -> str:
    """An empty, migrated database `<base db>_<suffix>` on the server of base_url; returns its URL."""
    base = make_url(base_url).database
    template, name = f"{base}_stress_tpl", f"{base}_{suffix}"
    with _templates_lock:
        if _with_db(base_url, template) not in _templates:  # migrated once per server and session, then copied
            _admin(base_url, f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
            _admin(base_url, f'CREATE DATABASE "{template}"')
            upgrade(_with_db(base_url, template))
            _templates.add(_with_db(base_url, template))
    _admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(base_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return _with_db(base_url, name)


def drop_database(url: str) -> None:
    _admin(url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def drop_templates(base_url: str) -> None:
    """Drop the templates made on base_url's server."""
    server = make_url(base_url).set(database="")
    with _templates_lock:
        for url in [u for u in _templates if make_url(u).set(database="") == server]:
            drop_database(url)
            _templates.discard(url)


def admin_key(url: str) -> str:
    store = Store(make_engine(url))
    try:
        return store.write(lambda uow: create_key(uow.conn, Role.ADMIN, f"stress-{uuid.uuid4().hex[:6]}"))
    finally:
        store.engine.dispose()


# ---- processes ------------------------------------------------------------------------------------


@dataclass
class Proc:
    """One `oms serve` or `oms worker` process; started again with the same port and log."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=out)
        self.starts += 1

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no chance to finish a request, a delivery or a transaction."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=15)

    def stop(self) -> None:
        if self.popen is not None:
            stop_process(self.popen, timeout=15)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Cluster:
    """N `oms serve` and M `oms worker` processes on one database; always stopped on exit."""

    def __init__(self, url: str, workdir: Path, servers: int = 2, workers: int = 2, **env: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.workdir = workdir
        self.mail_dir = workdir / "mail"
        base_env = {k: v for k, v in os.environ.items() if k != "OMS_SMTP_URL"}
        self.env = (
            base_env
            | {
                "OMS_DATABASE_URL": url,
                "OMS_MAIL_DIR": str(self.mail_dir),
                "OMS_SECRET_KEY": SECRET,
                "OMS_RATE_LIMIT_PER_MINUTE": "0",
                "OMS_IDEMPOTENCY_LEASE_SECONDS": "3",
                "OMS_WORKER_POLL_SECONDS": "0.1",
                "OMS_WORKER_LEASE_SECONDS": "3",
                "OMS_OUTBOX_BACKOFF_SECONDS": "0.2",
                "OMS_OUTBOX_MAX_ATTEMPTS": "50",
                "OMS_INPROCESS_WORKER": "0",
                "OMS_WEBHOOK_ALLOW_PRIVATE": "1",  # the webhook receiver (Hook) listens on 127.0.0.1
            }
            | env
        )
        self.servers = [self._server(i) for i in range(servers)]
        self.workers = [
            Proc(
                f"worker{i}",
                [OMS, "worker", "--no-jobs", "--max-seconds", "3600"],
                self.env,
                workdir / f"worker{i}.log",
            )
            for i in range(workers)
        ]

    def _server(self, i: int) -> Proc:
        port = free_port()
        args = [OMS, "serve", "--host", "127.0.0.1", "--port", str(port)]
        return Proc(f"server{i}", args, self.env, self.workdir / f"server{i}.log", port=port)

    @property
    def bases(self) -> list[str]:
        return [p.base for p in self.servers]

    @property
    def procs(self) -> list[Proc]:
        return self.servers + self.workers

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for p in self.procs:
            p.start()
        for p in self.servers:
            self.wait_healthy(p)

    def wait_healthy(self, p: Proc, seconds: float = 180) -> None:
        def up() -> bool:
            if not p.alive():
                raise AssertionError(f"{p.name} exited:\n{p.log.read_text()[-3000:]}")
            try:
                return httpx.get(p.base + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(up, seconds), f"{p.name} not healthy in {seconds}s:\n{p.log.read_text()[-3000:]}"

    def restart(self, p: Proc) -> None:
        p.start()
        if p in self.servers:
            self.wait_healthy(p)

    def stop(self) -> None:
        for p in self.procs:
            try:
                p.stop()
            except Exception:  # keep stopping the others
                p.kill()

    def retries(self) -> Counter[str]:
        """Store.write retries logged by every process, by cause (SQLSTATE 40001, 40P01, 23505)."""
        found: Counter[str] = Counter()
        for p in self.procs:
            if not p.log.exists():
                continue
            for line in p.log.read_text(errors="replace").splitlines():
                if '"transaction retried"' in line:
                    try:
                        found[str(json.loads(line).get("cause"))] += 1
                    except ValueError:
                        found["unparsed"] += 1
        return found

    def server_errors(self) -> list[str]:
        """Log lines of unhandled errors in the servers (tracebacks of 500s)."""
        out = []
        for p in self.servers:
            for line in p.log.read_text(errors="replace").splitlines() if p.log.exists() else []:
                if '"level": "error"' in line:
                    out.append(f"{p.name}: {line[:500]}")
        return out


# ---- HTTP callers ---------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: Any
    attempts: int
    seconds: float


@dataclass
class Stats:
    """Latency of logical requests (first send to final answer) and attempts, by operation."""

    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[str] = field(default_factory=Counter)
    resent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, a: Answer) -> None:
        with self.lock:
            self.latency[op].append(a.seconds)
            self.statuses[f"{op} {a.status}"] += 1
            self.resent += a.attempts - 1

    def summary(self) -> dict[str, Any]:
        everything = [s for v in self.latency.values() for s in v]
        return {
            "requests": len(everything),
            "resent": self.resent,
            "p50_ms": round(percentile(everything, 50) * 1000, 1),
            "p99_ms": round(percentile(everything, 99) * 1000, 1),
            "by_op": {
                op: {
                    "n": len(v),
                    "p50_ms": round(percentile(v, 50) * 1000, 1),
                    "p99_ms": round(percentile(v, 99) * 1000, 1),
                }
                for op, v in sorted(self.latency.items())
            },
            "statuses": dict(sorted(self.statuses.items())),
        }


class Caller:
    """One client: keep-alive connections to each server; every POST carries an Idempotency-Key."""

    def __init__(self, bases: list[str], key: str, stats: Stats | None = None, seed: int = 0) -> None:
        self.bases = list(bases)
        self.rng = random.Random(seed)
        self.next = self.rng.randrange(len(self.bases))
        headers = {"Authorization": f"Bearer {key}"}
        self.clients = [httpx.Client(base_url=b + "/api/v1", headers=headers, timeout=30) for b in self.bases]
        self.stats = stats

    @classmethod
    def over(cls, client: httpx.Client, key: str, stats: Stats | None = None) -> Caller:
        """A caller through a given client (a TestClient: the app in this process)."""
        caller = cls(["http://in-process"], key, stats)
        caller.close()
        client.base_url = client.base_url.join("/api/v1")
        client.headers["Authorization"] = f"Bearer {key}"
        caller.clients = [client]
        return caller

    def close(self) -> None:
        for c in self.clients:
            c.close()

    def send(
        self, method: str, path: str, body: Any = None, op: str = "", max_seconds: float = 90, max_attempts: int = 600
    ) -> Answer:
        """Send until an answer that is not a crash, a 5xx or 'in progress' (same key on every resend)."""
        headers = {"Idempotency-Key": uuid.uuid4().hex} if method == "POST" else {}
        began = time.monotonic()
        last = "no attempt"
        for attempt in range(1, max_attempts + 1):
            client = self.clients[self.next % len(self.clients)]
            self.next += 1
            try:
                r = client.request(method, path, json=body, headers=headers)
            except httpx.TransportError as exc:  # the server died or restarts: try another one
                last = f"{type(exc).__name__}: {exc}"
            else:
                retry = r.status_code >= 500 or (
                    r.status_code == 409 and "idempotency-in-progress" in r.headers.get("content-type", "") + r.text
                )
                if not retry:
                    answer = Answer(r.status_code, r.json() if r.content else None, attempt, time.monotonic() - began)
                    if self.stats is not None:
                        self.stats.record(op or f"{method} {path}", answer)
                    return answer
                last = f"{r.status_code} {r.text[:300]}"
            if time.monotonic() - began > max_seconds:
                break
            time.sleep(min(0.5, 0.02 * attempt) * (0.5 + self.rng.random()))
        raise AssertionError(f"{method} {path}: no answer after {attempt} attempts / {max_seconds}s; last: {last}")

    def post(self, path: str, body: Any, op: str = "") -> Answer:
        return self.send("POST", path, body, op=op)

    def put(self, path: str, body: Any) -> Answer:
        return self.send("PUT", path, body)

    def get(self, path: str) -> Answer:
        return self.send("GET", path)


# ---- a webhook receiver ---------------------------------------------------------------------------


class Hook:
    """A webhook endpoint on loopback: records (webhook-id, body) of every request on arrival, answers
    200 after `delay` seconds; `holding` holds the next request open until `release` is set."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                expected = int(self.headers.get("content-length", 0))
                body = self.rfile.read(expected)
                if len(body) < expected:
                    # The sender died between the headers and the end of the body (httpx writes them
                    # apart): no receiver acts on a cut-off request, so it is not a delivery.
                    return
                with hook.lock:
                    hook.received.append((str(self.headers.get("webhook-id")), body))
                    hold, hook.holding = hook.holding, False
                if hold:  # keep this delivery open until the test says so (it kills the sender meanwhile)
                    hook.held.set()
                    hook.release.wait(30)
                elif hook.delay:
                    time.sleep(hook.delay)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.delay = delay
        self.holding = False  # set it: the next request is held open until `release` is set
        self.held = threading.Event()
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- reading the database back --------------------------------------------------------------------


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _rows(conn: Connection, sql: str) -> list[Any]:
    return list(conn.execute(text(sql)))


def invariant_violations(conn: Connection) -> list[str]:
    """Every invariant of the engine, per SKU and per line; returns what does not hold."""
    bad: list[str] = []
    moved = {r.sku: int(r.n) for r in _rows(conn, "SELECT sku, SUM(qty_delta) AS n FROM stock_movements GROUP BY sku")}
    dispatched = {
        r.sku: -int(r.n)
        for r in _rows(
            conn, "SELECT sku, SUM(qty_delta) AS n FROM stock_movements WHERE kind = 'dispatch' GROUP BY sku"
        )
    }
    lines = _rows(
        conn,
        "SELECT id, order_number, line_no, sku, qty, allocated_qty, backordered_qty, shipped_qty, cancelled_qty, "
        "released_qty FROM order_lines ORDER BY id",
    )
    freed: Counter[tuple[str, int]] = Counter()
    cancelled: Counter[tuple[str, int]] = Counter()
    for r in _rows(conn, "SELECT order_number, data FROM events WHERE type = 'cancelled'"):
        data = as_json(r.data)
        if not str(data.get("reason") or "").strip():
            bad.append(f"order {r.order_number}: a cancellation without a reason")
        for x in data["lines"]:
            freed[(r.order_number, x["line_no"])] += int(x["allocated"])
            cancelled[(r.order_number, x["line_no"])] += int(x["qty"])
    alloc_by_line = {
        r.line_id: int(r.n) for r in _rows(conn, "SELECT line_id, SUM(qty) AS n FROM allocations GROUP BY line_id")
    }
    by_sku: dict[str, list[Any]] = defaultdict(list)
    for r in lines:
        by_sku[r.sku].append(r)
        where = f"line {r.order_number}/{r.line_no} ({r.sku})"
        key = (r.order_number, r.line_no)
        if min(r.allocated_qty, r.backordered_qty, r.shipped_qty, r.cancelled_qty, r.released_qty) < 0:
            bad.append(f"{where}: a negative quantity")
        if r.qty != r.allocated_qty + r.backordered_qty + r.shipped_qty + r.cancelled_qty:
            bad.append(
                f"{where}: qty {r.qty} != allocated {r.allocated_qty} + waiting {r.backordered_qty} + "
                f"shipped {r.shipped_qty} + cancelled {r.cancelled_qty}"
            )
        if r.released_qty > r.allocated_qty:
            bad.append(f"{where}: released {r.released_qty} > allocated {r.allocated_qty}")
        if cancelled[key] != r.cancelled_qty:
            bad.append(f"{where}: cancelled {r.cancelled_qty}, but cancellation events say {cancelled[key]}")
        allocated_ever = alloc_by_line.get(r.id, 0)
        if allocated_ever != r.allocated_qty + r.shipped_qty + freed[key]:
            bad.append(
                f"{where}: allocation rows {allocated_ever} != allocated {r.allocated_qty} + shipped {r.shipped_qty} "
                f"+ cancelled out of allocation {freed[key]} (an allocation lost or doubled)"
            )
    for p in _rows(conn, "SELECT sku, on_hand, allocated, backordered FROM products ORDER BY sku"):
        mine = by_sku[p.sku]
        if p.on_hand != moved.get(p.sku, 0):
            bad.append(f"{p.sku}: on hand {p.on_hand} != sum of stock movements {moved.get(p.sku, 0)}")
        if not 0 <= p.allocated <= p.on_hand:
            bad.append(f"{p.sku}: allocated {p.allocated} outside 0..on hand {p.on_hand}")
        if p.backordered < 0:
            bad.append(f"{p.sku}: backordered {p.backordered} < 0")
        if p.allocated != sum(r.allocated_qty for r in mine):
            bad.append(f"{p.sku}: allocated counter {p.allocated} != lines {sum(r.allocated_qty for r in mine)}")
        if p.backordered != sum(r.backordered_qty for r in mine):
            bad.append(f"{p.sku}: backordered counter {p.backordered} != lines {sum(r.backordered_qty for r in mine)}")
        if p.on_hand - p.allocated > 0 and p.backordered > 0:
            bad.append(f"{p.sku}: {p.on_hand - p.allocated} units available while {p.backordered} wait")
        if dispatched.get(p.sku, 0) != sum(r.shipped_qty for r in mine):
            bad.append(f"{p.sku}: dispatch movements {dispatched.get(p.sku, 0)} != shipped units")
    return bad


def _rank(conn: Connection) -> tuple[dict[tuple[str, int], tuple[int, int]], tuple[RuleKey, ...]]:
    """Each line's place in its SKU's queue under the rule in force: (order number, line no) -> (sku rank)."""
    setting = conn.execute(text("SELECT value FROM settings WHERE key = 'allocation_rule'")).scalar()
    rule = tuple(RuleKey(k) for k in as_json(setting)["keys"]) if setting is not None else DEFAULT_RULE
    rows = _rows(
        conn,
        "SELECT id, order_number, line_no, sku, priority, tier_rank, order_value, placed_at, promised_date "
        "FROM order_lines",
    )
    by_sku: dict[str, list[QueueLine]] = defaultdict(list)
    for r in rows:
        by_sku[r.sku].append(
            QueueLine(
                line_id=r.id,
                order_number=r.order_number,
                line_no=r.line_no,
                sku=r.sku,
                backordered_qty=1,
                priority=r.priority,
                tier_rank=r.tier_rank,
                order_value=Decimal(str(r.order_value)),
                placed_at=r.placed_at if isinstance(r.placed_at, datetime) else datetime.fromisoformat(r.placed_at),
                promised_date=r.promised_date if isinstance(r.promised_date, date | None) else None,
            )
        )
    rank: dict[tuple[str, int], tuple[int, int]] = {}
    for queue in by_sku.values():
        for i, q in enumerate(order_queue(rule, queue)):
            rank[(q.order_number, q.line_no)] = (0, i)
    return rank, rule


def fifo_violations(conn: Connection) -> list[str]:
    """Replay each SKU's queue from the event history; see the module docstring.

    The rule must not change while the history is written (the lines' keys are read as they are
    now: no priority or tier changes during the run either).
    """
    changed = conn.execute(
        text("SELECT COUNT(*) FROM events WHERE type IN ('priority_changed', 'customer_tier_changed')")
    )
    assert changed.scalar_one() == 0, "fifo_violations needs fixed queue keys: no priority or tier changes"
    rank, _ = _rank(conn)
    per_sku: dict[str, list[tuple[Any, str, tuple[str, int], int, int]]] = defaultdict(list)
    for e in _rows(
        conn,
        "SELECT id, at, type, order_number, data FROM events "
        "WHERE type IN ('order_placed', 'allocated', 'cancelled') ORDER BY id",
    ):
        data = as_json(e.data)
        for x in data["lines"]:
            key = (e.order_number, int(x["line_no"]))
            if e.type == "order_placed":
                rec = (e.at, "placed", key, int(x["allocated_qty"]), int(x["backordered_qty"]))
            elif e.type == "allocated":
                rec = (e.at, "alloc", key, int(x["qty"]), 0)
            else:
                rec = (e.at, "cancel", key, int(x["backordered"]), 0)
            per_sku[x["sku"]].append(rec)
    bad: list[str] = []
    for sku, recs in per_sku.items():
        waiting: dict[tuple[str, int], int] = {}
        i = 0
        while i < len(recs):
            j = i
            while j < len(recs) and recs[j][0] == recs[i][0]:  # one use case: its events share its clock
                j += 1
            before = {k: n for k, n in waiting.items() if n > 0}
            got: set[tuple[str, int]] = set()
            for _, kind, key, a, b in recs[i:j]:
                if kind == "placed":
                    if a > 0 and before:
                        bad.append(f"{sku}: new order line {key} took {a} units while {len(before)} lines waited")
                    if b:
                        waiting[key] = b
                elif kind == "alloc":
                    if before.get(key, 0) <= 0:
                        bad.append(f"{sku}: {key} got {a} units but was not waiting")
                    waiting[key] = waiting.get(key, 0) - a
                    got.add(key)
                else:
                    waiting[key] = waiting.get(key, 0) - a
            for key in got:
                if waiting.get(key, 0) < 0:
                    bad.append(f"{sku}: {key} got more units than it waited for")
                skipped = [w for w in before if rank[w] < rank[key] and waiting.get(w, 0) > 0]
                if skipped:
                    bad.append(f"{sku}: {key} got units at {recs[i][0]} while {sorted(skipped)[:3]} ahead still wait")
            i = j
        for key, n in waiting.items():
            if n > 0 and key not in rank:
                bad.append(f"{sku}: {key} waits in the history but is not a line")
    return bad


def event_gaps(conn: Connection) -> list[str]:
    """Every change has its event: allocations, receipts, adjustments, dispatches, waiting units."""
    bad: list[str] = []
    from_rows: Counter[tuple[str, int, str]] = Counter()
    for r in _rows(
        conn,
        "SELECT l.order_number, l.line_no, a.source, SUM(a.qty) AS n FROM allocations a "
        "JOIN order_lines l ON l.id = a.line_id GROUP BY l.order_number, l.line_no, a.source",
    ):
        from_rows[(r.order_number, r.line_no, r.source)] = int(r.n)
    from_events: Counter[tuple[str, int, str]] = Counter()
    waiting: Counter[tuple[str, int]] = Counter()
    for e in _rows(
        conn, "SELECT type, order_number, data FROM events WHERE type IN ('order_placed', 'allocated', 'cancelled')"
    ):
        data = as_json(e.data)
        for x in data["lines"]:
            key = (e.order_number, int(x["line_no"]))
            if e.type == "order_placed":
                if x["allocated_qty"]:
                    from_events[(*key, "placement")] += int(x["allocated_qty"])
                waiting[key] += int(x["backordered_qty"])
            elif e.type == "allocated":
                from_events[(*key, str(data["source"]))] += int(x["qty"])
                waiting[key] -= int(x["qty"])
            else:
                waiting[key] -= int(x["backordered"])
    for k in sorted(set(from_rows) | set(from_events)):
        if from_rows[k] != from_events[k]:
            bad.append(f"line {k[0]}/{k[1]}: {from_rows[k]} units allocated by {k[2]}, events say {from_events[k]}")
    for r in _rows(conn, "SELECT order_number, line_no, backordered_qty FROM order_lines"):
        if waiting[(r.order_number, r.line_no)] != r.backordered_qty:
            bad.append(
                f"line {r.order_number}/{r.line_no}: waiting {r.backordered_qty}, "
                f"events say {waiting[(r.order_number, r.line_no)]}"
            )
    received = Counter(
        {
            r.sku: int(r.n)
            for r in _rows(
                conn, "SELECT sku, SUM(qty_delta) AS n FROM stock_movements WHERE kind = 'receipt' GROUP BY sku"
            )
        }
    )
    told: Counter[str] = Counter()
    for e in _rows(conn, "SELECT sku, data FROM events WHERE type = 'goods_received'"):
        told[e.sku] += int(as_json(e.data)["qty"])
    if +received != +told:
        bad.append(f"received units by SKU {dict(received)} != goods_received events {dict(told)}")
    adjusted = Counter(
        {
            r.sku: int(r.n)
            for r in _rows(
                conn, "SELECT sku, SUM(qty_delta) AS n FROM stock_movements WHERE kind = 'adjustment' GROUP BY sku"
            )
        }
    )
    told = Counter()
    for e in _rows(conn, "SELECT sku, data FROM events WHERE type = 'stock_adjusted'"):
        told[e.sku] += int(as_json(e.data)["qty_delta"])
    if +adjusted != +told:
        bad.append(f"adjusted units by SKU {dict(adjusted)} != stock_adjusted events {dict(told)}")
    shipped = conn.execute(text("SELECT COUNT(*) FROM shipments WHERE status = 'dispatched'")).scalar_one()
    steps = [as_json(e.data) for e in _rows(conn, "SELECT data FROM events WHERE type = 'shipment_advanced'")]
    if shipped != sum(1 for d in steps if d["to"] == "dispatched"):
        bad.append(
            f"{shipped} dispatched shipments, {sum(1 for d in steps if d['to'] == 'dispatched')} dispatch events"
        )
    orders = conn.execute(text("SELECT COUNT(*) FROM orders")).scalar_one()
    placed = conn.execute(text("SELECT COUNT(*) FROM events WHERE type = 'order_placed'")).scalar_one()
    if orders != placed:
        bad.append(f"{orders} orders, {placed} order_placed events")
    return bad


def outbox_problems(conn: Connection, hook: Hook | None, mail_dir: Path | None) -> list[str]:
    """Every outbox message delivered; the receiver got each webhook id, duplicates only byte-identical."""
    rows = _rows(conn, "SELECT id, kind, status, leased_until FROM outbox")
    bad = [f"outbox {r.id} ({r.kind}) is {r.status}" for r in rows if r.status != "delivered"][:20]
    pending = conn.execute(text("SELECT COUNT(*) FROM event_batches")).scalar_one()
    if pending:
        bad.append(f"{pending} committed transactions' events never turned into notifications")
    # Every order placed got exactly one confirmation: the worker skipped no event and built none twice.
    placed = conn.execute(text("SELECT COUNT(*) FROM events WHERE type = 'order_placed'")).scalar_one()
    confirmed = conn.execute(
        text("SELECT COUNT(*), COUNT(DISTINCT order_number) FROM outbox WHERE event_type = 'order_confirmation'")
    ).one()
    if tuple(confirmed) != (placed, placed):
        bad.append(f"{placed} orders placed, {confirmed[0]} confirmations for {confirmed[1]} orders")
    if hook is not None:
        webhook_ids = {r.id for r in rows if r.kind == "webhook"}
        with hook.lock:
            got = list(hook.received)
        bodies: dict[str, set[bytes]] = defaultdict(set)
        for mid, body in got:
            bodies[mid].add(body)
        if set(bodies) != webhook_ids:
            missing, extra = webhook_ids - set(bodies), set(bodies) - webhook_ids
            bad.append(
                f"webhooks: {len(missing)} never received {sorted(missing)[:5]}, "
                f"{len(extra)} unknown {sorted(extra)[:5]}"
            )
        bad += [f"webhook {mid} delivered twice with different bodies" for mid, b in bodies.items() if len(b) > 1]
    if mail_dir is not None:
        email_ids = {r.id for r in rows if r.kind == "email"}
        files = {p.stem for p in mail_dir.glob("*.eml")} if mail_dir.exists() else set()
        if files != email_ids:
            bad.append(f"emails: {len(email_ids - files)} never written, {len(files - email_ids)} unknown")
    return bad


def outbox_settled(conn: Connection) -> bool:
    """Every committed event built into messages, and every message delivered (or dead)."""
    waiting = "SELECT (SELECT COUNT(*) FROM outbox WHERE status = 'pending') + (SELECT COUNT(*) FROM event_batches)"
    return int(conn.execute(text(waiting)).scalar_one()) == 0


def read(url: str, fn: Any) -> Any:
    """Run fn(conn) in one read transaction on a short-lived engine."""
    store = Store(make_engine(url))
    try:
        return store.read(fn)
    finally:
        store.engine.dispose()


def wait_outbox_delivered(url: str, seconds: float) -> bool:
    return wait_for(lambda: read(url, outbox_settled), seconds, step=0.3)


def all_problems(
    url: str, hook: Hook | None = None, mail_dir: Path | None = None, outbox: bool = True
) -> dict[str, list[str]]:
    """Every check at once, from one consistent read."""

    def go(conn: Connection) -> dict[str, list[str]]:
        found = {
            "invariants": invariant_violations(conn),
            "fifo": fifo_violations(conn),
            "events": event_gaps(conn),
            "outbox": outbox_problems(conn, hook, mail_dir) if outbox else [],
            # "applied" is final too: the answer was kept with the change, only the process died before "done".
            "idempotency": [
                f"idempotency key left in progress: {method} {path}"
                for method, path in conn.execute(
                    text("SELECT method, path FROM idempotency_keys WHERE state = 'in_progress'")
                )
            ],
        }
        return {k: v for k, v in found.items() if v}

    result: dict[str, list[str]] = read(url, go)
    return result


def counts(url: str) -> dict[str, int]:
    def go(conn: Connection) -> dict[str, int]:
        return {
            t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one())
            for t in ("orders", "order_lines", "receipts", "allocations", "events", "outbox", "shipments")
        }

    result: dict[str, int] = read(url, go)
    return result


@dataclass
class Setup:
    """Products, customers and a webhook, made through the API."""

    skus: list[str]
    customers: list[str]


def set_up(
    c: Caller,
    skus: list[str],
    customers: dict[str, str],
    mode: str = "always",
    hook: Hook | None = None,
    rule: list[str] | None = None,
    event_types: list[str] | None = None,
) -> Setup:
    for sku in skus:
        r = c.put(
            f"/products/{sku}",
            {"name": f"Product {sku}", "unit_price": "12.50", "lead_time_days": 14, "backorder_policy": {"mode": mode}},
        )
        assert r.status in (200, 201), r.body
    for cid, tier in customers.items():
        r = c.put(f"/customers/{cid}", {"name": cid, "email": f"{cid.lower()}@example.com", "tier": tier})
        assert r.status in (200, 201), r.body
    if rule is not None:
        r = c.put("/settings/allocation-rule", {"keys": rule})
        assert r.status == 200, r.body
    if hook is not None:
        r = c.post("/webhooks", {"url": hook.url, "event_types": event_types or ["*"]})
        assert r.status == 201, r.body
    return Setup(skus, list(customers))


# ---- a mixed workload: orders from many clients while receipts, cancellations and steps run -------


@dataclass
class LoadResult:
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # order number -> the accepted body
    refused: int = 0
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)  # GRN -> the accepted body
    cancels: Counter[int] = field(default_factory=Counter)  # status -> count
    steps: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_order(rng: random.Random, number: str, skus: list[str], customers: list[str]) -> dict[str, Any]:
    weights = [1 / (i + 1) for i in range(len(skus))]  # a few hot SKUs, a long tail
    chosen = sorted(set(rng.choices(skus, weights, k=rng.randint(1, 3))))
    return {
        "order_number": number,
        "channel": rng.choice(["web", "pos", "b2b"]),
        "customer_id": rng.choice(customers),
        "ship_policy": "complete" if rng.random() < 0.2 else "partial",
        "priority": rng.choice([0] * 8 + [1, 2]),
        "lines": [{"sku": s, "qty": rng.randint(1, 4)} for s in chosen],
    }


def run_load(
    bases: list[str],
    key: str,
    prefix: str,
    skus: list[str],
    customers: list[str],
    clients: int,
    orders_per_client: int,
    stats: Stats,
    seed: int = 1,
    orders_per_receipt: int = 4,
    orders_per_cancel: int = 10,
    steps: bool = True,
    max_seconds: float = 3600,
) -> LoadResult:
    """`clients` threads place `orders_per_client` orders each; meanwhile one thread receives goods
    (one GRN per `orders_per_receipt` orders placed), one cancels (one per `orders_per_cancel`) and one
    advances shipments. Every request is answered or the run fails (bounded by max_seconds)."""
    out = LoadResult()
    done = threading.Event()
    placed = [0]
    began = time.monotonic()
    errors: list[BaseException] = []

    def guarded(fn: Any) -> Any:
        def run(*args: Any) -> None:
            try:
                fn(*args)
            except BaseException as exc:  # surfaced after the run
                errors.append(exc)
                done.set()

        return run

    @guarded
    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        caller = Caller(bases, key, stats, seed=seed * 1000 + i)
        try:
            for n in range(orders_per_client):
                if done.is_set() or time.monotonic() - began > max_seconds:
                    return
                body = make_order(rng, f"{prefix}-{i:02d}-{n:05d}", skus, customers)
                a = caller.post("/orders", body, op="place order")
                with out.lock:
                    if a.status in (200, 201):
                        out.orders[body["order_number"]] = a.body
                    else:
                        assert a.status == 409, (a.status, a.body)
                        out.refused += 1
                    placed[0] += 1
        finally:
            caller.close()

    @guarded
    def receiver() -> None:
        rng = random.Random(seed * 7)
        caller = Caller(bases, key, stats, seed=seed * 7)
        n = 0
        try:
            while not done.is_set() and time.monotonic() - began < max_seconds:
                if placed[0] < (n + 1) * orders_per_receipt:
                    time.sleep(0.005)
                    continue
                lines = [{"sku": s, "qty": rng.randint(2, 9)} for s in sorted(set(rng.choices(skus, k=2)))]
                grn = f"{prefix}-GRN-{n:05d}"
                a = caller.post("/receipts", {"grn_number": grn, "lines": lines}, op="receive goods")
                assert a.status in (200, 201), (a.status, a.body)
                with out.lock:
                    out.receipts[grn] = a.body
                n += 1
        finally:
            caller.close()

    @guarded
    def canceller() -> None:
        rng = random.Random(seed * 11)
        caller = Caller(bases, key, stats, seed=seed * 11)
        n = 0
        try:
            while not done.is_set() and time.monotonic() - began < max_seconds:
                if placed[0] < (n + 1) * orders_per_cancel or not out.orders:
                    time.sleep(0.005)
                    continue
                with out.lock:
                    number = rng.choice(sorted(out.orders))
                    first = out.orders[number]["lines"][0]
                body: dict[str, Any] = {"reason": "customer changed their mind"}
                if rng.random() < 0.5:
                    body["lines"] = [{"line_no": first["line_no"], "qty": 1}]
                a = caller.post(f"/orders/{number}/cancel", body, op="cancel")
                assert a.status in (200, 409), (a.status, a.body)  # 409: nothing left that may be cancelled
                with out.lock:
                    out.cancels[a.status] += 1
                n += 1
        finally:
            caller.close()

    @guarded
    def stepper() -> None:
        rng = random.Random(seed * 13)
        caller = Caller(bases, key, stats, seed=seed * 13)
        try:
            while not done.is_set() and time.monotonic() - began < max_seconds:
                with out.lock:
                    numbers = sorted(out.orders)
                if not numbers:
                    time.sleep(0.01)
                    continue
                number = rng.choice(numbers)
                ships = caller.send("GET", f"/shipments?order_number={number}", op="list shipments").body["items"]
                for s in ships:
                    if s["status"] not in ("pick", "pack", "awaiting_shipment"):
                        continue
                    body = {}
                    if s["status"] == "awaiting_shipment":
                        body = {"carrier": "DHL", "tracking_number": f"T{s['id']}"}
                    a = caller.post(f"/shipments/{s['id']}/advance", body, op="advance shipment")
                    assert a.status in (200, 409), (a.status, a.body)  # 409: cancelled meanwhile
                    with out.lock:
                        out.steps[a.status] += 1
                time.sleep(0.002)
        finally:
            caller.close()

    background = [threading.Thread(target=receiver), threading.Thread(target=canceller)]
    if steps:
        background.append(threading.Thread(target=stepper))
    for t in background:
        t.start()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(max_seconds + 120)
    done.set()
    for t in background:
        t.join(max_seconds + 120)
    out.seconds = time.monotonic() - began
    if errors:
        raise errors[0]
    assert not any(t.is_alive() for t in workers + background), "a load thread did not stop in time"
    return out


# ---- a PostgreSQL server of the test's own (for restarting it under load) --------------------------


class PrivatePostgres:
    """A PostgreSQL 15 cluster on a free loopback port, in its own directory, run as `postgres` when
    we are root. synchronous_commit stays on: a commit the client was told of survives an immediate
    restart (the shared test server runs with it off, which is fine for tests that never crash it)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir
        self.runas = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @staticmethod
    def available() -> bool:
        return all((PG_BIN / b).exists() for b in ("initdb", "pg_ctl"))

    def _run(self, *args: str, timeout: float = 120) -> None:
        done = subprocess.run([*self.runas, *args], check=False, capture_output=True, timeout=timeout)
        assert done.returncode == 0, f"{args[0]} failed: {done.stdout.decode()[-2000:]} {done.stderr.decode()[-2000:]}"

    def start(self) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres", str(self.dir)], check=True)
        if not (self.dir / "PG_VERSION").exists():
            self._run(
                str(PG_BIN / "initdb"),
                "-D",
                str(self.dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
            )
        self._pg_ctl("start")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, action: str, *extra: str) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c full_page_writes=off "
            "-c max_connections=100 -c shared_buffers=64MB"
        )
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.dir),
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-t",
            "60",
            action,
            *extra,
            "-o",
            opts,
        )

    def restart_immediate(self) -> None:
        """Crash and recover: `pg_ctl restart -m immediate` (no checkpoint; WAL replay on start)."""
        self._pg_ctl("restart", "-m", "immediate")

    def stop(self) -> None:
        subprocess.run(
            [*self.runas, str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
            timeout=60,
        )


class KeyedLoad:
    """Clients that place orders (client 0 receives goods instead) through `bases` until stopped, each
    request sent with an Idempotency-Key and resent until answered; records every answer's status."""

    def __init__(
        self,
        bases: list[str],
        key: str,
        skus: list[str],
        customers: list[str],
        prefix: str,
        *,
        seed: int = 0,
        max_qty: int = 5,
        pause: float = 0.03,
        stats: Stats | None = None,
    ) -> None:
        self.bases, self.key, self.skus, self.customers, self.prefix = bases, key, skus, customers, prefix
        self.seed, self.max_qty, self.pause, self.stats = seed, max_qty, pause, stats
        self.acked: dict[str, int] = {}
        self.receipts: dict[str, int] = {}
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def _client(self, i: int) -> None:
        r = random.Random(self.seed * 100 + i)
        caller = Caller(self.bases, self.key, self.stats, seed=self.seed * 100 + i)
        try:
            for n in range(100_000):
                if self.stopping.is_set():
                    return
                if i == 0:
                    grn = f"{self.prefix}-GRN-{n:05d}"
                    line = {"sku": r.choice(self.skus), "qty": r.randint(1, self.max_qty)}
                    a = caller.post("/receipts", {"grn_number": grn, "lines": [line]})
                    with self.lock:
                        self.receipts[grn] = a.status
                else:
                    body = make_order(r, f"{self.prefix}-{i}-{n:05d}", self.skus, self.customers)
                    a = caller.post("/orders", body)
                    with self.lock:
                        self.acked[body["order_number"]] = a.status
                time.sleep(self.pause)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            caller.close()

    def start(self, clients: int) -> None:
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(clients)]
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(150)

    def check_answers(self, url: str) -> None:
        """No client failed; every answer was 200/201; what was answered is stored once, nothing else."""
        assert not self.errors, self.errors[0]
        assert not any(t.is_alive() for t in self.threads)
        assert set(self.acked.values()) <= {200, 201} and set(self.receipts.values()) <= {200, 201}

        def stored(conn: Connection) -> tuple[list[str], list[str]]:
            return (
                [r[0] for r in conn.exec_driver_sql("SELECT order_number FROM orders")],
                [r[0] for r in conn.exec_driver_sql("SELECT grn_number FROM receipts")],
            )

        orders, grns = read(url, stored)
        assert sorted(orders) == sorted(self.acked)  # each answered order once, nothing unanswered
        assert sorted(grns) == sorted(self.receipts)

    def figures(self) -> dict[str, int]:
        answers = [*self.acked.values(), *self.receipts.values()]
        return {
            "orders": len(self.acked),
            "receipts": len(self.receipts),
            "replayed_answers": sum(1 for s in answers if s == 200),
        }
