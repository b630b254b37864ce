"""Idempotency-Key on POSTs (IETF draft "The Idempotency-Key HTTP Header Field", Stripe's model).

The first response to a POST sent with a key is kept per (caller, key) for 24 hours and replayed
for retries with `Idempotent-Replayed: true`. A key is claimed by an INSERT in its own short
transaction before the use case runs, so of concurrent twins exactly one runs; the others see the
claim and answer 409 while it runs, or the stored response once it is done.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from oms.settings import settings
from oms.store.tables import idempotency_keys

HEADER = "Idempotency-Key"
# Printable ASCII without spaces: UUIDs, ULIDs and the like.
KEY_PATTERN = r"^[!-~]{1,255}$"
TTL = timedelta(hours=24)


# A claim left in progress this long belongs to a request that died with its process; it may be taken over.
def lease() -> timedelta:
    return timedelta(seconds=settings().idempotency_lease_seconds)


Outcome = Literal["claimed", "replay", "in_progress", "mismatch"]


@dataclass(frozen=True)
class Claim:
    """What a POST with a key should do: run (claimed), replay a stored response, or be refused."""

    outcome: Outcome
    status: int | None = None
    body: str | None = None


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """A digest of what was asked: the same JSON with other spacing or key order is the same request,
    and so is the same path with a trailing slash (the API redirects it to the path without)."""
    path = path.rstrip("/") or "/"
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")) if body else ""
    except ValueError:
        canonical = body.decode("latin-1")
    return hashlib.sha256(f"{method} {path}?{query}\n{canonical}".encode()).hexdigest()


def _insert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(idempotency_keys)
    return sqlite.insert(idempotency_keys)


def claim(
    conn: Connection, principal: str, key: str, method: str, path: str, request_hash: str, now: datetime
) -> Claim:
    """Claim (principal, key) for this request, or say what the earlier request with that key left."""
    fresh = {
        "method": method,
        "path": path.replace("\x00", "\\x00")[:500],  # PostgreSQL text refuses NUL
        "request_hash": request_hash,
        "state": "in_progress",
        "response_status": None,
        "response_body": None,
        "created_at": now,
        "expires_at": now + TTL,
    }
    # ON CONFLICT DO NOTHING: a concurrent twin's uncommitted claim makes this wait for it, then yield.
    inserted = conn.execute(
        _insert(conn)
        .values(principal=principal, key=key, **fresh)
        .on_conflict_do_nothing(index_elements=["principal", "key"])
        .returning(idempotency_keys.c.id)
    ).first()
    if inserted is not None:
        return Claim("claimed")
    q = select(idempotency_keys).where(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    if row is None:  # released by a failed twin between our insert and select: it is ours to retry
        return Claim("in_progress")
    abandoned = row.state == "in_progress" and row.created_at <= now - lease()
    if row.expires_at <= now or abandoned:
        conn.execute(update(idempotency_keys).where(idempotency_keys.c.id == row.id).values(**fresh))
        return Claim("claimed")
    if row.request_hash != request_hash:
        return Claim("mismatch")
    if row.state == "in_progress":
        return Claim("in_progress")
    # "done", or "applied": the use case committed but its process died before the response was kept
    return Claim("replay", row.response_status, row.response_body)


def is_final(status: int, route_matched: bool) -> bool:
    """Whether an answer is the request's own, to keep and replay: it reached a route and was neither
    a redirect nor a failure on our side (after which a retry should run again)."""
    return route_matched and not 300 <= status < 400 and status < 500


def applied(conn: Connection, principal: str, key: str, status: int, body: str) -> None:
    """Inside the use case's own transaction: it took effect, and this is its answer.

    A process killed between the use case's commit and `finish` leaves the key "applied", never
    "in_progress", so a retry replays this answer instead of running the use case a second time.
    """
    conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
        .values(state="applied", response_status=status, response_body=body)
    )


def finish(conn: Connection, principal: str, key: str, status: int, body: str) -> None:
    """Keep the response to replay it."""
    conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
        .values(state="done", response_status=status, response_body=body)
    )


def release(conn: Connection, principal: str, key: str) -> None:
    """Give the key back (the request failed on our side, so a retry should run again)."""
    conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.principal == principal,
            idempotency_keys.c.key == key,
            idempotency_keys.c.state == "in_progress",
        )
    )


def sweep(conn: Connection, now: datetime) -> int:
    """Forget expired keys."""
    done = conn.execute(delete(idempotency_keys).where(idempotency_keys.c.expires_at < now))
    return int(done.rowcount or 0)
