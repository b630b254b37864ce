"""Issue 8, item 5: PostgreSQL restarted (`pg_ctl restart -m immediate`) under load.

On a PostgreSQL cluster of the test's own (so no other test is hit), a server and a worker serve
clients that place orders and receive goods, each request sent with an Idempotency-Key and sent
again until answered; the database is restarted immediately while they run. Afterwards every
answered order and receipt is stored exactly once, nothing unanswered is stored, every invariant
holds and every notification was delivered.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    Caller,
    Cluster,
    KeyedLoad,
    PrivatePostgres,
    Stats,
    admin_key,
    all_problems,
    fresh_database,
    scaled,
    set_up,
    wait_outbox_delivered,
    write_artifact,
)

TIERS = {"DB-STD": "standard", "DB-PLT": "platinum"}
SKUS = [f"DB-{i:02d}" for i in range(5)]
CLIENTS = 5


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    if not PrivatePostgres.available():
        pytest.skip("the PostgreSQL 15 server binaries (/usr/lib/postgresql/15/bin) are not installed")
    workdir = Path(tempfile.mkdtemp(prefix="oms-pg-stress-"))
    workdir.chmod(0o755)  # the server runs as `postgres` when we are root
    pg = PrivatePostgres(workdir / "data")
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def restart_under_load(pg: PrivatePostgres, tmp_path: Path, restarts: int) -> dict[str, Any]:
    url = fresh_database(pg.start(), "restart")
    cluster = Cluster(url, tmp_path / "run", servers=1, workers=1)
    cluster.start()
    try:
        key = admin_key(url)
        setup = Caller(cluster.bases, key)
        set_up(setup, SKUS, TIERS)
        setup.close()
        stats = Stats()
        load = KeyedLoad(cluster.bases, key, SKUS, list(TIERS), "DB", stats=stats)
        load.start(CLIENTS)
        rng = random.Random(8)
        try:
            for _ in range(restarts):
                time.sleep(rng.uniform(1.0, 2.5))
                pg.restart_immediate()
                if load.errors:
                    break
            time.sleep(1.5)  # the clients get through after the last restart
        finally:
            load.stop()
        load.check_answers(url)
        assert all(p.alive() for p in cluster.procs), "a process died with the database"
        assert wait_outbox_delivered(url, 120), "outbox not delivered after the restart"
        problems = all_problems(url, None, cluster.mail_dir)
        assert problems == {}, json.dumps(problems, indent=1)[:6000]

        figures = {
            "restarts": restarts,
            **load.figures(),
            "requests_sent_again": stats.resent,
            "store_write_retries": dict(cluster.retries()),
            "latency": stats.summary(),
        }
        write_artifact(f"db-restart-{restarts}.json", figures)
        return figures
    finally:
        cluster.stop()


def test_clients_retrying_through_a_database_restart_store_each_request_once(
    private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    figures = restart_under_load(private_pg, tmp_path, restarts=1)
    assert figures["orders"] > 0 and figures["receipts"] > 0
    assert figures["requests_sent_again"] >= 1  # the restart was felt, and got through


@pytest.mark.stress
def test_database_restarts_under_load_at_length(private_pg: PrivatePostgres, tmp_path: Path) -> None:
    figures = restart_under_load(private_pg, tmp_path, restarts=scaled(10))
    print(f"\ndb restart: {json.dumps(figures)}")  # noqa: T201 (the run's figures)
