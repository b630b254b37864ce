"""Fixtures for notifications: a real SMTP server and a real HTTP receiver, both on loopback."""

from __future__ import annotations

import email
import json
import socket
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from oms.store.db import Store
from oms.worker import Worker, WorkerConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _loopback_receivers_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests' receivers listen on 127.0.0.1, which oms refuses unless told otherwise.
    (tests/hostile/test_webhooks.py checks the refusal with the variable unset.)"""
    monkeypatch.setenv("OMS_WEBHOOK_ALLOW_PRIVATE", "1")


@pytest.fixture(autouse=True)
def _mail_sink_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test writes to ./mail or reaches an SMTP server it did not start."""
    monkeypatch.delenv("OMS_SMTP_URL", raising=False)
    monkeypatch.delenv("OMS_LATE_PO_GRACE_DAYS", raising=False)
    monkeypatch.delenv("OMS_SECRET_KEY", raising=False)
    monkeypatch.setenv("OMS_MAIL_DIR", str(tmp_path / "mail"))
    return tmp_path / "mail"


class Inbox:
    """aiosmtpd handler keeping every message received."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content, policy=default))  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def by_subject(self, fragment: str) -> list[EmailMessage]:
        return [m for m in self.messages if fragment in str(m["Subject"])]


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1 and a free port; OMS_SMTP_URL points at it."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("OMS_SMTP_URL", f"smtp://127.0.0.1:{port}")
    try:
        yield inbox
    finally:
        controller.stop()


class Receiver:
    """A webhook endpoint on loopback: records each request (any method); answers 500 to the first
    `fail_first`, then `status` (with a Location header when `location` is given)."""

    def __init__(
        self, fail_first: int = 0, delay_first: float = 0.0, status: int = 200, location: str | None = None
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.delay_first = delay_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    n = len(receiver.requests)
                    receiver.requests.append(
                        {
                            "method": self.command,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "at": time.time(),
                        }
                    )
                if n == 0 and receiver.delay_first:
                    time.sleep(receiver.delay_first)
                code = 500 if n < receiver.fail_first else status
                self.send_response(code)
                if location:
                    self.send_header("location", location)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = do_PUT = do_HEAD = do_POST  # noqa: N815 (http.server's names): a followed redirect shows here

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def make_worker(store: Store, **kw: Any) -> Worker:
    config = WorkerConfig(backoff_seconds=0.0, poll_seconds=0.05, **kw)
    return Worker(store, config, name="test-worker")


# ---- setting up data through the API -------------------------------------------------------------


def product(api: Any, sku: str, lead: int | None = 30, policy: dict[str, Any] | None = None, name: str = "") -> None:
    body: dict[str, Any] = {"name": name or f"Product {sku}", "unit_price": "10.00"}
    if lead is not None:
        body["lead_time_days"] = lead
    if policy is not None:
        body["backorder_policy"] = policy
    r = api.put(f"/products/{sku}", body)
    assert r.status_code in (200, 201), r.text


def customer(api: Any, cid: str = "ALICE", tier: str = "standard") -> None:
    r = api.put(f"/customers/{cid}", {"name": cid.title(), "email": f"{cid.lower()}@example.com", "tier": tier})
    assert r.status_code in (200, 201), r.text


def stock(api: Any, sku: str, qty: int) -> None:
    r = api.post("/inventory/adjustments", {"sku": sku, "qty_delta": qty, "reason": "count"})
    assert r.status_code == 201, r.text


def place(api: Any, number: str, lines: list[tuple[str, int]], cid: str = "ALICE", **kw: Any) -> dict[str, Any]:
    body = {
        "order_number": number,
        "channel": "web",
        "customer_id": cid,
        "lines": [{"sku": s, "qty": q} for s, q in lines],
    }
    r = api.post("/orders", body | kw)
    assert r.status_code == 201, r.text
    return dict(r.json())


def po(api: Any, number: str, lines: list[tuple[str, int, str]]) -> None:
    body = {
        "po_number": number,
        "supplier": "Acme",
        "lines": [{"sku": s, "qty": q, "expected_date": d} for s, q, d in lines],
    }
    r = api.post("/purchase-orders", body)
    assert r.status_code == 201, r.text


def built(store: Store) -> int:
    """Let the worker turn every committed event into its messages (its first step each round)."""
    from oms.notifications.builder import build_notifications

    return build_notifications(store)


def outbox_rows(store: Store, **where: Any) -> list[Any]:
    """The outbox once the worker has built the messages of every event committed so far."""
    from sqlalchemy import select

    from oms.store.tables import outbox

    built(store)

    q = select(outbox).order_by(outbox.c.created_at, outbox.c.id)
    for k, v in where.items():
        q = q.where(outbox.c[k] == v)
    return list(store.read(lambda c: c.execute(q).all()))
