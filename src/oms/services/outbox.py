"""Business events turned into notifications, written to the outbox in the event's own transaction.

`notify` is called by `Ctx.flush_events` with the batch of events about to be stored, so every use
case that records an event also records the email or webhook it causes, or neither (one
transaction). Workers deliver the outbox after commit (oms.worker).

Emails (to the order's customer), one per order and kind per transaction:
- order_confirmation: on order_placed, listing each back-ordered line with its ETA;
- backorder_allocated: on allocated (units of waiting lines got stock);
- eta_later: on eta_changed with later=true (old and new date);
- dispatched: on shipment_advanced to dispatched (carrier, tracking number);
- cancelled: on cancelled (the reason, "aged out" included).
Webhooks: one message per event per active subscription that names the event's type (or "*").
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update

from oms.domain.allocation import SortField
from oms.domain.errors import Conflict, Invalid, NotFound
from oms.store.db import insert_rows
from oms.store.tables import (
    customers,
    order_lines,
    orders,
    outbox,
    products,
    shipment_lines,
    webhook_deliveries,
    webhook_subscriptions,
)
from oms.views import page

from .engine import chunks as engine_chunks

if TYPE_CHECKING:
    from .common import Ctx

# Events a webhook may subscribe to (the types the use cases record; "*" = all of them).
WEBHOOK_EVENT_TYPES = (
    "order_placed",
    "backordered",
    "allocated",
    "eta_changed",
    "status_changed",
    "priority_changed",
    "cancelled",
    "shipment_created",
    "shipment_advanced",
    "po_created",
    "po_changed",
    "po_cancelled",
    "goods_received",
    "stock_adjusted",
    "product_created",
    "product_changed",
    "customer_created",
    "customer_changed",
    "customer_tier_changed",
    "default_policy_changed",
    "allocation_rule_changed",
    "customer_kept_waiting",
)
EMAIL_KINDS = ("order_confirmation", "backorder_allocated", "eta_later", "dispatched", "cancelled")
# The demo loader replays weeks of simulated history: its customers were never told anything.
SILENT_ACTORS = frozenset({"demo"})


_last_ns = 0
_id_lock = threading.Lock()


def new_message_id() -> str:
    """A stable id for a message: its webhook-id and Message-ID on every attempt.

    Time-ordered (nanoseconds, strictly increasing in this process, then random bits) so that
    messages written together are delivered in the order their events happened.
    """
    global _last_ns
    with _id_lock:
        _last_ns = max(_last_ns + 1, time.time_ns())
        stamp = _last_ns
    return f"msg_{stamp:016x}{uuid.uuid4().hex[:16]}"


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def notify(ctx: Ctx, evs: Sequence[Mapping[str, Any]]) -> None:
    """Write the outbox messages these events cause (called before the events themselves are stored)."""
    if not evs or ctx.actor in SILENT_ACTORS:
        return
    rows = _webhook_messages(ctx, evs) + _email_messages(ctx, evs)
    insert_rows(ctx.conn, outbox, rows)  # one statement on PostgreSQL, however many messages


def _message(ctx: Ctx, kind: str, event_type: str, to: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": new_message_id(),
        "kind": kind,
        "event_type": event_type,
        "recipient": to,
        "subscription_id": extra.get("subscription_id"),
        "order_number": extra.get("order_number"),
        "channel": extra.get("channel"),
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": _due(ctx),
        "created_at": ctx.now,
    }


def _due(ctx: Ctx) -> datetime:
    """Due at once, even for a use case run "in the future"; one clock read per use case."""
    if "outbox_due" not in ctx._memo:
        ctx._memo["outbox_due"] = min(ctx.now, datetime.now(UTC))
    due: datetime = ctx._memo["outbox_due"]
    return due


# ---- webhooks -----------------------------------------------------------------------------------


def _webhook_messages(ctx: Ctx, evs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    subs = ctx.conn.execute(
        select(webhook_subscriptions.c.id, webhook_subscriptions.c.url, webhook_subscriptions.c.event_types).where(
            webhook_subscriptions.c.active == 1
        )
    ).all()
    if not subs:
        return []
    channels = _channels(ctx.conn, {e["order_number"] for e in evs if e.get("order_number")})
    out = []
    for e in evs:
        wanted = [s for s in subs if "*" in s.event_types or e["type"] in s.event_types]
        if not wanted:
            continue
        data = dict(e["data"])
        for k in ("order_number", "sku", "po_number"):
            if e.get(k) is not None:
                data[k] = e[k]
        body = {"type": e["type"], "timestamp": rfc3339(e["at"]), "data": data}
        for s in wanted:
            out.append(
                _message(
                    ctx,
                    "webhook",
                    e["type"],
                    s.url,
                    body,
                    subscription_id=s.id,
                    order_number=e.get("order_number"),
                    channel=channels.get(e.get("order_number") or ""),
                )
            )
    return out


def _channels(conn: Connection, order_numbers: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(order_numbers))
    if not wanted:
        return {}
    out: dict[str, str] = {}
    for part in engine_chunks(wanted):
        q = select(orders.c.order_number, orders.c.channel).where(orders.c.order_number.in_(part))
        out |= {r.order_number: r.channel for r in conn.execute(q)}
    return out


# ---- emails -------------------------------------------------------------------------------------


def _email_messages(ctx: Ctx, evs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    wanted: dict[str, dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for e in evs:
        kind = _email_kind(e)
        if kind and e.get("order_number"):
            wanted[e["order_number"]][kind].append(e)
    if not wanted:
        return []
    heads: dict[str, Any] = {}
    lines: dict[str, list[dict[str, Any]]] = {}
    for part in engine_chunks(sorted(wanted)):  # bounded IN lists: a GRN can reach 100,000 orders
        heads |= {
            r.order_number: r
            for r in ctx.conn.execute(
                select(orders.c.order_number, orders.c.channel, customers.c.name, customers.c.email)
                .join(customers, customers.c.customer_id == orders.c.customer_id)
                .where(orders.c.order_number.in_(part))
            )
        }
        lines |= _lines(ctx.conn, part)
    shipped = _shipment_lines(
        ctx.conn,
        [e["data"]["shipment_id"] for kinds in wanted.values() for e in kinds.get("dispatched", [])],
    )
    out = []
    for order_number, kinds in sorted(wanted.items()):
        head = heads.get(order_number)
        if head is None or not head.email:
            continue
        base = {"order_number": order_number, "customer_name": head.name, "channel": head.channel}
        for kind, es in kinds.items():
            payload = base | _email_data(kind, es, lines.get(order_number, []), shipped)
            out.append(
                _message(ctx, "email", kind, head.email, payload, order_number=order_number, channel=head.channel)
            )
    return out


def _email_kind(e: Mapping[str, Any]) -> str | None:
    t, data = e["type"], e["data"]
    if t == "order_placed":
        return "order_confirmation"
    if t == "allocated":
        return "backorder_allocated"
    if t == "eta_changed" and data.get("later"):
        return "eta_later"
    if t == "shipment_advanced" and data.get("to") == "dispatched":
        return "dispatched"
    if t == "cancelled":
        return "cancelled"
    return None


def _lines(conn: Connection, order_numbers: list[str]) -> dict[str, list[dict[str, Any]]]:
    q = (
        select(
            order_lines.c.order_number,
            order_lines.c.line_no,
            order_lines.c.sku,
            products.c.name,
            order_lines.c.qty,
            order_lines.c.allocated_qty,
            order_lines.c.backordered_qty,
            order_lines.c.shipped_qty,
            order_lines.c.cancelled_qty,
            order_lines.c.eta,
        )
        .join(products, products.c.sku == order_lines.c.sku)
        # Through orders.order_number (unique) to order_lines.order_id (indexed): no scan of all lines.
        .where(order_lines.c.order_id.in_(select(orders.c.id).where(orders.c.order_number.in_(order_numbers))))
        .order_by(order_lines.c.order_number, order_lines.c.line_no)
    )
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in conn.execute(q):
        out[r.order_number].append(
            {
                "line_no": r.line_no,
                "sku": r.sku,
                "name": r.name,
                "qty": r.qty,
                "allocated_qty": r.allocated_qty,
                "backordered_qty": r.backordered_qty,
                "shipped_qty": r.shipped_qty,
                "cancelled_qty": r.cancelled_qty,
                "eta": r.eta.isoformat() if r.eta else None,
            }
        )
    return out


def _shipment_lines(conn: Connection, shipment_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not shipment_ids:
        return out
    q = (
        select(shipment_lines.c.shipment_id, shipment_lines.c.line_no, shipment_lines.c.sku, shipment_lines.c.qty)
        .where(shipment_lines.c.shipment_id.in_(sorted(set(shipment_ids))), shipment_lines.c.qty > 0)
        .order_by(shipment_lines.c.shipment_id, shipment_lines.c.line_no)
    )
    for r in conn.execute(q):
        out[r.shipment_id].append({"line_no": r.line_no, "sku": r.sku, "qty": r.qty})
    return out


def _email_data(
    kind: str,
    es: list[Mapping[str, Any]],
    lines: list[dict[str, Any]],
    shipped: Mapping[int, list[dict[str, Any]]],
) -> dict[str, Any]:
    names = {line["line_no"]: line["name"] for line in lines}
    if kind == "order_confirmation":
        return {"lines": lines, "backordered": [line for line in lines if line["backordered_qty"] > 0]}
    if kind == "backorder_allocated":
        got: dict[int, int] = defaultdict(int)
        for e in es:
            for a in e["data"]["lines"]:
                got[a["line_no"]] += a["qty"]
        by_no = {line["line_no"]: line for line in lines}
        return {
            "lines": [
                by_no[n] | {"allocated_now": q}
                for n, q in sorted(got.items())
                if n in by_no  # always: the lines are the order's own
            ],
            "still_waiting": [line for line in lines if line["backordered_qty"] > 0],
        }
    if kind == "eta_later":
        last: dict[int, Mapping[str, Any]] = {}
        first: dict[int, str | None] = {}
        for e in es:
            n = e["data"]["line_no"]
            first.setdefault(n, e["data"]["from"])
            last[n] = e["data"]
        return {
            "lines": [
                {"line_no": n, "sku": d["sku"], "name": names.get(n), "from": first[n], "to": d["to"]}
                for n, d in sorted(last.items())
            ]
        }
    if kind == "dispatched":
        return {
            "shipments": [
                {
                    "shipment_id": e["data"]["shipment_id"],
                    "carrier": e["data"]["carrier"],
                    "tracking_number": e["data"]["tracking_number"],
                    "lines": [
                        sl | {"name": names.get(sl["line_no"])} for sl in shipped.get(e["data"]["shipment_id"], [])
                    ],
                }
                for e in es
            ]
        }
    # cancelled
    return {
        "reason": es[-1]["data"]["reason"],
        "cancellations": [
            {
                "reason": e["data"]["reason"],
                "lines": [c | {"name": names.get(c["line_no"])} for c in e["data"]["lines"]],
            }
            for e in es
        ],
        "lines": lines,
    }


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
    ctx: Ctx, url: str, event_types: Sequence[str], secret: str, description: str | None = None
) -> dict[str, Any]:
    """Subscribe a URL to event types; the answer carries the signing secret (shown only here)."""
    unknown = sorted(set(event_types) - set(WEBHOOK_EVENT_TYPES) - {"*"})
    if unknown:
        raise Invalid(
            f"Unknown event type(s): {', '.join(unknown)}. Accepted: '*' or any of {', '.join(WEBHOOK_EVENT_TYPES)}.",
            [{"field": "event_types", "value": t, "reason": "unknown event type"} for t in unknown],
        )
    sub_id = ctx.conn.execute(
        insert(webhook_subscriptions)
        .returning(webhook_subscriptions.c.id)
        .values(
            url=url,
            event_types=sorted(set(event_types)),
            secret=secret,
            description=description,
            active=1,
            created_at=ctx.now,
        )
    ).scalar_one()
    return get_subscription(ctx.conn, sub_id, secret=True)


def get_subscription(conn: Connection, sub_id: int, secret: bool = False) -> dict[str, Any]:
    row = conn.execute(select(webhook_subscriptions).where(webhook_subscriptions.c.id == sub_id)).first()
    if row is None:
        raise NotFound(f"No webhook subscription {sub_id}.")
    return _subscription_dict(row, secret)


def list_subscriptions(conn: Connection) -> dict[str, Any]:
    rows = conn.execute(select(webhook_subscriptions).order_by(webhook_subscriptions.c.id))
    return {"items": [_subscription_dict(r) for r in rows]}


def deactivate_subscription(ctx: Ctx, sub_id: int) -> dict[str, Any]:
    """Stop a subscription: nothing new is queued for it and its pending messages go dead."""
    get_subscription(ctx.conn, sub_id)
    ctx.conn.execute(update(webhook_subscriptions).where(webhook_subscriptions.c.id == sub_id).values(active=0))
    ctx.conn.execute(
        update(outbox)
        .where(outbox.c.subscription_id == sub_id, outbox.c.status == "pending")
        .values(status="dead", last_error="subscription removed")
    )
    return get_subscription(ctx.conn, sub_id)


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


def _notification_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "to": r.recipient,
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
) -> dict[str, Any]:
    """Outbox records oldest first, filtered; dead letters are status=dead."""
    q = select(outbox)
    for col, value in ((outbox.c.channel, channel), (outbox.c.order_number, order_number)):
        if value:
            q = q.where(col == value)
    if status:
        q = q.where(outbox.c.status == status)
    if kind:
        q = q.where(outbox.c.kind == kind)
    rows, nxt = page(conn, q, outbox, [SortField("created_at"), SortField("id")], limit, cursor)
    return {"items": [_notification_dict(r) for r in rows], "next_cursor": nxt}


def retry_notification(ctx: Ctx, message_id: str) -> dict[str, Any]:
    """Give a dead message another round of attempts, under the same id."""
    row = ctx.conn.execute(select(outbox).where(outbox.c.id == message_id)).first()
    if row is None:
        raise NotFound(f"No notification '{message_id}'.")
    if row.status != "dead":
        raise Conflict(
            f"Notification {message_id} is {row.status}; only dead ones can be retried.",
            [{"field": "status", "value": row.status, "reason": "not dead"}],
        )
    ctx.conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id)
        .values(status="pending", attempts=0, next_attempt_at=ctx.now, leased_until=None, locked_by=None)
    )
    return _notification_dict(ctx.conn.execute(select(outbox).where(outbox.c.id == message_id)).one())
