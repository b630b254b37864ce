"""Optimistic concurrency: `ETag` on reads, `If-Match` on updates, 412 when the version moved on.

An ETag is the version of the resource's editable part (a product's catalogue data, a setting, a
purchase order), quoted: `"3"`. Stock figures change without it: they are not the caller's to set.
The check runs inside the update's transaction, on the row the update locks, so two writers with
the same ETag cannot both pass. No If-Match means an unconditional update.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header
from sqlalchemy import Connection, select

from oms.domain.errors import DomainError
from oms.http import READINGS, Reading
from oms.store.tables import products, purchase_orders, settings

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=1000,
        description='The ETag from a GET (e.g. `"3"`): the update applies only if the resource is still at '
        "that version, else 412. `*` asks only that it exists. Absent: the update is unconditional.",
    ),
]


class PreconditionFailed(DomainError):
    """The If-Match header names a version the resource is no longer at (412)."""


READINGS.insert(0, (PreconditionFailed, Reading(412, "Precondition failed", "/problems/precondition-failed")))


def etag(version: int) -> str:
    return f'"{version}"'


def _tags(if_match: str) -> list[str]:
    return [t.strip() for t in if_match.split(",") if t.strip()]


def check(if_match: str | None, current: int | None, what: str) -> None:
    """Refuse with 412 unless If-Match names the current version (or is absent)."""
    if if_match is None:
        return
    tags = _tags(if_match)
    if "*" in tags and current is not None:
        return
    if current is not None and etag(current) in tags:
        return
    now = etag(current) if current is not None else None
    raise PreconditionFailed(
        f"{what} is at version {now or '(none: it does not exist)'}, not {if_match}. "
        "GET it again, re-apply your change and send the new ETag in If-Match.",
        [{"field": "If-Match", "reason": "stale version", "sent": if_match, "current_etag": now}],
    )


def _locked(conn: Connection, q: Any) -> Any:
    return q.with_for_update() if conn.dialect.name == "postgresql" else q


def product_version(conn: Connection, sku: str) -> int | None:
    """The product's version, its row locked for the update that follows."""
    found = conn.scalar(_locked(conn, select(products.c.version).where(products.c.sku == sku)))
    return None if found is None else int(found)


def setting_version(conn: Connection, key: str, lock: bool = False) -> int:
    """A setting's version; 0 while it was never set (the built-in default applies)."""
    q = select(settings.c.version).where(settings.c.key == key)
    found = conn.scalar(_locked(conn, q) if lock else q)
    return int(found or 0)


def po_version(conn: Connection, po_number: str) -> int | None:
    q = select(purchase_orders.c.version).where(purchase_orders.c.po_number == po_number)
    found = conn.scalar(_locked(conn, q))
    return None if found is None else int(found)
