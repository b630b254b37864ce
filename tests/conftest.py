"""Shared fixtures. Every store fixture runs on SQLite and on PostgreSQL.

PostgreSQL comes from OMS_TEST_PG_URL (set by `make test`, which starts a private server). Without
it the PostgreSQL variants are skipped with a reason, never silently passed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from oms.access.keys import create_key
from oms.app import create_app
from oms.domain.access import Role
from oms.settings import forget
from oms.store.db import Store, make_engine
from oms.store.migrate import upgrade
from oms.store.tables import metadata


def _database_of_this_worker(url: str | None) -> str | None:
    """Under pytest-xdist each worker gets a database of its own on the test server (made when missing)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    name = f"{make_url(url).database}_{worker}"
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    mine = make_url(url).set(database=name).render_as_string(hide_password=False)
    os.environ["OMS_TEST_PG_URL"] = mine  # for the tests that read it themselves (the stress harness)
    return mine


PG_URL = _database_of_this_worker(os.environ.get("OMS_TEST_PG_URL"))


@pytest.fixture(autouse=True)
def _settings_read_per_test() -> Iterator[None]:
    """oms reads its environment once per process (`oms.settings`); each test starts from it afresh."""
    forget()
    yield
    forget()


@pytest.fixture
def monkeypatch(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """pytest's monkeypatch, whose environment changes oms reads at once (its settings are read again)."""
    setenv, delenv = monkeypatch.setenv, monkeypatch.delenv

    def set_and_forget(name: str, value: str, prepend: str | None = None) -> None:
        setenv(name, value, prepend)
        forget()

    def del_and_forget(name: str, raising: bool = True) -> None:
        delenv(name, raising)
        forget()

    monkeypatch.setenv = set_and_forget  # type: ignore[method-assign]
    monkeypatch.delenv = del_and_forget  # type: ignore[method-assign]
    return monkeypatch


STORES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating per test would be slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_engine_url() -> str:
    if not PG_URL:
        pytest.skip("OMS_TEST_PG_URL is not set: run through `make test` to include PostgreSQL")
    engine = make_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    upgrade(PG_URL)
    return PG_URL


def _truncate_pg(store: Store) -> None:
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store of each kind."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "oms.db"
        shutil.copy(template, path)
        s = Store(make_engine(f"sqlite:///{path}"))
    else:
        url: str = request.getfixturevalue("pg_engine_url")
        s = Store(make_engine(url))
        _truncate_pg(s)
    yield s
    s.engine.dispose()


class Api:
    """A test client speaking as one key; `as_role` gives another caller on the same app."""

    def __init__(self, client: TestClient, store: Store, token: str) -> None:
        self.client = client
        self.store = store
        self.headers = {"Authorization": f"Bearer {token}"}

    def as_role(self, role: Role, channel: str | None = None, name: str | None = None) -> Api:
        token = self.store.write(lambda uow: create_key(uow.conn, role, name or f"test-{role}-{channel}", channel))
        return Api(self.client, self.store, token)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get("/api/v1" + path, headers=self.headers, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post("/api/v1" + path, json=json, headers=self.headers, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.put("/api/v1" + path, json=json, headers=self.headers, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.patch("/api/v1" + path, json=json, headers=self.headers, **kw)


@pytest.fixture
def api(store: Store) -> Iterator[Api]:
    """The real app over a real store, speaking as an admin key."""
    app = create_app(store)
    with TestClient(app, raise_server_exceptions=False) as client:
        token = store.write(lambda uow: create_key(uow.conn, Role.ADMIN, "test-admin"))
        yield Api(client, store, token)
