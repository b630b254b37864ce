"""Committed events turned into notifications: the worker's side of the outbox.

A use case's transaction writes its facts and its events, nothing more; each transaction's events
name a row of `event_batches` (oms.store.uow). `build_notifications` takes the pending batches in
id order, reads their events, joins what the messages show (the order's customer and channel,
product names, the order's lines as they are now), writes the outbox rows and deletes the batches,
all in one transaction: every committed event is turned into its messages exactly once, never
skipped. One builder runs at a time (an advisory lock on PostgreSQL, the write lock on SQLite), so
messages are created in event order; workers then deliver the outbox (oms.worker).

Why no event is skipped or reordered for an order: a batch id is drawn by the last statement of
its transaction, while it still holds its row locks. Two transactions that touch the same order both
lock it (or the SKU row that guards the line), so the later one draws its id after the earlier one
committed: batch ids follow commit order wherever the order of events matters, and a batch that
commits later than one with a higher id is simply built on the next round (it stays pending until then).

Emails (to the order's customer), one per order, kind and transaction:
- order_confirmation: on order_placed, listing each back-ordered line with its ETA at placement;
- backorder_allocated: on allocated (the units allocated then, from the event);
- eta_later: on eta_changed with later=true (old and new date, from the event);
- dispatched: on shipment_advanced to dispatched (carrier, tracking number);
- cancelled: on cancelled (the reason, "aged out" included).
Webhooks: one message per event per active subscription, made before the event, that names its type (or "*").
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, text

from oms.engine import parse_json
from oms.formats import rfc3339
from oms.store.bulk import chunks, insert_rows
from oms.store.db import Store
from oms.store.tables import (
    customers,
    event_batches,
    events,
    order_lines,
    orders,
    outbox,
    products,
    shipment_lines,
    webhook_subscriptions,
)
from oms.store.uow import UnitOfWork, utcnow

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
BATCHES_PER_ROUND = 500

_last_ns = 0
_id_lock = threading.Lock()


def new_message_id() -> str:
    """A stable id for a message: its webhook-id and Message-ID on every attempt.

    Time-ordered (nanoseconds, strictly increasing in this process, then random bits) so that
    messages built together are delivered in the order their events happened.
    """
    global _last_ns
    with _id_lock:
        _last_ns = max(_last_ns + 1, time.time_ns())
        stamp = _last_ns
    return f"msg_{stamp:016x}{uuid.uuid4().hex[:16]}"


def build_notifications(store: Store, max_batches: int = BATCHES_PER_ROUND) -> int:
    """Turn the oldest pending event batches into outbox rows; returns the batches built (0: none pending)."""
    return store.write(lambda uow: build_in(uow, max_batches), actor="worker")


def build_in(uow: UnitOfWork, max_batches: int = BATCHES_PER_ROUND) -> int:
    conn = uow.conn
    if (
        uow.dialect == "postgresql"
        and not conn.execute(text("SELECT pg_try_advisory_xact_lock(hashtext('oms notifications'))")).scalar_one()
    ):
        return 0  # another worker is building; its messages come first, ours next round
    batches = list(conn.scalars(select(event_batches.c.id).order_by(event_batches.c.id).limit(max_batches)))
    if not batches:
        return 0
    evs = list(
        conn.execute(select(events).where(events.c.batch_id.in_(batches)).order_by(events.c.batch_id, events.c.id))
    )
    now = utcnow()
    loud = [e for e in evs if e.actor not in SILENT_ACTORS]
    rows = _webhook_messages(conn, loud, now) + _email_messages(conn, loud, now)
    rows.sort(key=lambda r: r.pop("_seq"))  # in event order, so ids (time-ordered) follow the events
    for r in rows:
        r["id"] = new_message_id()
    insert_rows(conn, outbox, rows)
    conn.execute(delete(event_batches).where(event_batches.c.id.in_(batches)))
    return len(batches)


def pending_batches(conn: Connection) -> tuple[int, datetime | None]:
    """How many transactions' events wait to be turned into notifications, and since when."""
    row = conn.execute(select(func.count(), func.min(event_batches.c.at))).one()
    return int(row[0]), row[1]


