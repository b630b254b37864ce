"""Sign-in throttling, counted in the store so that every server process draws on one allowance.

Each attempt is counted before its password is checked, by one statement per key: an upsert that
counts the attempt only while the key is under its limit and returns nothing otherwise. Guesses sent
at the same moment therefore cannot all pass a check made before any of them was counted; a refused
attempt counts nothing and checks no password.

- Per user name: PER_USER attempts in a window of WINDOW_S; then that name waits until the window
  ends, even with the right password (a guesser never learns that a password was right).
- Per client address: PER_ADDRESS attempts in the window; then the address is paced, one attempt
  every ADDRESS_PACE_S, never locked: people behind one proxy share an address, and one of them
  guessing must slow down, not lock out, the others.

A sign-in that succeeds clears its user name's count and gives the address its attempt back. Keys
are SHA-256 digests (people sometimes type their password into the user-name field). A row whose
window has ended counts as no row; such rows are swept now and then.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from oms.store.db import Store
from oms.store.tables import sign_in_attempts as attempts_t
from oms.store.types import UTCDateTime

log = logging.getLogger("oms.web")
WINDOW_S = 15 * 60
PER_USER = 5  # attempts per user name in the window, then a wait until it ends
PER_ADDRESS = 20  # attempts per client address in the window, then one every ADDRESS_PACE_S
ADDRESS_PACE_S = 30
SWEEP_EVERY_S = 600.0


@dataclass(frozen=True)
class Wait:
    """A refused attempt: how long to wait, and whether the user name (else the address) is at its limit."""

    seconds: int
    user_name: bool


@dataclass(frozen=True)
class _Limit:
    attempts: int
    window: timedelta
    pace: timedelta | None  # None: refused until the window ends


class _Refused(Exception):
    def __init__(self, wait: Wait) -> None:
        self.wait = wait


def user_key(username: str) -> str:
    return hashlib.sha256(b"user\0" + username.casefold().encode("utf-8", "surrogatepass")).hexdigest()


def address_key(address: str) -> str:
    return hashlib.sha256(b"address\0" + address.encode("utf-8", "surrogatepass")).hexdigest()


def _upsert(conn: Connection) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(attempts_t)


def count_attempt(conn: Connection, key: str, limit: _Limit, now: datetime) -> bool:
    """Count one attempt for `key` if the key may make one now (True); else count nothing (False).

    One statement: the row is created, or updated under its row lock only when the key's window has
    ended, it is under its limit, or (paced keys) its last attempt is at least a pace ago.
    """
    t = attempts_t
    at = literal(now, UTCDateTime())
    ended = t.c.window_started_at <= now - limit.window
    allowed = or_(ended, t.c.attempts < limit.attempts)
    if limit.pace is not None:
        allowed = or_(allowed, t.c.last_attempt_at <= now - limit.pace)
    stmt = (
        _upsert(conn)
        .values(key=key, window_started_at=now, attempts=1, last_attempt_at=now)
        .on_conflict_do_update(
            index_elements=[t.c.key],
            set_={
                "attempts": case((ended, 1), else_=t.c.attempts + 1),
                "window_started_at": case((ended, at), else_=t.c.window_started_at),
                "last_attempt_at": at,
            },
            where=allowed,
        )
        .returning(t.c.key)
    )
    return conn.execute(stmt).first() is not None


def _wait(conn: Connection, key: str, limit: _Limit, now: datetime) -> int:
    row = conn.execute(select(attempts_t).where(attempts_t.c.key == key)).one()
    until: datetime = row.window_started_at + limit.window
    if limit.pace is not None:
        until = min(until, row.last_attempt_at + limit.pace)
    return max(1, math.ceil((until - now).total_seconds()))


def forget_attempts(conn: Connection, username: str, address: str) -> None:
    """After a right password: the user name starts afresh and the address gets its attempt back."""
    conn.execute(delete(attempts_t).where(attempts_t.c.key == user_key(username)))
    conn.execute(
        update(attempts_t)
        .where(attempts_t.c.key == address_key(address), attempts_t.c.attempts > 0)
        .values(attempts=attempts_t.c.attempts - 1)
    )


class SignInThrottle:
    """The limits and the clock; `admit` before checking a password, `forget_attempts` after a right one."""

    def __init__(
        self,
        store: Store,
        per_user: int = PER_USER,
        per_address: int = PER_ADDRESS,
        window_s: float = WINDOW_S,
        address_pace_s: float = ADDRESS_PACE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        window = timedelta(seconds=window_s)
        self.user = _Limit(per_user, window, None)
        self.address = _Limit(per_address, window, timedelta(seconds=address_pace_s))
        self.clock = clock
        self._last_sweep = -math.inf

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def admit(self, username: str, address: str) -> Wait | None:
        """Count this attempt: None when its password may be checked now, else the wait (nothing counted)."""
        now = self.now()

        def count(conn: Connection) -> None:
            for key, limit, is_user in (
                (user_key(username), self.user, True),
                (address_key(address), self.address, False),
            ):
                if not count_attempt(conn, key, limit, now):
                    raise _Refused(Wait(_wait(conn, key, limit, now), is_user))  # rolls back the other count

        try:
            self.store.write(lambda uow: count(uow.conn))
        except _Refused as refused:
            return refused.wait
        self._sweep_now_and_then(now)
        return None

    def _sweep_now_and_then(self, now: datetime) -> None:
        tick = time.monotonic()
        if tick - self._last_sweep < SWEEP_EVERY_S:
            return
        self._last_sweep = tick
        ended = delete(attempts_t).where(attempts_t.c.window_started_at <= now - self.user.window)
        try:
            self.store.write(lambda uow: uow.conn.execute(ended))
        except SQLAlchemyError:
            log.warning("could not sweep ended sign-in windows", exc_info=True)
