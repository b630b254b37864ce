"""The gate every request passes: request id, access log, body limits, the caller, rate limit, idempotency.

A plain ASGI middleware (no BaseHTTPMiddleware) so the body is read once, bounded, and handed on.
Order of refusals: 413 (too large), 415 (not JSON), 400 (malformed JSON), then the caller is
resolved (401/403 stay with the route), 429 (rate limit), then the Idempotency-Key is honoured.

Outside the API (the dashboard, the customer page) every body is bounded here too, at the smaller
form cap, before anything parses it and whoever sends it: an HTML 413 page past the cap.
"""

from __future__ import annotations

import email.message
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oms.access import keys
from oms.api import idempotency as idem
from oms.api.logs import ACCESS
from oms.api.problems import PROBLEM, TITLES, problem_bytes
from oms.api.ratelimit import RateLimiter
from oms.domain.access import Principal
from oms.store.db import Store
from oms.store.uow import utcnow

log = logging.getLogger("oms.api")
access_log = logging.getLogger(ACCESS)

MAX_BODY_BYTES = 1024 * 1024
# Outside the API: dashboard and customer-page forms. The largest, a 500-line purchase order, is ~40 KiB.
MAX_FORM_BYTES = 256 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
API_PREFIX = "/api/"
# POSTs that change nothing (a promise reserves no stock; previews) keep no Idempotency-Key.
READ_ONLY_POSTS = frozenset({"/api/v1/promise"})


def is_read_only_post(path: str) -> bool:
    return path in READ_ONLY_POSTS or path.endswith("/preview")


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_IDEMPOTENCY_KEY = re.compile(idem.KEY_PATTERN)
SWEEP_EVERY_S = 600.0