def _message(
    seq: int, kind: str, event_type: str, to: str, payload: dict[str, Any], at: datetime, now: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "_seq": seq,
        "kind": kind,
        "event_type": event_type,
        "recipient": to,
        "subscription_id": extra.get("subscription_id"),
        "order_number": extra.get("order_number"),
        "channel": extra.get("channel"),
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": min(at, now),  # due at once, even for an event dated in the future
        "created_at": at,
    }


def _data(e: Any) -> dict[str, Any]:
    return dict(parse_json(e.data))


# ---- webhooks -----------------------------------------------------------------------------------


def _webhook_messages(conn: Connection, evs: Sequence[Any], now: datetime) -> list[dict[str, Any]]:
    subs = conn.execute(
        select(
            webhook_subscriptions.c.id,
            webhook_subscriptions.c.url,
            webhook_subscriptions.c.event_types,
            webhook_subscriptions.c.created_at,
        ).where(webhook_subscriptions.c.active == 1)
    ).all()
    if not subs:
        return []
    channels = _channels(conn, {e.order_number for e in evs if e.order_number})
    out = []
    for seq, e in enumerate(evs):
        wanted = [s for s in subs if ("*" in s.event_types or e.type in s.event_types) and s.created_at <= e.at]
        if not wanted:
            continue
        data = _data(e)
        for k in ("order_number", "sku", "po_number"):
            if getattr(e, k) is not None:
                data[k] = getattr(e, k)
        body = {"type": e.type, "timestamp": rfc3339(e.at), "data": data}
        for s in wanted:
            out.append(
                _message(
                    seq * 2,
                    "webhook",
                    e.type,
                    s.url,
                    body,
                    e.at,
                    now,
                    subscription_id=s.id,
                    order_number=e.order_number,
                    channel=channels.get(e.order_number or ""),
                )
            )
    return out


