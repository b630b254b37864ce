"""People who sign in to the dashboard: accounts and password checks (argon2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update

from oms.domain.access import Principal, Role
from oms.domain.errors import Conflict, Invalid
from oms.services.common import utcnow
from oms.store.tables import users

_hasher = PasswordHasher()
# Verified against when the user is unknown, so a wrong name costs what a wrong password costs.
_DUMMY_HASH = _hasher.hash("not a password anyone has")
DASHBOARD_ROLES = (Role.ADMIN, Role.OPS, Role.PURCHASING)
MIN_PASSWORD = 8


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


def create_user(conn: Connection, username: str, role: Role, password: str) -> User:
    """Add a person; channel roles are for integrations and have no dashboard."""
    problems: list[dict[str, Any]] = []
    if not username.strip() or len(username) > 64:
        problems.append({"field": "username", "reason": "1 to 64 characters"})
    if role not in DASHBOARD_ROLES:
        problems.append(
            {"field": "role", "value": str(role), "reason": "dashboard roles are " + ", ".join(DASHBOARD_ROLES)}
        )
    if len(password) < MIN_PASSWORD:
        problems.append({"field": "password", "reason": f"at least {MIN_PASSWORD} characters"})
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
    """Refuse further sign-ins and end the user's sessions (they are checked on every request)."""
    done = conn.execute(
        update(users).where(users.c.username == username, users.c.disabled_at.is_(None)).values(disabled_at=utcnow())
    )
    return bool(done.rowcount)


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


def active_user(conn: Connection, user_id: int) -> User | None:
    row = conn.execute(select(users).where(users.c.id == user_id, users.c.disabled_at.is_(None))).first()
    if row is None or Role(row.role) not in DASHBOARD_ROLES:
        return None
    return _user(row)
