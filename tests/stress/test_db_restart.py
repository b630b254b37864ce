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
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    Caller,
    Cluster,
    PrivatePostgres,
    Stats,
    admin_key,
    all_problems,
    fresh_database,
    make_order,
    read,
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
        stop = threading.Event()
        acked: dict[str, int] = {}
        receipts: dict[str, int] = {}
        lock = threading.Lock()
        errors: list[BaseException] = []
        stats = Stats()

        def client(i: int) -> None:
            r = random.Random(i)
            caller = Caller(cluster.bases, key, stats, seed=i)
            try:
                for n in range(100_000):
                    if stop.is_set():
                        return
                    if i == 0:
                        grn = f"DB-GRN-{n:05d}"
                        a = caller.post(
                            "/receipts", {"grn_number": grn, "lines": [{"sku": r.choice(SKUS), "qty": r.randint(1, 5)}]}
                        )
                        with lock:
                            receipts[grn] = a.status
                    else:
                        body = make_order(r, f"DB-{i}-{n:05d}", SKUS, list(TIERS))
                        a = caller.post("/orders", body)
                        with lock:
                            acked[body["order_number"]] = a.status
                    time.sleep(0.03)
            except BaseException as exc:
                errors.append(exc)
            finally:
                caller.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        rng = random.Random(8)
        try:
            for _ in range(restarts):
                time.sleep(rng.uniform(1.0, 2.5))
                pg.restart_immediate()
                if errors:
                    break
            time.sleep(1.5)  # the clients get through after the last restart
        finally:
            stop.set()
            for t in threads:
                t.join(150)
        assert not errors, errors[0]
        assert not any(t.is_alive() for t in threads)
        assert all(p.alive() for p in cluster.procs), "a process died with the database"
        assert set(acked.values()) <= {200, 201} and set(receipts.values()) <= {200, 201}
        assert wait_outbox_delivered(url, 120), "outbox not delivered after the restart"
        problems = all_problems(url, None, cluster.mail_dir)
        assert problems == {}, json.dumps(problems, indent=1)[:6000]

        def stored(conn: Any) -> tuple[list[str], list[str]]:
            return (
                [r[0] for r in conn.exec_driver_sql("SELECT order_number FROM orders")],
                [r[0] for r in conn.exec_driver_sql("SELECT grn_number FROM receipts")],
            )

        orders, grns = read(url, stored)
        assert sorted(orders) == sorted(acked)  # each answered order once, nothing unanswered
        assert sorted(grns) == sorted(receipts)
        figures = {
            "restarts": restarts,
            "orders": len(acked),
            "receipts": len(receipts),
            "replayed_answers": sum(1 for s in [*acked.values(), *receipts.values()] if s == 200),
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