def _channels(conn: Connection, order_numbers: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in chunks(sorted(set(order_numbers))):
        q = select(orders.c.order_number, orders.c.channel).where(orders.c.order_number.in_(part))
        out |= {r.order_number: r.channel for r in conn.execute(q)}
    return out


# ---- emails -------------------------------------------------------------------------------------


def _email_kind(e: Any, data: Mapping[str, Any]) -> str | None:
    if e.type == "order_placed":
        return "order_confirmation"
    if e.type == "allocated":
        return "backorder_allocated"
    if e.type == "eta_changed" and data.get("later"):
        return "eta_later"
    if e.type == "shipment_advanced" and data.get("to") == "dispatched":
        return "dispatched"
    if e.type == "cancelled":
        return "cancelled"
    return None


def _email_messages(conn: Connection, evs: Sequence[Any], now: datetime) -> list[dict[str, Any]]:
    # One email per (transaction, order, kind): the events it sums, and where the first of them stands.
    wanted: dict[tuple[int, str, str], list[tuple[int, Any, dict[str, Any]]]] = defaultdict(list)
    for seq, e in enumerate(evs):
        data = _data(e)
        kind = _email_kind(e, data)
        if kind and e.order_number:
            wanted[(e.batch_id, e.order_number, kind)].append((seq, e, data))
    if not wanted:
        return []
    numbers = sorted({n for _, n, _ in wanted})
    heads: dict[str, Any] = {}
    lines: dict[str, list[dict[str, Any]]] = {}
    for part in chunks(numbers):  # bounded IN lists: a GRN can reach 100,000 orders
        heads |= {
            r.order_number: r
            for r in conn.execute(
                select(orders.c.order_number, orders.c.channel, customers.c.name, customers.c.email)
                .join(customers, customers.c.customer_id == orders.c.customer_id)
                .where(orders.c.order_number.in_(part))
            )
        }
        lines |= _lines(conn, list(part))
    shipped = _shipment_lines(
        conn, [d["shipment_id"] for (_, _, kind), es in wanted.items() if kind == "dispatched" for _, _, d in es]
    )
    names = _names(conn, {line["sku"] for ls in lines.values() for line in ls})
    out = []
    for (_, order_number, kind), es in sorted(wanted.items(), key=lambda kv: kv[1][0][0]):
        head = heads.get(order_number)
        if head is None or not head.email:
            continue
        base = {"order_number": order_number, "customer_name": head.name, "channel": head.channel}
        payload = base | _email_data(kind, [d for _, _, d in es], lines.get(order_number, []), shipped, names)
        first_seq, first, _ = es[0]
        out.append(
            _message(
                first_seq * 2 + 1,
                "email",
                kind,
                head.email,
                payload,
                first.at,
                now,
                order_number=order_number,
                channel=head.channel,
            )
        )
    return out


def _lines(conn: Connection, order_numbers: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The orders' lines as they are now, with product names."""
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


def _names(conn: Connection, skus: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in chunks(sorted(set(skus))):
        out |= {
            r.sku: r.name for r in conn.execute(select(products.c.sku, products.c.name).where(products.c.sku.in_(part)))
        }
    return out


def _shipment_lines(conn: Connection, shipment_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for part in chunks(sorted(set(shipment_ids))):
        q = (
            select(shipment_lines.c.shipment_id, shipment_lines.c.line_no, shipment_lines.c.sku, shipment_lines.c.qty)
            .where(shipment_lines.c.shipment_id.in_(part), shipment_lines.c.qty > 0)
            .order_by(shipment_lines.c.shipment_id, shipment_lines.c.line_no)
        )
        for r in conn.execute(q):
            out[r.shipment_id].append({"line_no": r.line_no, "sku": r.sku, "qty": r.qty})
    return out


def _email_data(
    kind: str,
    es: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    shipped: Mapping[int, list[dict[str, Any]]],
    names: Mapping[str, str],
) -> dict[str, Any]:
    by_no = {line["line_no"]: line for line in lines}
    name_of = {line["line_no"]: line["name"] for line in lines}
    if kind == "order_confirmation":
        # As placed (the event), not as the order is by the time the worker gets to it.
        placed = [
            {
                "line_no": ln["line_no"],
                "sku": ln["sku"],
                "name": names.get(ln["sku"], ln["sku"]),
                "qty": ln["qty"],
                "allocated_qty": ln["allocated_qty"],
                "backordered_qty": ln["backordered_qty"],
                "shipped_qty": 0,
                "cancelled_qty": 0,
                "eta": ln.get("eta"),
            }
            for ln in es[0]["lines"]
        ]
        return {"lines": placed, "backordered": [line for line in placed if line["backordered_qty"] > 0]}
    if kind == "backorder_allocated":
        got: dict[int, int] = defaultdict(int)
        for d in es:
            for a in d["lines"]:
                got[a["line_no"]] += a["qty"]
        return {
            "lines": [by_no[n] | {"allocated_now": q} for n, q in sorted(got.items()) if n in by_no],
            "still_waiting": [line for line in lines if line["backordered_qty"] > 0],
        }
    if kind == "eta_later":
        last: dict[int, Mapping[str, Any]] = {}
        first: dict[int, str | None] = {}
        for d in es:
            n = d["line_no"]
            first.setdefault(n, d["from"])
            last[n] = d
        return {
            "lines": [
                {"line_no": n, "sku": d["sku"], "name": name_of.get(n), "from": first[n], "to": d["to"]}
                for n, d in sorted(last.items())
            ]
        }
    if kind == "dispatched":
        return {
            "shipments": [
                {
                    "shipment_id": d["shipment_id"],
                    "carrier": d["carrier"],
                    "tracking_number": d["tracking_number"],
                    "lines": [sl | {"name": name_of.get(sl["line_no"])} for sl in shipped.get(d["shipment_id"], [])],
                }
                for d in es
            ]
        }
    # cancelled
    return {
        "reason": es[-1]["reason"],
        "cancellations": [
            {"reason": d["reason"], "lines": [c | {"name": name_of.get(c["line_no"])} for c in d["lines"]]} for d in es
        ],
        "lines": lines,
    }
