"""Slow and stalled clients against a real `oms serve`: others are served, the stalled are dropped in time.

The server runs with OMS_REQUEST_READ_TIMEOUT_SECONDS=2: each request must arrive whole within 2 s
(from the connection's start, or the request's first byte on a kept-alive connection).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from oms.access.keys import create_key
from oms.domain.access import Role
from oms.store.db import Store, make_engine
from oms.store.migrate import upgrade
from tests.processes import stop_process

DEADLINE_S = 2.0
SLACK_S = 2.5  # scheduling noise on a loaded 2-core machine
START_TIMEOUT_S = 30.0


@dataclass
class Live:
    host: str
    port: int
    token: str
    store: Store
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("slow")
    url = f"sqlite:///{tmp / 'oms.db'}"
    upgrade(url)
    store = Store(make_engine(url))
    token = store.write(lambda uow: create_key(uow.conn, Role.ADMIN, "slow-test"))
    port = _free_port()
    env = {
        **os.environ,
        "OMS_DATABASE_URL": url,
        "OMS_MAIL_DIR": str(tmp / "mail"),
        "OMS_INPROCESS_WORKER": "0",
        "OMS_REQUEST_READ_TIMEOUT_SECONDS": str(DEADLINE_S),
    }
    log = tmp / "server.log"
    oms = Path(sys.executable).parent / "oms"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(oms), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "oms serve did not start: " + log.read_text()
            time.sleep(0.1)
        yield Live("127.0.0.1", port, token, store, log)
    finally:
        stop_process(proc)
        store.engine.dispose()


def connect(live: Live) -> socket.socket:
    s = socket.create_connection((live.host, live.port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_head(s: socket.socket) -> bytes:
    """Read until the end of a response's headers (or until the server closes)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = s.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def exchange(live: Live, raw: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes as a request; the response's status line and headers."""
    with connect(live) as s:
        s.settimeout(timeout)
        s.sendall(raw)
        return read_head(s)


def read_response(s: socket.socket) -> bytes:
    """One whole response with a Content-Length body, on a connection that stays open."""
    answer = read_head(s)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


def healthz(live: Live) -> int:
    """The status of a /healthz request on a fresh connection (its client gives up after 3 s)."""
    with urllib.request.urlopen(f"http://{live.host}:{live.port}/healthz", timeout=3) as r:
        return int(r.status)


def closed_after(s: socket.socket, opened: float, limit: float) -> float:
    """Seconds from `opened` until the server closed `s` (reading whatever it sent); fails past `limit`."""
    s.settimeout(0.2)
    while time.monotonic() - opened < limit:
        try:
            data = s.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - opened
        if not data:
            return time.monotonic() - opened
    raise AssertionError(f"still open after {limit:.1f} s")


def test_stalled_and_dripping_clients_are_dropped_within_the_deadline_while_others_are_served(live):
    auth = f"Authorization: Bearer {live.token}\r\n".encode()
    openings = {
        "silent": b"",
        "half a request line": b"GET /api/v1/ord",
        "headers never end": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n",
        "body stops short": b"POST /api/v1/inventory/adjustments HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        + b'{"sku": "A", "qty_delta": 1, ',
    }
    stalled: list[tuple[str, socket.socket, float]] = []
    for name, first in openings.items():
        for _ in range(5):
            s = connect(live)
            opened = time.monotonic()
            if first:
                s.sendall(first)
            stalled.append((name, s, opened))
    drip = connect(live)
    drip_opened = time.monotonic()
    try:
        # 20 stalled connections and a drip-feeder are open; everyone else is still served.
        answers = []
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        for i in range(8):
            answers.append(healthz(live))
            if i < len(request):
                drip.sendall(request[i : i + 1])  # one byte at a time, never finishing inside the deadline
            time.sleep(0.15)
        assert answers == [200] * 8
        for name, s, opened in stalled:
            took = closed_after(s, opened, DEADLINE_S + SLACK_S)
            assert took >= DEADLINE_S - 0.3, (name, took)
        took = closed_after(drip, drip_opened, DEADLINE_S + SLACK_S)
        assert took >= DEADLINE_S - 0.3, took
    finally:
        for _, s, _ in stalled:
            s.close()
        drip.close()
    with live.store.engine.connect() as conn:  # the cut-off adjustment stored nothing
        assert conn.exec_driver_sql("SELECT count(*) FROM stock_movements").scalar_one() == 0
    assert "request not read within 2 s" in live.log.read_text()


def test_a_slow_but_whole_request_inside_the_deadline_is_served(live):
    with connect(live) as s:
        for part in (b"GET /heal", b"thz HTTP/1.1\r\nHo", b"st: x\r\nConnection: close\r\n\r\n"):
            s.sendall(part)
            time.sleep(0.4)
        s.settimeout(5)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b'{"status":"ok"}')


def test_a_kept_alive_connection_gets_a_fresh_deadline_for_each_request(live):
    with connect(live) as s:
        s.settimeout(5)
        for _ in range(3):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(s).endswith(b'{"status":"ok"}')
            time.sleep(DEADLINE_S * 0.6)  # idle between requests, each inside uvicorn's keep-alive of 5 s
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # a fourth that never ends is dropped in time
        opened = time.monotonic()
        took = closed_after(s, opened, DEADLINE_S + SLACK_S)
        assert took >= DEADLINE_S - 0.3


def test_raw_hostile_bytes_in_the_request_line_and_headers_never_get_a_5xx(live):
    auth = f"Authorization: Bearer {live.token}\r\n".encode()
    requests = [
        b"GET /api/v1/products/\xff\xfe HTTP/1.1\r\nHost: x\r\n" + auth + b"Connection: close\r\n\r\n",
        b"GET /api/v1/orders?customer_id=\xff&channel=%00 HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Connection: close\r\n\r\n",
        b"GET /api/v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: \xc3\x28\r\nConnection: close\r\n\r\n",
        b"GET /api/v1/orders HTTP/1.1\r\nHost: x\r\n" + auth + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(2000)) + b"\r\n",
        b"POST /api/v1/inventory/adjustments HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: close\r\n\r\n0\r\n\r\n",
        b"BREW /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello on the plain port
    ]
    for raw in requests:
        answer = exchange(live, raw)
        status = answer[9:12]
        assert status.isdigit() and int(status) < 500, (raw[:60], answer[:200])
        assert healthz(live) == 200  # and the server still answers
    with live.store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM stock_movements").scalar_one() == 0
