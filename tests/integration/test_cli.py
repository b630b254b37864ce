"""The `oms` command line against a real SQLite store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from typer.testing import CliRunner

from oms.access.keys import authenticate
from oms.cli import app, main
from oms.domain.access import Role
from oms.store.db import Store, make_engine

from ..conftest import PG_URL

runner = CliRunner()
MIGRATE_FIRST = "this store has no tables yet (or not all of them): run `oms db upgrade` first."


def test_db_upgrade_then_keys_create_prints_a_working_key_once(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("OMS_DATABASE_URL", url)
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, ["keys", "create", "--role", "channel", "--name", "shop", "--channel", "web"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("oms_")
    who = Store(make_engine(url)).read(lambda c: authenticate(c, token))
    assert who is not None
    assert (who.name, who.role, who.channel) == ("shop", Role.CHANNEL, "web")
    listing = runner.invoke(app, ["keys", "list"])
    assert "shop" in listing.output
    assert token not in listing.output


def test_revoked_key_no_longer_authenticates(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("OMS_DATABASE_URL", url)
    runner.invoke(app, ["db", "upgrade"])
    token = runner.invoke(app, ["keys", "create", "--role", "ops", "--name", "o"]).output.strip().splitlines()[-1]
    assert runner.invoke(app, ["keys", "revoke", "1"]).exit_code == 0
    assert Store(make_engine(url)).read(lambda c: authenticate(c, token)) is None


def test_demo_loads_a_small_store_once_and_refuses_a_store_with_data(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("OMS_DATABASE_URL", url)
    runner.invoke(app, ["db", "upgrade"])
    from oms.demo import load_demo

    store = Store(make_engine(url))
    summary = load_demo(store, n_skus=30, n_customers=20, n_orders=120, weeks=2)
    assert "30 SKUs" in summary
    with store.engine.connect() as conn:
        placed = conn.exec_driver_sql("SELECT count(*) FROM orders").scalar_one()
        shipped = conn.exec_driver_sql("SELECT count(*) FROM shipments WHERE status = 'dispatched'").scalar_one()
        tiers = conn.exec_driver_sql("SELECT count(DISTINCT tier) FROM customers").scalar_one()
        pos = conn.exec_driver_sql("SELECT count(*) FROM purchase_orders").scalar_one()
    assert placed > 60
    assert shipped > 0
    assert tiers == 4
    assert pos == 60
    again = runner.invoke(app, ["demo", "--if-empty"])
    assert again.exit_code == 0
    assert "already has data" in again.output


def _empty_store_url(kind: str, tmp_path: Path) -> str:
    """A store with no tables at all: a new SQLite file, or a new PostgreSQL database."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    if not PG_URL:
        pytest.skip("OMS_TEST_PG_URL is not set")
    name = f"{make_url(PG_URL).database}_cli_empty"
    admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def _oms(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`oms ARGS` as the console script runs it (oms.cli:main): its exit status and what it wrote to stderr."""
    monkeypatch.setattr(sys, "argv", ["oms", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    return int(stopped.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_store_without_tables_is_one_line_saying_to_migrate_not_a_traceback(kind, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMS_DATABASE_URL", _empty_store_url(kind, tmp_path))
    for args in (["keys", "list"], ["keys", "revoke", "1"], ["report", "summary"]):
        code, err = _oms(monkeypatch, capsys, *args)
        assert code == 2, args
        assert err.strip().splitlines() == [
            "oms: this store has no tables yet (or not all of them): run `oms db upgrade` first."
        ]


def test_a_refusal_is_one_line_with_status_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMS_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    code, err = _oms(monkeypatch, capsys, "keys", "revoke", "9999")
    assert (code, err.strip()) == (2, "oms: No active key with id 9999.")


def test_keys_create_replace_leaves_one_active_key_of_that_name(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("OMS_DATABASE_URL", url)
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    make = ["keys", "create", "--role", "admin", "--name", "make-run-admin", "--replace"]
    first = runner.invoke(app, make).output.strip().splitlines()[-1]
    other = runner.invoke(app, ["keys", "create", "--role", "ops", "--name", "someone-else"]).output.strip()
    second = runner.invoke(app, make).output.strip().splitlines()[-1]
    store = Store(make_engine(url))
    assert store.read(lambda c: authenticate(c, first)) is None
    assert store.read(lambda c: authenticate(c, second)) is not None
    assert store.read(lambda c: authenticate(c, other.splitlines()[-1])) is not None  # other names untouched


def test_users_create_offers_and_takes_only_the_roles_a_person_may_have(tmp_path, monkeypatch):
    monkeypatch.setenv("OMS_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert "admin|ops|purchasing" in runner.invoke(app, ["users", "create", "--help"], terminal_width=200).output
    refused = runner.invoke(app, ["users", "create", "pat", "--role", "channel", "--password", "long-enough-1"])
    assert refused.exit_code == 2
    assert "pat" not in runner.invoke(app, ["users", "list"]).output
    made = runner.invoke(app, ["users", "create", "pat", "--role", "purchasing", "--password", "long-enough-1"])
    assert made.exit_code == 0, made.output
    assert "pat" in runner.invoke(app, ["users", "list"]).output
