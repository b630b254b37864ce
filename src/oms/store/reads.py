"""Reads several areas share: settings as stored, a SKU's stock and incoming supply, the signing secret."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, insert, select

from oms.domain.allocation import DEFAULT_RULE, RuleKey, parse_rule
from oms.domain.policy import DEFAULT_POLICY, BackorderPolicy, policy_from_json, policy_to_json
from oms.settings import settings as environment
from oms.store.db import Store
from oms.store.tables import po_lines, products, purchase_orders, settings
from oms.store.uow import DEFAULT_POLICY_KEY, LATE_PO_GRACE_KEY, RULE_KEY, UnitOfWork, utcnow

__all__ = [
    "DEFAULT_POLICY_KEY",
    "LATE_PO_GRACE_KEY",
    "RULE_KEY",
    "allocation_rule",
    "default_policy",
    "get_setting",
    "incoming_by_sku",
    "policy_from_json",
    "policy_to_json",
    "put_setting",
    "stock_by_sku",
    "stock_json",
    "stored_secret",
    "utcnow",
]


def get_setting(conn: Connection, key: str) -> tuple[Any, int] | None:
    row = conn.execute(select(settings.c.value, settings.c.version).where(settings.c.key == key)).first()
    return (row.value, row.version) if row else None


def put_setting(uow: UnitOfWork, key: str, value: Any) -> int:
    """Change a setting (every process sees it at its next transaction); returns its new version."""
    return uow.put_setting(key, value)


def default_policy(conn: Connection) -> BackorderPolicy:
    found = get_setting(conn, DEFAULT_POLICY_KEY)
    return policy_from_json(found[0]) or DEFAULT_POLICY if found else DEFAULT_POLICY


def allocation_rule(conn: Connection) -> tuple[RuleKey, ...]:
    found = get_setting(conn, RULE_KEY)
    return parse_rule(found[0]["keys"]) if found else DEFAULT_RULE


def stored_secret(store: Store, name: str) -> str:
    """OMS_SECRET_KEY, else a random key made once under `name` in the settings table, so every
    process signs alike. Read in a read transaction; written (once) only when missing."""
    env = environment().secret_key
    if env:
        return env
    found = store.read(lambda conn: get_setting(conn, name))
    if found is not None:
        return str(found[0]["key"])

    def make(uow: UnitOfWork) -> str:
        # Two processes racing: the loser's insert fails on the primary key and Store.write retries it
        # (PostgreSQL), or it waits for the winner's write lock (SQLite); the retry reads the winner's key.
        again = get_setting(uow.conn, name)
        if again is not None:
            return str(again[0]["key"])
        key = secrets.token_urlsafe(48)
        uow.conn.execute(insert(settings).values(key=name, value={"key": key}, version=1))
        return key

    return store.write(make)


def incoming_by_sku(conn: Connection, skus: Iterable[str]) -> dict[str, int]:
    """Units on open purchase-order lines not yet received."""
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    q = (
        select(po_lines.c.sku, func.sum(po_lines.c.qty - po_lines.c.received_qty))
        .join(purchase_orders, purchase_orders.c.id == po_lines.c.po_id)
        .where(po_lines.c.sku.in_(wanted), po_lines.c.open == 1, purchase_orders.c.status == "open")
        .group_by(po_lines.c.sku)
    )
    return {sku: int(n or 0) for sku, n in conn.execute(q)}


def stock_json(row: Any, incoming: int) -> dict[str, int]:
    """A SKU's stock as every answer and page shows it, from a products row (or a use case's copy)."""
    return {
        "on_hand": row.on_hand,
        "allocated": row.allocated,
        "available": max(0, row.on_hand - row.allocated),
        "backordered": row.backordered,
        "incoming": incoming,
    }


def stock_by_sku(conn: Connection, skus: Iterable[str]) -> dict[str, dict[str, int]]:
    """The stock of each SKU named, in two statements whatever their number."""
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    incoming = incoming_by_sku(conn, wanted)
    rows = conn.execute(
        select(products.c.sku, products.c.on_hand, products.c.allocated, products.c.backordered).where(
            products.c.sku.in_(wanted)
        )
    )
    return {r.sku: stock_json(r, incoming.get(r.sku, 0)) for r in rows}
