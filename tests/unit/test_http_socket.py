"""The server sends each answer at once, even on the sockets uvicorn's worker processes get."""

from __future__ import annotations

import os
import socket
from typing import Any

from oms.api.slow_clients import _no_delay


class _Transport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None


def test_a_connection_whose_socket_does_not_say_tcp_still_gets_no_delay():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as _client:
            accepted, _ = listener.accept()
            # As a `--workers N` process sees it: the same connection, with its protocol unknown (0),
            # so asyncio does not set TCP_NODELAY on it itself.
            handed = socket.socket(accepted.family, accepted.type, 0, fileno=os.dup(accepted.fileno()))
            with accepted, handed:
                assert handed.proto == 0
                assert handed.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                _no_delay(_Transport(handed))  # type: ignore[arg-type]
                assert handed.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
