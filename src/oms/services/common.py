"""What every use case shares: the clock and actor, row locks, settings and events."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from oms.domain.allocation import DEFAULT_RULE, RuleKey, parse_rule
from oms.domain.errors import Invalid
from oms.domain.policy import DEFAULT_POLICY, BackorderMode, BackorderPolicy, SkuStock
from oms.store.db import Store, insert_rows
from oms.store.tables import events, po_lines, products, purchase_orders, settings


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Ctx:
    """One use case's transaction, clock and actor."""

    conn: Connection
    actor: str = "system"
    now: datetime = field(default_factory=utcnow)
    pending_events: list[dict[str, Any]] = field(default_factory=list)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def rule(self) -> tuple[RuleKey, ...]:
        """The allocation rule, read once per use case (the engine's steps each need it)."""
        if "rule" not in self._memo:
            self._memo["rule"] = allocation_rule(self.conn)
        found: tuple[RuleKey, ...] = self._memo["rule"]
        return found

    def fallback_policy(self) -> BackorderPolicy:
        """The default back-order policy, read once per use case."""
        if "policy" not in self._memo:
            self._memo["policy"] = default_policy(self.conn)
        found: BackorderPolicy = self._memo["policy"]
        return found

    def put_setting(self, key: str, value: Any) -> int:
        """Change a setting and forget what this use case had read of the settings."""
        self._memo.clear()
        return put_setting(self.conn, key, value)

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    def event(
        self,
        type_: str,
        data: Mapping[str, Any],
        *,
        order_number: str | None = None,
        sku: str | None = None,
        po_number: str | None = None,
    ) -> None:
        """Queue an append-only event; flushed in one statement before commit."""
        self.pending_events.append(
            {
                "at": self.now,
                "type": type_,
                "actor": self.actor,
                "order_number": order_number,
                "sku": sku,
                "po_number": po_number,
                "data": dict(data),
            }
        )

    def flush_events(self) -> None:
        if self.pending_events:
            from . import outbox  # the notifications these events cause, in the same transaction

            outbox.notify(self, self.pending_events)
            insert_rows(self.conn, events, self.pending_events)
            self.pending_events = []


def request_hash(body: Mapping[str, Any]) -> str:
    """A stable digest of a request body, to tell a retry from a different request."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


# ---- policies -----------------------------------------------------------------------------------


def policy_from_json(data: Mapping[str, Any] | None) -> BackorderPolicy | None:
    if data is None:
        return None
    ends = data.get("preorder_ends_at")
    release = data.get("release_date")
    return BackorderPolicy(
        mode=BackorderMode(data.get("mode", "always")),
        max_backorder_qty=data.get("max_backorder_qty"),
        max_qty_per_line=data.get("max_qty_per_line"),
        channels=tuple(data.get("channels") or ()),
        preorder_ends_at=datetime.fromisoformat(ends) if ends else None,
        release_date=date.fromisoformat(release) if release else None,
        auto_cancel_after_days=data.get("auto_cancel_after_days"),
    )


def policy_to_json(p: BackorderPolicy) -> dict[str, Any]:
    return {
        "mode": p.mode.value,
        "max_backorder_qty": p.max_backorder_qty,
        "max_qty_per_line": p.max_qty_per_line,
        "channels": list(p.channels),
        "preorder_ends_at": p.preorder_ends_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if p.preorder_ends_at
        else None,
        "release_date": p.release_date.isoformat() if p.release_date else None,
        "auto_cancel_after_days": p.auto_cancel_after_days,
    }


# ---- settings -----------------------------------------------------------------------------------

DEFAULT_POLICY_KEY = "default_backorder_policy"
RULE_KEY = "allocation_rule"


def get_setting(conn: Connection, key: str) -> tuple[Any, int] | None:
    row = conn.execute(select(settings.c.value, settings.c.version).where(settings.c.key == key)).first()
    return (row.value, row.version) if row else None


def put_setting(conn: Connection, key: str, value: Any) -> int:
    current = get_setting(conn, key)
    if current is None:
        conn.execute(insert(settings).values(key=key, value=value, version=1))
        return 1
    conn.execute(update(settings).where(settings.c.key == key).values(value=value, version=current[1] + 1))
    return current[1] + 1


def stored_secret(store: Store, name: str) -> str:
    """OMS_SECRET_KEY, else a random key made once under `name` in the settings table, so every
    process signs alike. Read in a read transaction; written (once) only when missing."""
    env = os.environ.get("OMS_SECRET_KEY")
    if env:
        return env
    found = store.read(lambda conn: get_setting(conn, name))
    if found is not None:
        return str(found[0]["key"])

    def make(conn: Connection) -> str:
        # Two processes racing: the loser's insert fails on the primary key and Store.write retries it
        # (PostgreSQL), or it waits for the winner's write lock (SQLite); the retry reads the winner's key.
        again = get_setting(conn, name)
        if again is not None:
            return str(again[0]["key"])
        key = secrets.token_urlsafe(48)
        conn.execute(insert(settings).values(key=name, value={"key": key}, version=1))
        return key

    return store.write(make)


def default_policy(conn: Connection) -> BackorderPolicy:
    found = get_setting(conn, DEFAULT_POLICY_KEY)
    return policy_from_json(found[0]) or DEFAULT_POLICY if found else DEFAULT_POLICY


def allocation_rule(conn: Connection) -> tuple[RuleKey, ...]:
    found = get_setting(conn, RULE_KEY)
    return parse_rule(found[0]["keys"]) if found else DEFAULT_RULE


# ---- stock --------------------------------------------------------------------------------------


def lock_products(ctx: Ctx, skus: Iterable[str]) -> dict[str, Any]:
    """Lock the SKUs' rows in sorted order (so two use cases never wait on each other in a cycle).

    On SQLite the transaction already holds the database's write lock (BEGIN IMMEDIATE).
    """
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    q = select(products).where(products.c.sku.in_(wanted)).order_by(products.c.sku)
    if ctx.dialect == "postgresql":
        q = q.with_for_update()
    rows = {row.sku: row for row in ctx.conn.execute(q)}
    # Policies do not change while the row is locked: the engine's steps read them from here.
    ctx._memo.setdefault("policies", {}).update((sku, row.backorder_policy) for sku, row in rows.items())
    return rows


def require_products(ctx: Ctx, skus: Sequence[str], field_name: str = "lines") -> dict[str, Any]:
    """Lock the SKUs, refusing the request with every unknown SKU named."""
    rows = lock_products(ctx, skus)
    unknown = sorted(set(skus) - set(rows))
    if unknown:
        raise Invalid(
            f"Unknown SKU(s): {', '.join(unknown)}. Create the product with PUT /products/{{sku}} first.",
            [{"field": f"{field_name}[].sku", "sku": s, "reason": "unknown sku"} for s in unknown],
        )
    return rows


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


def sku_stock(
    conn: Connection, rows: Mapping[str, Any], fallback: BackorderPolicy | None = None
) -> dict[str, SkuStock]:
    """Placement's view of the locked SKUs (`fallback`: the default policy, when the caller has read it)."""
    incoming = incoming_by_sku(conn, rows)
    fallback = fallback or default_policy(conn)
    return {
        sku: SkuStock(
            sku=sku,
            on_hand=row.on_hand,
            allocated=row.allocated,
            backordered=row.backordered,
            incoming=incoming.get(sku, 0),
            policy=policy_from_json(row.backorder_policy) or fallback,
        )
        for sku, row in rows.items()
    }
