"""One deadline per webhook delivery, on both stores: a receiver that drips its answer byte by byte
is cut off at the deadline (recorded as such), and holds up no other receiver's messages."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..notify.conftest import Receiver, make_worker, outbox_rows
from .hooks import ALLOW, deliveries, isolate, one_order, subscribe


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


class DripReceiver:
    """Answers every request one byte every `interval` seconds (a valid 200 once complete), and notes
    whether the client hung up before the answer was whole. Bounded: at most 5 connections, each
    dripping at most len(answer) bytes; closed at the end of the test."""

    ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-padding: dripdripdrip\r\n\r\n"

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.stop = threading.Event()
        self.hung_up: list[bool] = []  # per connection: the client left before the answer was whole
        self.closed_at: list[float] = []
        self.ended = threading.Event()  # a connection has ended (hung up or answered whole)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/drip"
        self.threads = [threading.Thread(target=self._serve, daemon=True)]
        self.threads[0].start()

    def _serve(self) -> None:
        for _ in range(5):
            conn = None
            while conn is None and not self.stop.is_set():
                try:
                    conn, _ = self.sock.accept()
                except TimeoutError:
                    continue
            if conn is None:
                return
            t = threading.Thread(target=self._drip, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2.0)
            try:
                conn.recv(65536)  # the request (small: one read)
                for i in range(len(self.ANSWER)):
                    if self.stop.wait(self.interval):
                        break
                    conn.sendall(self.ANSWER[i : i + 1])
                self.hung_up.append(False)
            except OSError:  # the client closed its side: the next byte could not be sent
                self.hung_up.append(True)
            self.closed_at.append(time.time())
            self.ended.set()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
        self.sock.close()


@pytest.fixture
def drip() -> Iterator[DripReceiver]:
    d = DripReceiver()
    yield d
    d.close()


def test_a_dripping_receiver_is_cut_off_at_the_deadline_and_holds_up_no_other_receiver(api, monkeypatch, drip):
    monkeypatch.setenv(ALLOW, "1")
    monkeypatch.setenv("OMS_WEBHOOK_DEADLINE_SECONDS", "0.5")  # the answer takes ~6 s to drip
    fast = Receiver()
    try:
        slow_sub = subscribe(api, drip.url)  # subscribed first: its messages come first in the batch
        fast_sub = subscribe(api, fast.url)
        for n in range(3):
            one_order(api, f"SO-{n}")
        make_worker(api.store).run_once()  # one round, one batch: 6 webhooks and 3 emails

        slow = deliveries(api, slow_sub["id"])  # one attempt, cut off at the deadline
        assert [(d["ok"], d["status_code"], d["error"]) for d in slow] == [
            (False, None, "no answer within the deadline (0.5 s)")
        ]
        assert slow[0]["duration_ms"] < 5000  # recorded by the worker: well short of the whole drip
        assert drip.ended.wait(10)
        assert drip.hung_up[:1] == [True]  # the worker hung up mid-answer
        slow_rows = [r for r in outbox_rows(api.store, kind="webhook") if r.subscription_id == slow_sub["id"]]
        # The receiver's other messages were not attempted this round: still pending, no attempt counted.
        assert sorted((r.status, r.attempts) for r in slow_rows) == [("pending", 0), ("pending", 0), ("pending", 1)]

        assert [d["ok"] for d in deliveries(api, fast_sub["id"])] == [True, True, True]
        assert all(r.status == "delivered" for r in outbox_rows(api.store, kind="email"))
        # The fast receiver had its messages while the slow one was still dripping.
        assert max(r["at"] for r in fast.requests) < drip.closed_at[0]
    finally:
        fast.close()
