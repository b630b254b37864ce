"""Kill the worker process mid-delivery, start it again: every message is delivered, none lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import Receiver, customer, outbox_rows, place, product

OMS = str(Path(sys.executable).parent / "oms")


def start_worker(url: str, mail_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "OMS_DATABASE_URL": url,
        "OMS_MAIL_DIR": str(mail_dir),
        "OMS_WORKER_LEASE_SECONDS": "2",
        "OMS_WORKER_POLL_SECONDS": "0.1",
        "OMS_OUTBOX_BACKOFF_SECONDS": "0.2",
    }
    env.pop("OMS_SMTP_URL", None)
    with log.open("ab") as out:
        return subprocess.Popen([OMS, "worker", "--no-jobs", "--max-seconds", "60"], env=env, stdout=out, stderr=out)


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_worker_killed_mid_delivery_loses_nothing_after_restart(api, tmp_path):
    receiver = Receiver(delay_first=8.0)  # the first request hangs: the worker is killed inside it
    procs: list[subprocess.Popen[bytes]] = []
    try:
        api.post("/webhooks", {"url": receiver.url, "event_types": ["order_placed"]})
        product(api, "A")
        customer(api)
        for n in range(6):
            place(api, f"SO-{n}", [("A", 1)])
        webhook_ids = {r.id for r in outbox_rows(api.store, kind="webhook")}
        email_ids = {r.id for r in outbox_rows(api.store, kind="email")}
        assert (len(webhook_ids), len(email_ids)) == (6, 6)

        url = api.store.engine.url.render_as_string(hide_password=False)
        mail_dir, log = tmp_path / "mail", tmp_path / "worker.log"
        procs.append(start_worker(url, mail_dir, log))
        assert wait_for(lambda: len(receiver.requests) >= 1, 30), log.read_text()
        procs[0].send_signal(signal.SIGKILL)  # no chance to record anything
        procs[0].wait(timeout=10)
        in_flight = receiver.requests[0]["headers"]["webhook-id"]
        assert {r.id for r in outbox_rows(api.store, status="delivered")} & {in_flight} == set()

        procs.append(start_worker(url, mail_dir, log))
        assert wait_for(lambda: len(outbox_rows(api.store, status="delivered")) == 12, 45), log.read_text()
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(timeout=10) == 0

        received = [r["headers"]["webhook-id"] for r in receiver.requests]
        assert set(received) == webhook_ids  # every message arrived
        assert received.count(in_flight) == 2  # the one in flight at the kill came again, same id
        assert len(received) == 7  # and only that one
        assert {p.stem for p in mail_dir.glob("*.eml")} == email_ids
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        receiver.close()
