"""People who sign in to the dashboard: accounts and password checks (argon2)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, insert, select, update

from oms.domain.access import Principal, Role
from oms.domain.errors import Conflict, Invalid
from oms.store.reads import utcnow
from oms.store.tables import users, web_sessions

_hasher = PasswordHasher()
# Verified against when the user is unknown, so a wrong name costs what a wrong password costs.
_DUMMY_HASH = _hasher.hash("not a password anyone has")
DASHBOARD_ROLES = (Role.ADMIN, Role.OPS, Role.PURCHASING)
MIN_PASSWORD = 8
SESSION_TTL = timedelta(hours=12)  # a session ends this long after sign-in, whatever happens meanwhile


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: Role

    @property
    def principal(self) -> Principal:
        """A dashboard user acts with the same rights as an API key of the same role."""
        return Principal(self.username, self.role)


def _user(row: Any) -> User:
    return User(row.id, row.username, Role(row.role))


def _password_problems(password: str) -> list[dict[str, Any]]:
    if len(password) < MIN_PASSWORD:
        return [{"field": "password", "reason": f"at least {MIN_PASSWORD} characters"}]
    return []


def create_user(conn: Connection, username: str, role: Role, password: str) -> User:
    """Add a person; channel roles are for integrations and have no dashboard."""
    problems: list[dict[str, Any]] = []
    if not username.strip() or len(username) > 64:
        problems.append({"field": "username", "reason": "1 to 64 characters"})
    if role not in DASHBOARD_ROLES:
        problems.append(
            {"field": "role", "value": str(role), "reason": "dashboard roles are " + ", ".join(DASHBOARD_ROLES)}
        )
    problems += _password_problems(password)
    if problems:
        raise Invalid("The user cannot be created: " + "; ".join(p["reason"] for p in problems) + ".", problems)
    if conn.execute(select(users.c.id).where(users.c.username == username)).first():
        raise Conflict(
            f"User '{username}' already exists.", [{"field": "username", "value": username, "reason": "taken"}]
        )
    new_id = conn.execute(
        insert(users)
        .returning(users.c.id)
        .values(username=username, role=role.value, password_hash=_hasher.hash(password), created_at=utcnow())
    ).scalar_one()
    return User(new_id, username, role)


def user_exists(conn: Connection, username: str) -> bool:
    return conn.execute(select(users.c.id).where(users.c.username == username)).first() is not None


def list_users(conn: Connection) -> list[dict[str, Any]]:
    return [
        {"id": r.id, "username": r.username, "role": r.role, "created_at": r.created_at, "disabled_at": r.disabled_at}
        for r in conn.execute(select(users).order_by(users.c.id))
    ]


def disable_user(conn: Connection, username: str) -> bool:
    """Refuse further sign-ins and end every session of the user at once."""
    done = conn.execute(
        update(users)
        .where(users.c.username == username, users.c.disabled_at.is_(None))
        .values(disabled_at=utcnow())
        .returning(users.c.id)
    ).first()
    return _ended_sessions(conn, done)


def set_password(conn: Connection, username: str, password: str) -> bool:
    """Give the user a new password and end every session of the user (False: no such user)."""
    problems = _password_problems(password)
    if problems:
        raise Invalid(f"The password is too short: {problems[0]['reason']}.", problems)
    done = conn.execute(
        update(users)
        .where(users.c.username == username)
        .values(password_hash=_hasher.hash(password))
        .returning(users.c.id)
    ).first()
    return _ended_sessions(conn, done)


def authenticate(conn: Connection, username: str, password: str) -> User | None:
    """The enabled user with this name and password, or None."""
    row = conn.execute(select(users).where(users.c.username == username)).first()
    try:
        _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled_at is not None or Role(row.role) not in DASHBOARD_ROLES:
        return None
    return _user(row)


# ---- sessions: the cookie carries a random token, the store its digest -------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(conn: Connection, user_id: int, now: datetime) -> str:
    """A new session for the user; returns the token for the cookie. Sweeps sessions that ended."""
    conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
    token = secrets.token_urlsafe(32)
    conn.execute(
        insert(web_sessions).values(
            token_hash=_digest(token), user_id=user_id, created_at=now, expires_at=now + SESSION_TTL
        )
    )
    return token


def session_user(conn: Connection, token: str, now: datetime) -> User | None:
    """The enabled user whose unexpired session this token names, or None (a read: works on a replica)."""
    row = conn.execute(
        select(users)
        .join(web_sessions, web_sessions.c.user_id == users.c.id)
        .where(web_sessions.c.token_hash == _digest(token), web_sessions.c.expires_at > now)
        .where(users.c.disabled_at.is_(None))
    ).first()
    if row is None or Role(row.role) not in DASHBOARD_ROLES:
        return None
    return _user(row)


def end_session(conn: Connection, token: str) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == _digest(token)))


def end_sessions(conn: Connection, user_id: int) -> None:
    """End every session of the user, on every device."""
    conn.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id))


def _ended_sessions(conn: Connection, changed: Any) -> bool:
    """End every session of the user a change found (False: it found none)."""
    if changed is None:
        return False
    end_sessions(conn, changed.id)
    return True
