"""Webhook signing (Standard Webhooks, with the `standardwebhooks` library) and delivery with httpx.

One delivery is one POST under one total deadline: name resolution, connecting, TLS, sending and
the answer's status line and headers all come out of the same budget (every socket operation gets
what is left of it, and none starts once it is spent), so a receiver that drips bytes is cut off at
the deadline. The body of the answer is never read.

Where it may go (oms.notifications.targets): the host's addresses are resolved and checked first, and the
connection is opened to a checked address only (the client's network backend is pinned to them),
so a name cannot be re-resolved to somewhere else between the check and the connect. Redirects
are never followed (a 3xx is a failed attempt), no proxy is taken from the environment, and a
failure is summarised in a few fixed words without host, port or the operating system's message.
"""

from __future__ import annotations

import base64
import secrets
import ssl
import threading
import time
import typing
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime

import httpcore
import httpx
from standardwebhooks import Webhook

from oms.notifications import targets

SECRET_PREFIX = "whsec_"
DEADLINE_SECONDS = 10.0
USER_AGENT = "oms-webhooks/1"


def new_secret() -> str:
    """A subscription secret as Standard Webhooks writes it: "whsec_" + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))."""
    return str(Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode()))


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


# ---- one total deadline ---------------------------------------------------------------------------


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self, timeout: float | None, expired: type[Exception]) -> float:
        """What is left of the budget (capped by the operation's own timeout); raises once it is spent."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise expired("delivery deadline reached")
        return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake gets at most what is left of the deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        left = self._deadline.left(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._inner.start_tls(ssl_context, server_hostname, left), self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects only to the addresses checked for the URL's host, within the deadline."""

    def __init__(self, host: str, addresses: list[targets.IPAddress], deadline: _Deadline) -> None:
        self._host = host
        self._addresses = addresses
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if host.strip("[]").lower() != self._host:  # nothing but the checked URL's host (no redirects, no proxy)
            raise targets.TargetRefused("refused target: not the subscribed host")
        failure: Exception = httpcore.ConnectError("no address")
        for addr in self._addresses:
            left = self._deadline.left(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(str(addr), port, left, local_address, socket_options)
            except httpcore.ConnectError as exc:  # the next address, if any
                failure = exc
                continue
            return _BoundedStream(stream, self._deadline)
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise targets.TargetRefused("refused target: not a TCP address")


class _PinnedTransport(httpx.HTTPTransport):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        context = _ssl_context()
        super().__init__(verify=context, trust_env=False)
        # httpx's transport takes no network backend of its own (encode/httpx#3749): give its pool ours.
        self._pool = httpcore.ConnectionPool(ssl_context=context, max_connections=1, network_backend=backend)


_context: ssl.SSLContext | None = None
_context_lock = threading.Lock()


def _ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, made once (loading the CA bundle takes milliseconds)."""
    global _context
    with _context_lock:
        if _context is None:
            _context = httpx.create_ssl_context(trust_env=False)
        return _context


# A resolution runs in this small pool so that the delivery waits for it no longer than its deadline
# (the system resolver has its own, longer, timeouts). A stuck lookup keeps its thread until it returns.
_resolving = ThreadPoolExecutor(max_workers=4, thread_name_prefix="oms-webhook-dns")


def _checked_addresses(
    host: str, port: int, resolver: targets.Resolver, allow: bool | None, deadline: _Deadline
) -> list[targets.IPAddress]:
    if targets.literal_address(host) is not None:
        return targets.resolve_checked(host, port, resolver, allow)
    future = _resolving.submit(targets.resolve_checked, host, port, resolver, allow)
    try:
        return future.result(timeout=deadline.left(None, httpx.ConnectTimeout))
    except FutureTimeout:
        raise httpx.ConnectTimeout("name resolution did not finish within the deadline") from None


# ---- delivering ---------------------------------------------------------------------------------


def post(
    url: str,
    secret: str,
    msg_id: str,
    body: bytes,
    *,
    deadline_seconds: float = DEADLINE_SECONDS,
    resolver: targets.Resolver = targets.system_resolver,
    allow_private: bool | None = None,
) -> Attempt:
    """POST one signed delivery to a permitted address within one deadline; any 2xx is success."""
    started = time.monotonic()
    deadline = _Deadline(deadline_seconds)
    ts = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }
    code: int | None = None
    try:
        _, host, port = targets.host_of(url)
        addresses = _checked_addresses(host, port, resolver, allow_private, deadline)
        transport = _PinnedTransport(_PinnedBackend(host, addresses, deadline))
        timeout = httpx.Timeout(deadline_seconds)
        with (
            httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream("POST", url, content=body, headers=headers) as resp,
        ):
            code = resp.status_code  # the answer's body is not read
        error = None if 200 <= code < 300 else f"HTTP {code}"
        if 300 <= code < 400:
            error = f"HTTP {code}: redirects are not followed"
    except Exception as exc:
        error = summary(exc, deadline_seconds)
    return Attempt(error is None, code, error, int((time.monotonic() - started) * 1000))


def summary(exc: BaseException, deadline_seconds: float) -> str:
    """A failed attempt in a few fixed words: never the host, port or the system's own message."""
    if isinstance(exc, targets.TargetRefused):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within the deadline ({deadline_seconds:g} s)"
    if isinstance(exc, httpx.ConnectError):
        return "TLS handshake failed" if _caused_by(exc, ssl.SSLError) else "could not connect"
    if isinstance(exc, httpx.ProtocolError | httpx.DecodingError):
        return "not a valid HTTP answer"
    if isinstance(exc, OSError):  # the resolver's errors
        return "the host name did not resolve"
    return f"delivery failed ({type(exc).__name__})"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # httpx wraps httpcore's error, which wraps the socket's
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
