"""API keys: made once, shown once, stored as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import Connection, insert, select, update

from oms.domain.access import Principal, Role
from oms.domain.errors import Invalid, NotFound
from oms.store.tables import api_keys

from .common import utcnow


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(conn: Connection, role: Role, name: str, channel: str | None = None) -> str:
    """Make a key and return it; only its digest is kept."""
    if role is Role.CHANNEL and not channel:
        raise Invalid("A channel key needs --channel.", [{"field": "channel", "reason": "required for role channel"}])
    token = "oms_" + secrets.token_urlsafe(32)
    conn.execute(
        insert(api_keys).values(
            name=name,
            role=role.value,
            channel=channel if role is Role.CHANNEL else None,
            prefix=token[:12],
            key_hash=_digest(token),
            created_at=utcnow(),
        )
    )
    return token


def authenticate(conn: Connection, token: str) -> Principal | None:
    row = conn.execute(
        select(api_keys).where(api_keys.c.key_hash == _digest(token), api_keys.c.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    return Principal(row.name, Role(row.role), row.channel)


def touch(conn: Connection, token: str) -> None:
    conn.execute(update(api_keys).where(api_keys.c.key_hash == _digest(token)).values(last_used_at=utcnow()))


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
