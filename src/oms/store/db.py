"""Engines and the one place that opens and commits a transaction."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from oms.settings import settings
from oms.store.uow import ConfigCache, UnitOfWork

T = TypeVar("T")
log = logging.getLogger("oms.store")
DEFAULT_URL = "sqlite:///oms.db"
# Transactions Store.write retried in this process, by cause (SQLSTATE, or "locked" on SQLite); /metrics shows them.
RETRIES: Counter[str] = Counter()
# serialization failure, deadlock; and a unique key taken by a concurrent twin, whose retry then
# sees the committed row (an order number or GRN sent twice at once).
_RETRY_SQLSTATES = {"40001", "40P01", "23505"}


def database_url() -> str:
    return settings().database_url


def normalize_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(url: str) -> bool:
    """Whether a database URL names a SQLite store (parsed by SQLAlchemy, never by string prefix)."""
    return make_url(normalize_url(url)).get_backend_name() == "sqlite"


def shown_url(url: str) -> str:
    """A database URL fit for a log line or a terminal: the password masked."""
    return make_url(normalize_url(url)).render_as_string(hide_password=True)


def make_engine(url: str | None = None, **kw: Any) -> Engine:
    url = normalize_url(url or database_url())
    if is_sqlite(url):
        # A pool of connections (SQLAlchemy's default for a file): the PRAGMAs below and the
        # schema's parse happen once per connection, not once per transaction.
        engine = create_engine(url, **kw)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # We issue BEGIN ourselves so that writers take the write lock up front.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = "DEFERRED" if conn.get_execution_options().get("readonly") else "IMMEDIATE"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    # No JIT: every statement here is short or index-driven, and compiling the plan of a grouped
    # write (the report triggers over a receipt's rows) cost more than running it (30 ms of 35).
    # No pre-ping: a connection that died in the pool fails its transaction, which Store.write retries.
    kw.setdefault("connect_args", {}).setdefault("options", "-c jit=off")
    return create_engine(url, pool_size=10, max_overflow=20, **kw)


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    if code in _RETRY_SQLSTATES:
        return True
    if isinstance(exc, OperationalError):
        return "database is locked" in str(exc.orig) or bool(exc.connection_invalidated)
    return bool(exc.connection_invalidated)


class FairLock:
    """A lock that threads get in the order they asked for it (a plain Lock promises no order).

    Each waiter sleeps on its own lock and is woken alone when its turn comes: waking every waiter
    to check a ticket would have them all fight for the interpreter lock at each hand-over.
    SQLite has one writer at a time; without this, writers of one process poll the database's lock
    and a hot SKU's orders are served in whatever order the polls happen to win.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held = False
        self._waiting: deque[threading.Lock] = deque()

    def __enter__(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by the holder before us, which hands the lock over without freeing it

    def __exit__(self, *_: object) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._held = False


class KeyedLocks:
    """Fair (arrival-order) locks by key, taken in sorted order, dropped when no one holds or waits for them.

    PostgreSQL serializes writers of one row correctly, but many of this process's threads waiting on
    one hot row wake, take the interpreter lock and re-queue in no order: with 16 clients on one SKU,
    throughput halved and some orders waited half a second. Queued here first, one thread per SKU at a
    time reaches the database, in arrival order. Taken only before a transaction begins, never while
    one holds row locks, and in sorted order, so they add no deadlock.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[FairLock, int]] = {}

    @contextmanager
    def holding(self, keys: Iterable[str]) -> Iterator[None]:
        taken: list[str] = []
        try:
            for key in sorted(set(keys)):
                with self._guard:
                    lock, users = self._locks.get(key, (None, 0))
                    lock = lock or FairLock()
                    self._locks[key] = (lock, users + 1)
                taken.append(key)
                lock.__enter__()
            yield
        finally:
            for key in reversed(taken):
                with self._guard:
                    lock, users = self._locks[key]
                    if users == 1:
                        del self._locks[key]
                    else:
                        self._locks[key] = (lock, users - 1)
                lock.__exit__()


class Store:
    """A database: one engine, the settings this process caches, and transactions opened and committed in one place."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.config = ConfigCache()
        self._writers = FairLock() if engine.dialect.name == "sqlite" else None
        self._hot = KeyedLocks()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def _begin(self, readonly: bool) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if not readonly:
                with conn.begin():
                    yield conn
                return
            conn = conn.execution_options(readonly=True)  # SQLite: a deferred BEGIN (the "begin" listener)
            # PostgreSQL: psycopg begins "BEGIN READ ONLY", so a read that writes fails here as it would on
            # a replica, at no extra round trip. Set on the driver's connection and cleared after, not
            # through SQLAlchemy's postgresql_readonly, which leaves read_only=False on the pooled
            # connection: every later transaction would then begin READ WRITE, overriding a role's
            # read-only default (and refused by a hot standby).
            raw = conn.connection.driver_connection if conn.dialect.name == "postgresql" else None
            if raw is not None:
                raw.read_only = True
            try:
                with conn.begin():
                    yield conn
            finally:
                if raw is not None:
                    try:
                        raw.read_only = None
                    except Exception:  # the connection broke: never hand it back read-only
                        conn.invalidate()

    @contextmanager
    def _writer(self, keys: Iterable[str]) -> Iterator[None]:
        if self._writers is not None:  # SQLite: one writer at a time, in arrival order
            with self._writers:
                yield
            return
        with self._hot.holding(keys):
            yield

    def write(
        self,
        use_case: Callable[[UnitOfWork], T],
        *,
        actor: str = "system",
        now: datetime | None = None,
        attempts: int = 8,
        queue_on: Iterable[str] = (),
    ) -> T:
        """Run one use case in one transaction and commit it with the events it recorded.

        `queue_on`: the SKUs it will lock, when known up front: this process's writers of a SKU then
        reach the database one at a time, in arrival order (KeyedLocks).

        The transaction rolls back when the use case raises. A deadlock, serialization failure,
        unique-key race or lost connection runs the use case again, whole, after a random pause
        (full jitter, so retries of a hot SKU do not collide again in step).
        """
        for attempt in range(1, attempts + 1):
            committing = False
            try:
                with self._writer(queue_on), self._begin(readonly=False) as conn:
                    uow = UnitOfWork(conn, self.config, actor, now)
                    result = use_case(uow)
                    uow.write_events()
                    committing = True
                return result
            except DBAPIError as exc:
                # A connection lost while committing may or may not have committed: never run that twice.
                lost_in_commit = committing and exc.connection_invalidated
                if attempt == attempts or lost_in_commit or not _retryable(exc):
                    raise
                cause = str(getattr(exc.orig, "sqlstate", None) or ("lost" if exc.connection_invalidated else "locked"))
                RETRIES[cause] += 1
                log.warning("transaction retried", extra={"cause": cause, "attempt": attempt})
                time.sleep(random.uniform(0, min(0.5, 0.005 * 2**attempt)))
        raise AssertionError("unreachable")

    def dry_run(self, use_case: Callable[[UnitOfWork], T], *, actor: str = "system") -> T:
        """Run a use case exactly as `write` would, then roll it back: what-if previews."""
        with self._writer(()), self.engine.connect() as conn, conn.begin() as tx:
            try:
                return use_case(UnitOfWork(conn, self.config, actor))
            finally:
                tx.rollback()

    def read(self, query: Callable[[Connection], T]) -> T:
        """Run a query in one read-only transaction (reads never write: they must work on a replica)."""
        with self._begin(readonly=True) as conn:
            return query(conn)