def bearer_token(authorization: str | None) -> str | None:
    """The key in 'Authorization: Bearer <key>', or None."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def route_template(scope: Scope) -> str | None:
    """The matched route as written, with the prefix of the router it was included under."""
    template = getattr(scope.get("route"), "path", None)
    if not isinstance(template, str):
        return None
    path: str = scope.get("path", "")
    concrete = template
    for name, value in (scope.get("path_params") or {}).items():
        concrete = concrete.replace("{" + name + "}", str(value)).replace("{" + name + ":path}", str(value))
    prefix = path[: len(path) - len(concrete)] if path.endswith(concrete) else ""
    return prefix + template


def _nul_in_url(path: str, query_string: bytes) -> str | None:
    """'path' (outside the API) or the name of the query parameter that holds a NUL character, if any."""
    if "\x00" in path and not path.startswith(API_PREFIX):  # the API's routes name the path parameter
        return "path"
    if b"\x00" not in query_string and b"%00" not in query_string:
        return None
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "query"
    return None


def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@dataclass
class GuardSettings:
    key_cache: keys.KeyCache
    max_body_bytes: int = MAX_BODY_BYTES
    max_form_bytes: int = MAX_FORM_BYTES
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(6000))
    usage: keys.UsageClock = field(default_factory=keys.UsageClock)


class _TooLarge(Exception):
    pass


class Guard:
    """ASGI middleware in front of the API (see the module docstring)."""

    def __init__(self, app: ASGIApp, store: Store, settings: GuardSettings) -> None:
        self.app = app
        self.store = store
        self.settings = settings
        self._last_sweep = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        state = scope.setdefault("state", {})
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        state["request_id"] = request_id
        sent: dict[str, Any] = {"status": None}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        try:
            await self._handle(scope, receive, send_with_id, headers)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id, "path": scope.get("path")})
            if sent["status"] is None:
                await _answer(
                    send_with_id,
                    500,
                    "Something went wrong on our side; quote the request_id.",
                    request_id=request_id,
                )
            else:
                sent["status"] = 500
        finally:
            principal: Principal | None = state.get("principal")
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "key": principal.name if principal else None,
                    "role": principal.role.value if principal else None,
                    "method": scope.get("method"),
                    "route": route_template(scope),
                    "path": scope.get("path"),
                    "status": sent["status"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )

    async def _handle(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        request_id: str = scope["state"]["request_id"]
        nul = _nul_in_url(path, scope.get("query_string", b""))
        if nul is not None:  # PostgreSQL refuses NUL in text: it must not get as far as a query
            await _answer(
                send,
                422,
                f"The URL's {nul} contains a NUL character.",
                [{"field": nul, "reason": "contains a NUL character"}],
                request_id=request_id,
            )
            return
        if not path.startswith(API_PREFIX):
            if method in BODY_METHODS:
                limit = self.settings.max_form_bytes
                try:
                    body = await _read_body(receive, headers, limit)
                except _TooLarge:
                    await _page(send, 413, "Form too large", f"The request body is larger than {limit} bytes.")
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send)
            return

        body = b""
        if method in BODY_METHODS:
            limit = self.settings.max_body_bytes
            try:
                body = await _read_body(receive, headers, limit)
            except _TooLarge:
                await _answer(
                    send,
                    413,
                    f"The request body is larger than {limit} bytes.",
                    [{"field": "body", "reason": "too large", "max_bytes": limit}],
                    request_id=request_id,
                )
                return
            refusal = _body_refusal(body, headers.get("content-type"))
            if refusal is not None:
                status, detail, errors = refusal
                await _answer(send, status, detail, errors, request_id=request_id)
                return
            receive = _replay(body, receive)

        principal = await self._principal(scope, headers)
        if principal is not None:
            wait = self.settings.limiter.take(f"key:{principal.key_id}")
            if wait > 0:
                per_minute = self.settings.limiter.per_minute
                await _answer(
                    send,
                    429,
                    f"This key may make {per_minute} requests a minute; retry after the time in Retry-After.",
                    [{"field": "Authorization", "reason": "rate limit", "limit_per_minute": per_minute}],
                    headers={"Retry-After": RateLimiter.retry_after(wait)},
                    request_id=request_id,
                )
                return

        key = headers.get(idem.HEADER)
        if method == "POST" and key is not None and not is_read_only_post(path):
            if not _IDEMPOTENCY_KEY.match(key):
                await _answer(
                    send,
                    422,
                    "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces.",
                    [{"field": idem.HEADER, "reason": "malformed", "pattern": idem.KEY_PATTERN}],
                    request_id=request_id,
                )
                return
            if principal is not None:
                await self._idempotent(scope, receive, send, principal, key, body)
                return
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope, headers: Headers) -> Principal | None:
        token = bearer_token(headers.get("authorization"))
        if token is None:
            return None
        keys_cache = self.settings.key_cache
        principal = keys_cache.fresh(token)  # most requests: from memory, no transaction
        if principal is None:
            principal = await run_in_threadpool(keys_cache.authenticate, token)
        scope["state"]["principal"] = principal
        scope["state"]["auth_checked"] = True
        if principal is not None and principal.key_id is not None and self.settings.usage.due(principal.key_id):
            key_id = principal.key_id
            try:
                await run_in_threadpool(self.store.write, lambda uow: keys.record_use(uow.conn, key_id))
            except SQLAlchemyError:
                log.warning("could not record a key's last use", exc_info=True, extra={"key": principal.name})
        return principal

    async def _idempotent(
        self, scope: Scope, receive: Receive, send: Send, principal: Principal, key: str, body: bytes
    ) -> None:
        who = f"key:{principal.key_id}"
        method, path = scope["method"], scope["path"]
        digest = idem.fingerprint(method, path, scope.get("query_string", b"").decode("latin-1"), body)
        now = utcnow()
        await self._sweep_now_and_then(now)
        claim = await run_in_threadpool(
            self.store.write, lambda uow: idem.claim(uow.conn, who, key, method, path, digest, now)
        )
        request_id = scope["state"]["request_id"]
        if claim.outcome == "mismatch":
            await _answer(
                send,
                422,
                "This Idempotency-Key was first used with a different request; use a new key for a new request.",
                [{"field": idem.HEADER, "reason": "reused with a different request"}],
                request_id=request_id,
            )
            return
        if claim.outcome == "in_progress":
            await _answer(
                send,
                409,
                "A request with this Idempotency-Key is still running; retry shortly for its response.",
                [{"field": idem.HEADER, "reason": "in progress"}],
                headers={"Retry-After": "1"},
                request_id=request_id,
                type_="/problems/idempotency-in-progress",
            )
            return
        if claim.outcome == "replay":
            status = claim.status or 200
            await _send(
                send,
                status,
                (claim.body or "").encode(),
                PROBLEM if status >= 400 else "application/json",
                {"Idempotent-Replayed": "true"},
            )
            return

        captured: dict[str, Any] = {"status": 500, "chunks": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
            elif message["type"] == "http.response.body":
                captured["chunks"].append(message.get("body", b""))
            await send(message)

        scope["state"]["idempotency"] = (who, key)  # routes.write records the answer with the change
        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await run_in_threadpool(self.store.write, lambda uow: idem.release(uow.conn, who, key))
            raise
        status = int(captured["status"])
        if not idem.is_final(status, scope.get("route") is not None):
            # Nothing ran to its end: a redirect (POST /x/ to /x), no such route, or our failure, which
            # rolled the use case back. The key is given back so that the retry runs and its answer is kept.
            await run_in_threadpool(self.store.write, lambda uow: idem.release(uow.conn, who, key))
            return
        text = b"".join(captured["chunks"]).decode("utf-8", "replace")
        await run_in_threadpool(self.store.write, lambda uow: idem.finish(uow.conn, who, key, status, text))

    async def _sweep_now_and_then(self, now: Any) -> None:
        tick = time.monotonic()
        if tick - self._last_sweep < SWEEP_EVERY_S:
            return
        self._last_sweep = tick
        try:
            await run_in_threadpool(self.store.write, lambda uow: idem.sweep(uow.conn, now))
        except SQLAlchemyError:
            log.warning("could not sweep expired idempotency keys", exc_info=True)


async def _read_body(receive: Receive, headers: Headers, limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _body_refusal(body: bytes, content_type: str | None) -> tuple[int, str, list[dict[str, Any]]] | None:
    if not body:
        return None
    if not content_type or not _is_json(content_type):
        return (
            415,
            f"Send the body as JSON with 'Content-Type: application/json', not {content_type or 'no content type'}.",
            [{"field": "Content-Type", "reason": "unsupported media type", "accepted": "application/json"}],
        )
    try:
        json.loads(body, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        return 400, f"The body is not valid JSON: {exc.msg} at {where}.", [{"field": "body", "reason": exc.msg}]
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return 400, f"The body is not valid JSON: {reason}.", [{"field": "body", "reason": reason}]
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send(send: Send, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _page(send: Send, status: int, title: str, detail: str) -> None:
    """A refusal outside the API, where people read answers in a browser: a bare HTML page."""
    body = f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{detail} Nothing was changed.</p>"
    await _send(send, status, body.encode(), "text/html; charset=utf-8")


async def _answer(
    send: Send | Callable[[Message], Awaitable[None]],
    status: int,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    *,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
    type_: str = "about:blank",
) -> None:
    body = problem_bytes(status, TITLES.get(status, "Error"), detail, errors, type_, request_id)
    await _send(send, status, body, PROBLEM, headers)
