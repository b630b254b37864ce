"""Backups of a whole store: SQLite through its online backup API, PostgreSQL through pg_dump/pg_restore.

A SQLite backup is one read transaction copied page by page (`sqlite3.Connection.backup` in a single
step), so it is a consistent snapshot even while a server keeps writing. A PostgreSQL backup is
`pg_dump -Fc`, which also reads one snapshot. Restoring refuses a store that holds data unless told
to overwrite it, and replaces the whole schema: tables, indexes, sequences and the Alembic version.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import URL, inspect, make_url, text

from oms.store.db import is_sqlite, make_engine, normalize_url, shown_url

PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin",)
TIMEOUT_S = 3600.0  # a backup or restore that runs longer than this is stopped and reported


class BackupError(Exception):
    """A backup or restore could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    tables: int


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url} is not a SQLite file")
    return Path(database)


def _read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to a SQLite file, whatever its name holds ('#', '?', '%', spaces).

    Through a file: URI built by pathlib, which percent-encodes the path: written as f"file:{path}",
    a '#' in it would start the URI's fragment and SQLite would open (and create) another file.
    """
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


def _store_tables(url: str) -> int:
    """The store's tables as SQLAlchemy sees them at `url` (SQLite's own tables left out)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return len(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def store_row_count(url: str) -> int:
    """Rows in every table of the store but Alembic's own (0 for a new or missing store)."""
    url = normalize_url(url)
    if is_sqlite(url) and not _sqlite_path(url).exists():
        return 0
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            names = [n for n in inspect(conn).get_table_names() if n != "alembic_version"]
            preparer = conn.dialect.identifier_preparer
            return sum(conn.execute(text(f"SELECT count(*) FROM {preparer.quote(n)}")).scalar_one() for n in names)
    finally:
        engine.dispose()


def backup(url: str, path: Path) -> BackupResult:
    """Write a consistent copy of the store at `url` to `path` (replaced atomically if it exists)."""
    url = normalize_url(url)
    path = Path(path)
    if path.is_dir():
        raise BackupError(f"{path} is a directory; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        tables = _backup_sqlite(url, partial) if is_sqlite(url) else _backup_pg(url, partial)
        expected = _store_tables(url)
        if tables < expected:  # never keep (or report as done) a backup that misses part of the store
            raise BackupError(
                f"the backup holds {tables} tables but the store at {shown_url(url)} has {expected}; "
                f"nothing was written to {path}"
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(path, path.stat().st_size, tables)


def restore(url: str, path: Path, force: bool = False) -> BackupResult:
    """Replace the store at `url` with the backup at `path`; a store with data needs `force`."""
    url = normalize_url(url)
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup at {path}")
    rows = store_row_count(url)
    if rows and not force:
        raise BackupError(f"the store holds data ({rows} rows); restore over it only with --force")
    tables = _restore_sqlite(url, path) if is_sqlite(url) else _restore_pg(url, path)
    return BackupResult(path, path.stat().st_size, tables)


# ---- SQLite -------------------------------------------------------------------------------------


def _tables(conn: sqlite3.Connection) -> int:
    """The store's tables (SQLite's own, such as sqlite_sequence for AUTOINCREMENT, are not counted)."""
    query = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
    return int(conn.execute(query).fetchone()[0])


def _copy(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    source.execute("PRAGMA busy_timeout=30000")
    target.execute("PRAGMA busy_timeout=30000")
    source.backup(target)  # pages=-1: one step under one read transaction, so one snapshot


def _backup_sqlite(url: str, out: Path) -> int:
    db = _sqlite_path(url)
    if not db.exists():
        raise BackupError(f"no SQLite store at {db}")
    source = _read_only(db)
    target = sqlite3.connect(out)
    try:
        _copy(source, target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        return _tables(target)
    finally:
        target.close()
        source.close()


def _restore_sqlite(url: str, path: Path) -> int:
    source = _read_only(path)
    try:
        try:
            check = source.execute("PRAGMA quick_check").fetchone()[0]
            has_version = source.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'"
            ).fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path} is not a SQLite backup: {exc}") from exc
        if check != "ok" or not has_version:
            raise BackupError(f"{path} is not an oms SQLite backup (check: {check})")
        db = _sqlite_path(url)
        db.parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(db)
        try:
            _copy(source, target)  # through SQLite's own locking, so a live file stays sound
            target.execute("PRAGMA journal_mode=WAL")  # the mode the server runs in
            return _tables(target)
        finally:
            target.close()
    finally:
        source.close()


# ---- PostgreSQL ---------------------------------------------------------------------------------


def pg_tool(name: str) -> str:
    """The path of pg_dump or pg_restore: on PATH, else in the PostgreSQL 15 server directory."""
    found = shutil.which(name)
    if found:
        return found
    for directory in PG_BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise BackupError(
        f"{name} not found on PATH or in {', '.join(PG_BIN_DIRS)}; install the PostgreSQL client "
        "(Debian: apt-get install postgresql-client-15)"
    )


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and an environment carrying it (kept out of `ps`)."""
    parsed = make_url(url).set(drivername="postgresql")
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    bare = URL.create("postgresql", parsed.username, None, parsed.host, parsed.port, parsed.database, parsed.query)
    return bare.render_as_string(hide_password=False), env


def _run(argv: list[str], env: dict[str, str], what: str) -> str:
    """Run a PostgreSQL tool; its standard output."""
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"{what} did not finish within {TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        raise BackupError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


# A table in `pg_restore --list`: "215; 1259 16390 TABLE public orders postgres" (not "TABLE DATA").
_LISTED_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (?!DATA )\S+ \S+", re.MULTILINE)


def _backup_pg(url: str, out: Path) -> int:
    """pg_dump into `out`; the tables the archive holds, as pg_restore lists them."""
    dsn, env = _libpq(url)
    _run([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "-f", str(out), dsn], env, "pg_dump")
    listing = _run([pg_tool("pg_restore"), "--list", str(out)], env, f"reading {out} back")
    return len(_LISTED_TABLE.findall(listing))


def _restore_pg(url: str, path: Path) -> int:
    dsn, env = _libpq(url)
    env["PGOPTIONS"] = "-c client_min_messages=warning"  # no NOTICE per dropped object
    restore_tool = pg_tool("pg_restore")
    _run([restore_tool, "--list", str(path)], env, f"reading {path} as a pg_dump archive")
    # One transaction in psql: the old schema (tables, sequences, functions, triggers) is dropped and
    # the backup loaded, or nothing changes.
    prelude = "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;"
    _pipe_restore(restore_tool, pg_tool("psql"), path, dsn, env, prelude)
    return _store_tables(url)


def _pipe_restore(restore_tool: str, psql: str, path: Path, dsn: str, env: dict[str, str], prelude: str) -> None:
    """pg_restore's SQL, after `prelude`, into `psql --single-transaction` that stops at the first error.

    psql commits only when its input ends, so its input is closed only after pg_restore succeeded;
    otherwise psql is killed mid-transaction and the store stays as it was.
    """
    script = [restore_tool, "--no-owner", "--no-privileges", "-f", "-", str(path)]
    load = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", dsn]
    with tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as sink_err:
        with (
            subprocess.Popen(script, env=env, stdout=subprocess.PIPE, stderr=dump_err) as dump,
            subprocess.Popen(load, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=sink_err) as sink,
        ):
            assert dump.stdout is not None and sink.stdin is not None
            try:
                sink.stdin.write(prelude.encode() + b"\n")
                shutil.copyfileobj(dump.stdout, sink.stdin, 1 << 20)
                dump.wait(timeout=TIMEOUT_S)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                dump.kill()  # psql stopped at an error (its stderr says which), or time ran out
            if dump.wait() != 0:
                sink.kill()
            else:
                with contextlib.suppress(BrokenPipeError):
                    sink.stdin.close()
            try:
                sink.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                sink.kill()
                raise BackupError(f"psql did not finish within {TIMEOUT_S:.0f} s") from exc
        if dump.returncode != 0:
            raise BackupError(f"pg_restore failed ({dump.returncode}): {_tail(dump_err)}")
        if sink.returncode != 0:
            raise BackupError(f"psql failed ({sink.returncode}): {_tail(sink_err)}")


def _tail(f: IO[bytes]) -> str:
    f.seek(0)
    return f.read().decode(errors="replace").strip()[-2000:]
