"""`oms db backup` takes the store its URL names, whatever the path holds, and never reports a partial
backup as done: one that holds fewer tables than the store exits non-zero and leaves no file."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import inspect
from typer.testing import CliRunner

from oms.cli import app as cli
from oms.store import backup as backup_module
from oms.store.db import Store, make_engine

from ..backup.test_backup_restore import load, snapshot, url_of

runner = CliRunner()


def _tables(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return len(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_a_sqlite_store_in_a_directory_named_with_hash_and_spaces_is_backed_up_whole(
    sqlite_template: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    home = tmp_path / "shop #1 (copy)"
    home.mkdir()
    shutil.copy(sqlite_template, home / "oms.db")
    url = f"sqlite:///{home / 'oms.db'}"
    store = Store(make_engine(url))
    try:
        load(store)
        before = snapshot(store)
    finally:
        store.engine.dispose()
    monkeypatch.setenv("OMS_DATABASE_URL", url)
    out = tmp_path / "out #2.backup"
    result = runner.invoke(cli, ["db", "backup", str(out)])
    assert result.exit_code == 0, result.output
    assert f"backed up {len(before)} tables" in result.output
    assert not (tmp_path / "shop ").exists()  # no stray file named after the path's start

    fresh = f"sqlite:///{tmp_path / 'restored #3.db'}"
    monkeypatch.setenv("OMS_DATABASE_URL", fresh)
    result = runner.invoke(cli, ["db", "restore", str(out)])
    assert result.exit_code == 0, result.output
    restored = Store(make_engine(fresh))
    try:
        assert snapshot(restored) == before
    finally:
        restored.engine.dispose()


def _pg_dump_leaving_out_a_table(tmp_path: Path, real: str) -> str:
    wrapper = tmp_path / "pg_dump"
    wrapper.write_text(f'#!/bin/sh\nexec "{real}" --exclude-table=outbox "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


def test_a_backup_holding_fewer_tables_than_the_store_fails_and_leaves_no_file(store, tmp_path, monkeypatch):
    load(store)
    url = url_of(store)
    if store.dialect == "sqlite":
        copy = backup_module._copy

        def copy_but_one(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
            copy(source, target)
            target.execute("DROP TABLE outbox")

        monkeypatch.setattr(backup_module, "_copy", copy_but_one)
    else:
        real = backup_module.pg_tool
        monkeypatch.setattr(
            backup_module,
            "pg_tool",
            lambda name: _pg_dump_leaving_out_a_table(tmp_path, real(name)) if name == "pg_dump" else real(name),
        )
    monkeypatch.setenv("OMS_DATABASE_URL", url)
    out = tmp_path / "short.backup"
    result = runner.invoke(cli, ["db", "backup", str(out)])
    assert result.exit_code != 0, result.output
    assert f"{_tables(url) - 1} tables" in result.output and f"has {_tables(url)}" in result.output, result.output
    assert not out.exists()
    assert not out.with_name(out.name + ".partial").exists()
