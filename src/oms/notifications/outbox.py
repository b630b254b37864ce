"""Webhook subscriptions and the outbox as the API shows them (the worker builds and delivers it: oms.worker)."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, insert, select, update

from oms.domain.allocation import SortField
from oms.domain.errors import Conflict, Invalid, NotFound
from oms.formats import rfc3339
from oms.notifications import targets
from oms.notifications.builder import WEBHOOK_EVENT_TYPES
from oms.store.paging import page
from oms.store.tables import outbox, webhook_deliveries, webhook_subscriptions
from oms.store.uow import UnitOfWork

# ---- subscriptions and the outbox, as the API shows them -----------------------------------------


def _subscription_dict(r: Any, secret: bool = False) -> dict[str, Any]:
    out = {
        "id": r.id,
        "url": r.url,
        "event_types": list(r.event_types),
        "description": r.description,
        "active": bool(r.active),
        "created_at": rfc3339(r.created_at),
    }
    if secret:
        out["secret"] = r.secret
    return out


def create_subscription(
    uow: UnitOfWork, url: str, event_types: Sequence[str], secret: str, description: str | None = None
) -> dict[str, Any]:
    """Subscribe a URL to event types; the answer carries the signing secret (shown only here).

    The URL must name a public address: loopback, private, link-local, metadata and other inner
    addresses are refused here as far as the URL shows them, and by the worker after DNS."""
    try:
        targets.check_url(url)
    except targets.TargetRefused as exc:
        raise Invalid(
            f"The webhook URL is refused: {exc}.",
            [{"field": "url", "value": url, "reason": str(exc)}],
        ) from None
    unknown = sorted(set(event_types) - set(WEBHOOK_EVENT_TYPES) - {"*"})
    if unknown:
        raise Invalid(
            f"Unknown event type(s): {', '.join(unknown)}. Accepted: '*' or any of {', '.join(WEBHOOK_EVENT_TYPES)}.",
            [{"field": "event_types", "value": t, "reason": "unknown event type"} for t in unknown],
        )
    sub_id = uow.conn.execute(
        insert(webhook_subscriptions)
        .returning(webhook_subscriptions.c.id)
        .values(
            url=url,
            event_types=sorted(set(event_types)),
            secret=secret,
            description=description,
            active=1,
            created_at=uow.now,
        )
    ).scalar_one()
    return get_subscription(uow.conn, sub_id, secret=True)


def get_subscription(conn: Connection, sub_id: int, secret: bool = False) -> dict[str, Any]:
    row = conn.execute(select(webhook_subscriptions).where(webhook_subscriptions.c.id == sub_id)).first()
    if row is None:
        raise NotFound(f"No webhook subscription {sub_id}.")
    return _subscription_dict(row, secret)


def list_subscriptions(conn: Connection) -> dict[str, Any]:
    rows = conn.execute(select(webhook_subscriptions).order_by(webhook_subscriptions.c.id))
    return {"items": [_subscription_dict(r) for r in rows]}


def deactivate_subscription(uow: UnitOfWork, sub_id: int) -> dict[str, Any]:
    """Stop a subscription: nothing new is queued for it and its pending messages go dead."""
    get_subscription(uow.conn, sub_id)
    uow.conn.execute(update(webhook_subscriptions).where(webhook_subscriptions.c.id == sub_id).values(active=0))
    uow.conn.execute(
        update(outbox)
        .where(outbox.c.subscription_id == sub_id, outbox.c.status == "pending")
        .values(status="dead", last_error="subscription removed")
    )
    return get_subscription(uow.conn, sub_id)


def list_deliveries(conn: Connection, sub_id: int, limit: int, cursor: str | None) -> dict[str, Any]:
    """The subscription's delivery attempts, newest first."""
    get_subscription(conn, sub_id)
    q = select(webhook_deliveries).where(webhook_deliveries.c.subscription_id == sub_id)
    rows, nxt = page(conn, q, webhook_deliveries, [SortField("id", descending=True)], limit, cursor)
    return {
        "items": [
            {
                "message_id": r.message_id,
                "event_type": r.event_type,
                "attempt": r.attempt,
                "at": rfc3339(r.at),
                "status_code": r.status_code,
                "ok": bool(r.ok),
                "error": r.error,
                "duration_ms": r.duration_ms,
            }
            for r in rows
        ],
        "next_cursor": nxt,
    }


def _notification_dict(r: Any, show_urls: bool = True) -> dict[str, Any]:
    # A webhook URL often carries the receiver's token: only keys that manage subscriptions see it.
    hidden = r.kind == "webhook" and not show_urls
    return {
        "id": r.id,
        "kind": r.kind,
        "to": f"subscription:{r.subscription_id}" if hidden else r.recipient,
        "status": r.status,
        "created_at": rfc3339(r.created_at),
        "event_type": r.event_type,
        "order_number": r.order_number,
        "channel": r.channel,
        "subscription_id": r.subscription_id,
        "attempts": r.attempts,
        "next_attempt_at": rfc3339(r.next_attempt_at) if r.status == "pending" else None,
        "last_error": r.last_error,
        "delivered_at": rfc3339(r.delivered_at) if r.delivered_at else None,
    }


def list_notifications(
    conn: Connection,
    *,
    channel: str | None,
    order_number: str | None,
    status: str | None,
    kind: str | None,
    limit: int,
    cursor: str | None,
    show_urls: bool = False,
) -> dict[str, Any]:
    """Outbox records oldest first, filtered; dead letters are status=dead.

    A webhook's `to` is its URL when `show_urls`, else "subscription:<id>"."""
    q = select(outbox)
    for col, value in ((outbox.c.channel, channel), (outbox.c.order_number, order_number)):
        if value:
            q = q.where(col == value)
    if status:
        q = q.where(outbox.c.status == status)
    if kind:
        q = q.where(outbox.c.kind == kind)
    rows, nxt = page(conn, q, outbox, [SortField("created_at"), SortField("id")], limit, cursor)
    return {"items": [_notification_dict(r, show_urls) for r in rows], "next_cursor": nxt}


def retry_notification(uow: UnitOfWork, message_id: str) -> dict[str, Any]:
    """Give a dead message another round of attempts, under the same id."""
    row = uow.conn.execute(select(outbox).where(outbox.c.id == message_id)).first()
    if row is None:
        raise NotFound(f"No notification '{message_id}'.")
    if row.status != "dead":
        raise Conflict(
            f"Notification {message_id} is {row.status}; only dead ones can be retried.",
            [{"field": "status", "value": row.status, "reason": "not dead"}],
        )
    values = {"status": "pending", "attempts": 0, "next_attempt_at": uow.now, "leased_until": None, "locked_by": None}
    uow.conn.execute(update(outbox).where(outbox.c.id == message_id).values(**values))
    return _notification_dict(SimpleNamespace(**(dict(row._mapping) | values)))
