"""Webhook signing (Standard Webhooks) and delivery over HTTP with the standard library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"
TIMEOUT_SECONDS = 10.0


def new_secret() -> str:
    """A subscription secret as Standard Webhooks writes it: "whsec_" + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), content, hashlib.sha256).digest()).decode()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver checks: one of the listed v1 signatures matches (timestamps are the caller's job)."""
    expected = sign(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body).split(",", 1)[1]
    return any(
        hmac.compare_digest(sig.split(",", 1)[1], expected)
        for sig in headers["webhook-signature"].split()
        if sig.startswith("v1,")
    )


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


def post(url: str, secret: str, msg_id: str, body: bytes, timeout: float = TIMEOUT_SECONDS) -> Attempt:
    """POST one signed delivery; any 2xx is success."""
    ts = int(time.time())
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "content-type": "application/json",
            "user-agent": "oms-webhooks/1",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, msg_id, ts, body),
        },
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            code = resp.status
            ms = int((time.monotonic() - started) * 1000)
            return Attempt(200 <= code < 300, code, None if 200 <= code < 300 else f"HTTP {code}", ms)
    except urllib.error.HTTPError as exc:
        return Attempt(False, exc.code, f"HTTP {exc.code}", int((time.monotonic() - started) * 1000))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Attempt(False, None, f"{type(exc).__name__}: {reason}"[:1000], int((time.monotonic() - started) * 1000))
