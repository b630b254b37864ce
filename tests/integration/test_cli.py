"""The `oms` command line against a real SQLite store."""

from __future__ import annotations

from typer.testing import CliRunner

from oms.access.keys import authenticate
from oms.cli import app
from oms.domain.access import Role
from oms.store.db import Store, make_engine

runner = CliRunner()


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
