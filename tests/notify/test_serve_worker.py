"""`oms serve` on SQLite delivers notifications itself: an order placed over HTTP becomes an .eml file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from oms.access.keys import create_key
from oms.domain.access import Role
from oms.store.db import Store, make_engine
from oms.store.migrate import upgrade
from tests.processes import stop_process

from .conftest import free_port

OMS = str(Path(sys.executable).parent / "oms")


def call(base: str, key: str, method: str, path: str, body: dict) -> int:
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return int(resp.status)


def test_serve_on_sqlite_writes_the_confirmation_to_the_mail_folder(tmp_path):
    url = f"sqlite:///{tmp_path / 'oms.db'}"
    upgrade(url)
    store = Store(make_engine(url))
    key = store.write(lambda uow: create_key(uow.conn, Role.ADMIN, "test"))
    store.engine.dispose()
    port = free_port()
    mail = tmp_path / "mail"
    env = os.environ | {"OMS_DATABASE_URL": url, "OMS_MAIL_DIR": str(mail), "OMS_WORKER_POLL_SECONDS": "0.1"}
    env.pop("OMS_SMTP_URL", None)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([OMS, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        assert (
            call(base, key, "PUT", "/products/TENT", {"name": "Tent", "unit_price": "9.00", "lead_time_days": 7}) == 201
        )
        assert (
            call(base, key, "PUT", "/customers/ANN", {"name": "Ann", "email": "ann@example.com", "tier": "gold"}) == 201
        )
        order = {"order_number": "SO-1", "channel": "web", "customer_id": "ANN", "lines": [{"sku": "TENT", "qty": 2}]}
        assert call(base, key, "POST", "/orders", order) == 201
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not list(mail.glob("*.eml")):
            time.sleep(0.1)
        [eml] = list(mail.glob("*.eml"))
        text = eml.read_text()
        assert "Subject: Order SO-1 confirmed" in text
        assert "To: ann@example.com" in text
    finally:
        stop_process(proc, timeout=15)
        log.close()
