"""API keys: made once, shown once, stored as a SHA-256 digest; looked up through a per-process cache."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, insert, select, update

from oms.domain import bounds
from oms.domain.access import Principal, Role
from oms.domain.errors import Invalid, NotFound
from oms.store.db import Store
from oms.store.tables import api_keys
from oms.store.uow import bump_version, read_version, utcnow

# A revoked key is refused by every process within this many seconds (the cache's longest trust).
MAX_STALENESS_S = 0.5


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(conn: Connection, role: Role, name: str, channel: str | None = None, *, replace: bool = False) -> str:
    """Make a key and return it; only its digest is kept. `replace`: revoke the active keys of that
    name in the same transaction (`make run` makes its admin key this way, so keys do not pile up).

    Only channel keys are scoped to a channel: they need one, and every other role is refused one
    (a key of another role reads and changes every channel's orders, so a channel given for it would
    be a scope the key does not have).
    """
    if role is Role.CHANNEL and not channel:
        raise Invalid("A channel key needs --channel.", [{"field": "channel", "reason": "required for role channel"}])
    if role is not Role.CHANNEL and channel is not None:
        raise Invalid(
            f"Only channel keys are scoped to a channel; a {role.value} key acts for every channel. "
            f"Leave out --channel, or make a key with --role channel --channel {channel}.",
            [{"field": "channel", "value": channel, "reason": f"not accepted for role {role.value}"}],
        )
    problem = bounds.code_problem(channel) if channel is not None else None
    if problem is not None:
        raise Invalid(
            f"'{channel}' is not a channel as orders name them: it {problem}.",
            [{"field": "channel", "value": channel, "reason": problem, "pattern": bounds.CODE_PATTERN}],
        )
    if replace:
        conn.execute(
            update(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None)).values(revoked_at=utcnow())
        )
    token = "oms_" + secrets.token_urlsafe(32)
    conn.execute(
        insert(api_keys).values(
            name=name,
            role=role.value,
            channel=channel,
            prefix=token[:12],
            key_hash=_digest(token),
            created_at=utcnow(),
        )
    )
    bump_version(conn)
    return token


def authenticate(conn: Connection, token: str) -> Principal | None:
    row = conn.execute(
        select(api_keys).where(api_keys.c.key_hash == _digest(token), api_keys.c.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    return Principal(row.name, Role(row.role), row.channel, row.id)


def touch(conn: Connection, token: str) -> None:
    conn.execute(update(api_keys).where(api_keys.c.key_hash == _digest(token)).values(last_used_at=utcnow()))


def record_use(conn: Connection, key_id: int) -> None:
    """Stamp a key's last-used time."""
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=utcnow()))


class UsageClock:
    """Tells when a key's last-used time is due for a write: at most once per interval per process.

    A busy key would otherwise turn every read into a write on its api_keys row.
    """

    def __init__(self, interval_s: float = 60.0) -> None:
        self.interval_s = interval_s
        self._last: dict[int, float] = {}
        self._lock = threading.Lock()

    def due(self, key_id: int, now: float | None = None) -> bool:
        at = time.monotonic() if now is None else now
        with self._lock:
            last = self._last.get(key_id)
            if last is not None and at - last < self.interval_s:
                return False
            if len(self._last) > 100_000:  # bounded memory with many short-lived keys
                self._last.clear()
            self._last[key_id] = at
            return True


def list_keys(conn: Connection) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "name": r.name,
            "role": r.role,
            "channel": r.channel,
            "prefix": r.prefix,
            "created_at": r.created_at,
            "last_used_at": r.last_used_at,
            "revoked_at": r.revoked_at,
        }
        for r in conn.execute(select(api_keys).order_by(api_keys.c.id))
    ]


def revoke_key(conn: Connection, key_id: int) -> None:
    done = conn.execute(
        update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    if done.rowcount == 0:
        raise NotFound(f"No active key with id {key_id}.")
    bump_version(conn)  # every process drops its cached keys at once


class KeyCache:
    """The principals of keys seen by this process, trusted while the settings version holds.

    Authentication costs no transaction of its own: a known key is answered from memory, and the
    version (bumped by every key created or revoked) is read at most every MAX_STALENESS_S seconds,
    so a revoked key is refused everywhere within that time. Unknown tokens are always looked up
    (and never cached: a caller guessing keys must not fill this process's memory).
    """

    def __init__(
        self,
        store: Store,
        max_staleness_s: float = MAX_STALENESS_S,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.max_staleness_s = max_staleness_s
        self.max_keys = max_keys
        self.clock = clock
        self._known: dict[str, Principal] = {}
        self._version: int | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def fresh(self, token: str) -> Principal | None:
        """The principal from memory when it can be trusted without a database read, else None."""
        with self._lock:
            if self.clock() - self._checked > self.max_staleness_s:
                return None
            return self._known.get(_digest(token))

    def authenticate(self, token: str) -> Principal | None:
        """The key's principal (None: unknown or revoked); reads the store only when it must."""
        found = self.fresh(token)
        if found is not None:
            return found
        if self.clock() - self._checked > self.max_staleness_s:
            version = self.store.read(read_version)
            with self._lock:
                if version != self._version:
                    self._known.clear()
                    self._version = version
                self._checked = self.clock()
            found = self.fresh(token)
            if found is not None:
                return found
        principal = self.store.read(lambda conn: authenticate(conn, token))
        if principal is not None:
            with self._lock:
                if len(self._known) >= self.max_keys:
                    self._known.clear()
                self._known[_digest(token)] = principal
        return principal
