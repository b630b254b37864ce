"""Engines and the one place that opens and commits a transaction."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event, insert, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")
log = logging.getLogger("oms.store")
DEFAULT_URL = "sqlite:///oms.db"
# Transactions Store.write retried in this process, by cause (SQLSTATE, or "locked" on SQLite).
RETRIES: Counter[str] = Counter()
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
    # No JIT: every statement here is short or index-driven, and compiling the plan of a grouped
    # write (the report triggers over a receipt's rows) cost more than running it (30 ms of 35).
    kw.setdefault("connect_args", {}).setdefault("options", "-c jit=off")
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
                conn = conn.execution_options(readonly=True)  # SQLite: a deferred BEGIN (the "begin" listener)
            with conn.begin():
                if readonly and conn.dialect.name == "postgresql":
                    # A read that writes fails here as it would on a replica. A statement, not the
                    # postgresql_readonly option: SQLAlchemy resets psycopg's read_only to False on the
                    # pooled connection, which then begins every transaction READ WRITE, overriding a
                    # read-only default_transaction_read_only (and refused on a hot standby).
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
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
                cause = str(getattr(exc.orig, "sqlstate", None) or "locked")
                RETRIES[cause] += 1
                log.warning("transaction retried", extra={"cause": cause, "attempt": attempt})
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
        """Run a query in one read-only transaction (reads never write: they must work on a replica)."""
        with self._begin(readonly=True) as conn:
            return query(conn)


# ---- set-based writes of many rows ---------------------------------------------------------------
# PostgreSQL: one statement over all the rows, passed as ONE JSON text parameter that the server
# expands (json_populate_recordset / json_to_recordset). An executemany there is one statement per
# row, and psycopg's text array dumper escapes each element in Python (~50 us per value), so both
# cost more than the write itself. SQLite runs in process, where one executemany of a prepared
# statement is as cheap as a temporary table, so it gets that.


def _json_value(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    raise TypeError(f"cannot send {type(v).__name__} as JSON")


def _rows_json(rows: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(list(rows), default=_json_value)


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT many rows (all with the same keys) in one statement on PostgreSQL, one executemany on SQLite.

    Ids (serial keys) follow the rows' order on both.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    decorated: list[tuple[str, Any]] = [
        (n, table.c[n].type) for n in names if isinstance(table.c[n].type, TypeDecorator)
    ]
    if decorated:
        rows = [
            dict(r) | {n: t.process_bind_param(r[n], conn.dialect) for n, t in decorated}  # e.g. UTC timestamps
            for r in rows
        ]
    cols = ", ".join(names)
    sql = (
        f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM json_populate_recordset(NULL::{table.name}, "
        "CAST(:rows AS json)) WITH ORDINALITY AS v ORDER BY v.ordinality"
    )
    conn.execute(text(sql), {"rows": _rows_json(rows)})


def update_rows(
    conn: Connection,
    table: str,
    key: tuple[str, str],
    sets: Mapping[str, str],
    types: Mapping[str, str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """UPDATE many rows of `table`, each found by key[0] = its field key[1].

    `sets` maps a column to its new value in SQL, with {field} for the row's fields (named b_*, so
    never a column's name); `types` gives each field's PostgreSQL type. One UPDATE ... FROM
    json_to_recordset(...) on PostgreSQL, one executemany on SQLite.
    """
    if not rows:
        return
    names = list(types)
    if conn.dialect.name == "postgresql":
        ref = {n: f"v.{n}" for n in names}
        assign = ", ".join(f"{col} = {expr.format(**ref)}" for col, expr in sets.items())
        shape = ", ".join(f"{n} {types[n]}" for n in names)
        sql = (
            f"UPDATE {table} SET {assign} FROM json_to_recordset(CAST(:rows AS json)) AS v({shape}) "
            f"WHERE {table}.{key[0]} = v.{key[1]}"
        )
        conn.execute(text(sql), {"rows": _rows_json([{n: r[n] for n in names} for r in rows])})
        return
    ref = {n: f":{n}" for n in names}
    assign = ", ".join(f"{col} = {expr.format(**ref)}" for col, expr in sets.items())
    conn.execute(text(f"UPDATE {table} SET {assign} WHERE {key[0]} = :{key[1]}"), [dict(r) for r in rows])
