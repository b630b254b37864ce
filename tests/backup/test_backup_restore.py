"""`oms db backup` / `oms db restore`: a round trip keeps every row of every table, on both stores."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, make_url, select, text
from typer.testing import CliRunner

from oms.access.keys import create_key
from oms.app import create_app
from oms.cli import app as cli
from oms.domain.access import Role
from oms.notifications.builder import build_notifications
from oms.store import backup as backup_module
from oms.store.backup import BackupError, backup, restore, store_row_count
from oms.store.db import Store, make_engine
from oms.store.migrate import upgrade
from oms.store.tables import metadata

runner = CliRunner()


def day(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def load(store: Store) -> None:
    """Orders (waiting and allocated), a PO and its receipt, shipments up to dispatch, events, outbox."""
    token = store.write(lambda uow: create_key(uow.conn, Role.ADMIN, "loader"))
    h = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(store, rate_limit_per_minute=0), raise_server_exceptions=True) as client:

        def ok(method: str, path: str, body: Any = None, **kw: Any) -> Any:
            r = client.request(method, "/api/v1" + path, json=body, headers={**h, **kw.pop("headers", {})}, **kw)
            assert r.status_code < 300, (path, r.text)
            return r.json()

        ok("POST", "/webhooks", {"url": "https://hooks.example.net/hook", "event_types": ["*"], "description": "ops"})
        for sku in ("TENT-2P", "LAMP"):
            body = {"name": f"{sku} für zwei ✓ 日本", "unit_price": "19.99", "backorder_policy": {"mode": "always"}}
            ok("PUT", f"/products/{sku}", body)
        ok("POST", "/inventory/adjustments", {"sku": "LAMP", "qty_delta": 5, "reason": "count"})
        for cid, tier in (("ALICE", "gold"), ("BOB", "standard")):
            ok("PUT", f"/customers/{cid}", {"name": cid, "email": f"{cid.lower()}@example.com", "tier": tier})
        ok(
            "POST",
            "/purchase-orders",
            {
                "po_number": "PO-1",
                "supplier": "Acme",
                "lines": [{"sku": "TENT-2P", "qty": 10, "expected_date": day(9)}],
            },
        )
        for n, (cid, sku, qty) in enumerate((("ALICE", "TENT-2P", 3), ("BOB", "TENT-2P", 5), ("BOB", "LAMP", 2)), 1):
            order = {
                "order_number": f"SO-{n}",
                "channel": "web",
                "customer_id": cid,
                "lines": [{"sku": sku, "qty": qty}],
            }
            ok("POST", "/orders", order, headers={"Idempotency-Key": f"k-{n}"})
        build_notifications(store)  # the outbox of what happened so far; what follows waits for the worker
        ok("POST", "/receipts", {"grn_number": "GRN-1", "po_number": "PO-1", "lines": [{"sku": "TENT-2P", "qty": 4}]})
        shipment = ok("GET", "/shipments?order_number=SO-3")["items"][0]["id"]
        for step in ({}, {}, {"carrier": "DHL", "tracking_number": "T-1"}):
            ok("POST", f"/shipments/{shipment}/advance", step)
        ok("POST", "/orders/SO-2/cancel", {"reason": "changed mind", "lines": [{"line_no": 1, "qty": 1}]})


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the store (the schema's and Alembic's), in primary-key order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        assert {t.name for t in metadata.sorted_tables} | {"alembic_version"} <= names
        for name in sorted(names):
            table = metadata.tables.get(name)
            if table is None:
                rows = conn.execute(text(f'SELECT * FROM "{name}"')).all()
                out[name] = sorted((tuple(r) for r in rows), key=repr)
            else:
                out[name] = [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
    return out


@pytest.fixture
def fresh_url(store: Store, tmp_path: Path) -> Iterator[str]:
    """A second store of the same kind, not yet created (a SQLite path; a new PostgreSQL database)."""
    if store.dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    base = store.engine.url
    name = f"{base.database}_restore"
    admin = make_engine(base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def url_of(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def test_a_backup_restored_into_a_fresh_store_has_every_row_of_every_table(store, fresh_url, tmp_path):
    load(store)
    before = snapshot(store)
    counts = {name: len(rows) for name, rows in before.items()}
    for name in (
        "orders",
        "order_lines",
        "allocations",
        "receipts",
        "shipments",
        "events",
        "event_batches",
        "outbox",
        "po_lines",
    ):
        assert counts[name] > 0, name
    assert counts["idempotency_keys"] == 3
    assert counts["webhook_subscriptions"] == 1
    path = tmp_path / "backups" / "oms.backup"
    made = backup(url_of(store), path)
    assert made.path == path and made.bytes == path.stat().st_size > 0
    assert made.tables == len(before)
    assert not path.with_name("oms.backup.partial").exists()

    done = restore(fresh_url, path)
    assert done.tables == len(before)
    restored = Store(make_engine(fresh_url))
    try:
        assert snapshot(restored) == before
        # The restored store works, and its ids go on after the restored ones.
        load_more = TestClient(create_app(restored, rate_limit_per_minute=0))
        token = restored.write(lambda uow: create_key(uow.conn, Role.ADMIN, "after-restore"))
        order = {"order_number": "SO-9", "channel": "web", "customer_id": "ALICE", "lines": [{"sku": "LAMP", "qty": 1}]}
        with load_more as client:
            r = client.post("/api/v1/orders", json=order, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201, r.text
        ids = [row[0] for row in snapshot(restored)["orders"]]
        assert ids[-1] > max(row[0] for row in before["orders"])
    finally:
        restored.engine.dispose()
    assert snapshot(store) == before  # the backup left its source as it was


def test_restore_refuses_a_store_with_data_unless_forced_and_then_replaces_it_whole(store, tmp_path):
    load(store)
    before = snapshot(store)
    path = tmp_path / "oms.backup"
    backup(url_of(store), path)
    token = store.write(lambda uow: create_key(uow.conn, Role.ADMIN, "made-after-the-backup"))
    assert token
    with pytest.raises(BackupError, match=r"holds data \(\d+ rows\); restore over it only with --force"):
        restore(url_of(store), path)
    assert len(snapshot(store)["api_keys"]) == len(before["api_keys"]) + 1  # refused: nothing changed
    restore(url_of(store), path, force=True)
    assert snapshot(store) == before  # the key made after the backup is gone


def test_the_cli_backs_up_and_restores_and_says_why_it_refuses(store, fresh_url, tmp_path, monkeypatch):
    load(store)
    before = snapshot(store)
    path = tmp_path / "cli.backup"
    monkeypatch.setenv("OMS_DATABASE_URL", url_of(store))
    result = runner.invoke(cli, ["db", "backup", str(path)])
    assert result.exit_code == 0, result.output
    assert f"backed up {len(before)} tables to {path}" in result.output
    refused = runner.invoke(cli, ["db", "restore", str(path)])
    assert refused.exit_code == 1
    assert "restore failed" in refused.output and "--force" in refused.output
    monkeypatch.setenv("OMS_DATABASE_URL", fresh_url)
    upgrade(fresh_url)  # a migrated but empty store counts as empty
    assert store_row_count(fresh_url) == 0
    result = runner.invoke(cli, ["db", "restore", str(path)])
    assert result.exit_code == 0, result.output
    assert f"restored {len(before)} tables" in result.output
    restored = Store(make_engine(fresh_url))
    try:
        assert snapshot(restored) == before
    finally:
        restored.engine.dispose()


def test_restore_refuses_a_file_that_is_not_a_backup_and_leaves_the_store_alone(store, tmp_path):
    load(store)
    before = snapshot(store)
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a backup at all\n" * 100)
    with pytest.raises(BackupError, match=r"junk\.backup"):
        restore(url_of(store), junk, force=True)
    with pytest.raises(BackupError, match="no backup at"):
        restore(url_of(store), tmp_path / "missing.backup", force=True)
    assert snapshot(store) == before


def test_a_missing_pg_dump_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(backup_module, "PG_BIN_DIRS", (str(tmp_path / "nowhere"),))
    with pytest.raises(BackupError, match=r"pg_dump not found on PATH or in .*nowhere; install the PostgreSQL client"):
        backup_module.pg_tool("pg_dump")


def test_the_password_goes_to_pg_tools_by_environment_not_argument():
    dsn, env = backup_module._libpq("postgresql+psycopg://oms:s3cret@127.0.0.1:5432/shop")
    assert dsn == "postgresql://oms@127.0.0.1:5432/shop"
    assert env["PGPASSWORD"] == "s3cret"
    assert make_url(dsn).password is None


def test_a_sqlite_backup_taken_while_a_writer_commits_is_a_consistent_snapshot(tmp_path):
    """Each backup, taken while another thread adjusts stock, holds on_hand = sum of its movements."""
    url = f"sqlite:///{tmp_path / 'live.db'}"
    upgrade(url)
    store = Store(make_engine(url))
    token = store.write(lambda uow: create_key(uow.conn, Role.ADMIN, "writer"))
    h = {"Authorization": f"Bearer {token}"}
    stop = threading.Event()
    written = [0]
    with TestClient(create_app(store, rate_limit_per_minute=0), raise_server_exceptions=True) as client:
        for sku in ("A", "B"):
            assert client.put(f"/api/v1/products/{sku}", json={"name": sku, "unit_price": "1.00"}, headers=h).is_success

        def writer() -> None:
            deadline = time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < deadline:
                for sku in ("A", "B"):
                    body = {"sku": sku, "qty_delta": 1, "reason": "count"}
                    assert client.post("/api/v1/inventory/adjustments", json=body, headers=h).status_code == 201
                written[0] += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            seen = []
            for i in range(8):
                time.sleep(0.05)
                copy = tmp_path / f"snap-{i}.db"
                backup(url, copy)
                snap = Store(make_engine(f"sqlite:///{copy}"))
                with snap.engine.connect() as conn:
                    rows = conn.execute(
                        text(
                            "SELECT p.sku, p.on_hand, (SELECT coalesce(sum(qty_delta), 0) FROM stock_movements m"
                            " WHERE m.sku = p.sku) FROM products p ORDER BY p.sku"
                        )
                    ).all()
                snap.engine.dispose()
                assert all(on_hand == moved for _, on_hand, moved in rows), rows
                seen.append(sum(on_hand for _, on_hand, _ in rows))
        finally:
            stop.set()
            thread.join(30)
    store.engine.dispose()
    assert written[0] > 0
    assert seen == sorted(seen) and seen[-1] > 0  # the copies followed the live writes
