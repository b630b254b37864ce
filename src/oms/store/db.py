"""Engines and the one place that opens and commits a transaction."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

T = TypeVar("T")
DEFAULT_URL = "sqlite:///oms.db"
# serialization failure, deadlock; and a unique key taken by a concurrent twin, whose retry then
# sees the committed row (an order number or GRN sent twice at once).
_RETRY_SQLSTATES = {"40001", "40P01", "23505"}


def database_url() -> str:
    return os.environ.get("OMS_DATABASE_URL", DEFAULT_URL)


def normalize_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str | None = None, **kw: Any) -> Engine:
    url = normalize_url(url or database_url())
    if url.startswith("sqlite"):
        engine = create_engine(url, poolclass=NullPool if ":memory:" not in url else None, **kw)

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
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **kw)


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    if code in _RETRY_SQLSTATES:
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


class Store:
    """A database: one engine, and transactions opened and committed in one place."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def _begin(self, readonly: bool) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if readonly:
                conn = conn.execution_options(readonly=True)
            with conn.begin():
                yield conn

    def write(self, use_case: Callable[[Connection], T], attempts: int = 8) -> T:
        """Run one use case in one transaction; retry it whole on deadlock or serialization failure.

        The transaction commits when the use case returns and rolls back when it raises.
        """
        for attempt in range(1, attempts + 1):
            try:
                with self._begin(readonly=False) as conn:
                    return use_case(conn)
            except DBAPIError as exc:
                if attempt == attempts or not _retryable(exc):
                    raise
                time.sleep(min(0.5, 0.005 * 2**attempt))
        raise AssertionError("unreachable")

    def dry_run(self, use_case: Callable[[Connection], T]) -> T:
        """Run a use case exactly as `write` would, then roll it back: what-if previews."""
        with self.engine.connect() as conn, conn.begin() as tx:
            try:
                return use_case(conn)
            finally:
                tx.rollback()

    def read(self, query: Callable[[Connection], T]) -> T:
        with self._begin(readonly=True) as conn:
            return query(conn)
