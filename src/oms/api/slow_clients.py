"""uvicorn's HTTP/1.1 protocol with a deadline on reading each request.

uvicorn (h11) closes idle keep-alive connections, but a client that connects and never finishes its
request line, headers or body (a slow-loris) is kept open forever. Here each request must arrive
whole within OMS_REQUEST_READ_TIMEOUT_SECONDS (default 30) from its first byte, or from the
connection's start for the first one; otherwise the connection is closed. Responses that take long
to compute are not limited: the clock stops once the request has been read.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from oms.settings import settings

DEFAULT_TIMEOUT_S = 30.0


def read_timeout() -> float:
    return settings().request_read_timeout_seconds


def _no_delay(transport: asyncio.Transport) -> None:
    """Send each write at once (TCP_NODELAY). asyncio sets it only on sockets whose `proto` says TCP;
    the listening socket uvicorn hands its worker processes (`--workers N`) says 0, so there every
    answer's second write waited for the client's delayed ACK: 40 ms per request."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class DeadlineH11Protocol(H11Protocol):
    """H11Protocol that drops a connection whose request is not read in full within the deadline."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.read_timeout = read_timeout()
        self.read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _no_delay(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.read_deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._disarm()  # read whole (DONE), or the connection is closing or broken

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self.read_deadline = self.loop.call_later(self.read_timeout, self._expire)

    def _disarm(self) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
            self.read_deadline = None

    def _expire(self) -> None:
        self.read_deadline = None
        if not self.transport.is_closing():
            self.logger.warning("request not read within %.0f s: connection closed", self.read_timeout)
            self.transport.close()
