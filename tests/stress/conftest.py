"""Fixtures for the multi-process tests: databases of their own, processes always stopped.

Starting `oms serve` costs seconds (imports), so the tests that need no crash share one cluster of
2 servers + 2 workers on one database for the session (`shared`); they use SKUs and order numbers of
their own, and their checks read the whole database. Tests that kill processes start their own.
Nothing here is autouse: other tests in this folder (SQLite writers) do not need PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .harness import PG_URL, Caller, Cluster, Hook, admin_key, drop_database, drop_templates, fresh_database


@pytest.fixture(scope="session")
def stress_pg() -> Iterator[str]:
    """The PostgreSQL server of OMS_TEST_PG_URL; the migrated template is dropped at the end."""
    if not PG_URL:
        pytest.skip("OMS_TEST_PG_URL is not set: the multi-process tests need PostgreSQL (make test sets it)")
    yield PG_URL
    drop_templates(PG_URL)


SHARED_RULE = ("priority", "customer_tier", "placed_at")


@dataclass
class Shared:
    cluster: Cluster
    hook: Hook
    key: str

    @property
    def url(self) -> str:
        return self.cluster.url


@pytest.fixture(scope="session")
def shared(stress_pg: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """2 `oms serve` + 2 `oms worker` on one database, a webhook receiver subscribed to every event."""
    url = fresh_database(stress_pg, "shared")
    hook = Hook()
    cluster = Cluster(url, tmp_path_factory.mktemp("shared"), servers=2, workers=2)
    try:
        cluster.start()
        key = admin_key(url)
        caller = Caller(cluster.bases, key)
        answer = caller.post("/webhooks", {"url": hook.url, "event_types": ["allocated", "cancelled"]})
        assert answer.status == 201, answer.body
        # One rule for the whole session: the FIFO check replays every SKU's history under it.
        answer = caller.put("/settings/allocation-rule", {"keys": list(SHARED_RULE)})
        assert answer.status == 200, answer.body
        caller.close()
        yield Shared(cluster, hook, key)
    finally:
        cluster.stop()
        hook.close()
        drop_database(url)


@pytest.fixture
def stress_url(stress_pg: str) -> Iterator[str]:
    """An empty migrated database of its own for this test, dropped afterwards."""
    url = fresh_database(stress_pg, "own")
    yield url
    drop_database(url)


@pytest.fixture
def cluster(stress_url: str, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Start `Cluster`s on the test's own database; every process is stopped when the test ends."""
    made: list[Cluster] = []

    def start(servers: int = 2, workers: int = 2, name: str = "run", **env: Any) -> Cluster:
        c = Cluster(stress_url, tmp_path / name, servers, workers, **env)
        made.append(c)
        c.start()
        return c

    yield start
    for c in made:
        c.stop()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()
