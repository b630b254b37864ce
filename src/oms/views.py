"""The read side: plain selects into the shapes the API and the dashboard show.

Listings page by keyset (an opaque cursor holding the last row's sort values), never by OFFSET and
never with a COUNT, so page 200 costs what page 1 costs.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import operator
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    Select,
    and_,
    any_,
    bindparam,
    column,
    func,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from oms.domain import bounds
from oms.domain.allocation import SortField, sort_fields
from oms.domain.errors import Invalid, NotFound
from oms.domain.eta import late_supply_date
from oms.services.common import (
    allocation_rule,
    default_policy,
    incoming_by_sku,
    policy_from_json,
    policy_to_json,
)
from oms.store.queue import after, after_levels, before_levels, level_pair_guard, order_by
from oms.store.tables import (
    customers,
    events,
    order_lines,
    orders,
    po_lines,
    products,
    purchase_orders,
    shipment_lines,
    shipments,
)
from oms.store.types import Money as MoneyType
from oms.store.types import UTCDateTime
from oms.store.uow import read_config, read_version


def rfc3339(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z") if t else None


def iso_date(d: date | None) -> str | None:
    return d.isoformat() if d else None


def money(d: Decimal) -> str:
    return f"{d:.2f}"


# ---- cursors ------------------------------------------------------------------------------------


def _fingerprint(fields: Sequence[SortField]) -> str:
    """Which ordering a cursor belongs to: a cursor from another ordering is refused, not misread."""
    return ",".join(f"{f.attr}{'-' if f.descending else '+'}" for f in fields)


def _python_type(table: Any, attr: str) -> type:
    col_type = table.c[attr].type
    if isinstance(col_type, MoneyType):
        return Decimal
    if isinstance(col_type, UTCDateTime):
        return datetime
    found: type = col_type.python_type
    return found


def encode_cursor(values: Sequence[Any], fields: Sequence[SortField]) -> str:
    def enc(v: Any) -> Any:
        if isinstance(v, datetime):
            return {"t": v.isoformat()}
        if isinstance(v, date):
            return {"d": v.isoformat()}
        if isinstance(v, Decimal):
            return {"m": str(v)}
        return v

    raw = [_fingerprint(fields), [enc(v) for v in values]]
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, table: Any, fields: Sequence[SortField]) -> list[Any]:
    """The sort values a cursor carries, each checked against its column's type."""

    def dec(v: Any) -> Any:
        if isinstance(v, dict):
            if "t" in v:
                return datetime.fromisoformat(v["t"])
            if "d" in v:
                return date.fromisoformat(v["d"])
            if "m" in v:
                return Decimal(v["m"])
        return v

    try:
        fingerprint, raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if fingerprint != _fingerprint(fields) or not isinstance(raw, list) or len(raw) != len(fields):
            raise ValueError("cursor of another ordering")
        values = [dec(v) for v in raw]
        for f, v in zip(fields, values, strict=True):
            expected = _python_type(table, f.attr)
            if v is None and f.nulls_last:
                continue
            if type(v) is not expected:
                raise ValueError(f"{f.attr} is not a {expected.__name__}")
            problem = _cursor_value_problem(v)
            if problem is not None:
                raise ValueError(f"{f.attr} {problem}")
        return values
    except (ValueError, TypeError, KeyError, ArithmeticError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid(
            "The cursor is not one this listing gave out for this ordering (the allocation rule may have "
            "changed). Pass next_cursor from the previous page unchanged, or start again without a cursor.",
            [{"field": "cursor", "reason": "invalid cursor"}],
        ) from exc


def _cursor_value_problem(v: Any) -> str | None:
    """A cursor's value checked as the API's schemas check what they take (oms.domain.bounds)."""
    if isinstance(v, datetime):
        return bounds.time_problem(v)
    if isinstance(v, date):
        return bounds.date_problem(v)
    if isinstance(v, Decimal):
        return bounds.money_problem(v)
    if isinstance(v, int):
        return bounds.integer_problem(v)
    if isinstance(v, str) and "\x00" in v:  # PostgreSQL refuses NUL in text
        return "contains a NUL character"
    return None


def page(
    conn: Connection,
    q: Select[Any],
    table: Any,
    fields: list[SortField],
    limit: int,
    cursor: str | None,
    ranges: bool = False,
) -> tuple[list[Any], str | None]:
    """One page in `fields` order after the cursor's row.

    `ranges`: read the rows after the cursor as disjoint index ranges, each with its own ORDER BY and
    LIMIT, merged (queue.after_levels), for an order with several fields that an index serves.
    """
    ob = order_by(table, fields)
    if cursor and ranges and len(fields) > 1:
        levels = after_levels(table, fields, decode_cursor(cursor, table, fields))
        parts = [q.where(level).order_by(*ob).limit(limit + 1).subquery() for level in levels]
        if not parts:
            return [], None
        merged = parts[0] if len(parts) == 1 else union_all(*[select(p) for p in parts]).subquery()
        q = select(merged)
        ob = order_by(merged, fields)
    elif cursor:
        q = q.where(after(table, fields, decode_cursor(cursor, table, fields)))
    rows: list[Any] = list(conn.execute(q.order_by(*ob).limit(limit + 1)))
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        nxt = encode_cursor([getattr(last, f.attr) for f in fields], fields)
    return rows, nxt


# ---- products -----------------------------------------------------------------------------------


def product_view(conn: Connection, sku: str) -> dict[str, Any]:
    row = conn.execute(select(products).where(products.c.sku == sku)).first()
    if row is None:
        raise NotFound(f"No product with SKU '{sku}'.")
    incoming = incoming_by_sku(conn, [sku]).get(sku, 0)
    policy = policy_from_json(row.backorder_policy)
    return product_json(row, policy_to_json(policy) if policy else None, policy or default_policy(conn), incoming)


def product_json(row: Any, stored_policy: Any, effective: Any, incoming: int) -> dict[str, Any]:
    """A product as the API shows it, from a row or a use case's copy."""
    return {
        "sku": row.sku,
        "name": row.name,
        "unit_price": money(row.unit_price),
        "lead_time_days": row.lead_time_days,
        "backorder_policy": stored_policy,
        "effective_backorder_policy": policy_to_json(effective),
        "stock": {
            "on_hand": row.on_hand,
            "allocated": row.allocated,
            "available": max(0, row.on_hand - row.allocated),
            "backordered": row.backordered,
            "incoming": incoming,
        },
        "version": row.version,
    }


def list_products(conn: Connection, limit: int, cursor: str | None) -> dict[str, Any]:
    fields = [SortField("sku")]
    rows, nxt = page(conn, select(products.c.sku), products, fields, limit, cursor)
    return {"items": [product_view(conn, r.sku) for r in rows], "next_cursor": nxt}


def customer_view(conn: Connection, customer_id: str) -> dict[str, Any]:
    row = conn.execute(select(customers).where(customers.c.customer_id == customer_id)).first()
    if row is None:
        raise NotFound(f"No customer '{customer_id}'.")
    return {"customer_id": row.customer_id, "name": row.name, "email": row.email, "tier": row.tier}


# ---- orders -------------------------------------------------------------------------------------


def _order_dicts(conn: Connection, heads: Sequence[Any]) -> list[dict[str, Any]]:
    ids = [h.id for h in heads]
    lines: dict[int, list[Any]] = defaultdict(list)
    if ids:
        for r in conn.execute(
            select(order_lines)
            .where(order_lines.c.order_id.in_(ids))
            .order_by(order_lines.c.order_id, order_lines.c.line_no)
        ):
            lines[r.order_id].append(r)
    return [order_json(h, lines[h.id]) for h in heads]


def order_json(head: Any, lines: Sequence[Any] | None = None) -> dict[str, Any]:
    """An order as the API shows it, from rows or from a use case's working copy (which carries its lines)."""
    return {
        "order_number": head.order_number,
        "channel": head.channel,
        "customer_id": head.customer_id,
        "status": str(head.status),
        "ship_policy": str(head.ship_policy),
        "placed_at": rfc3339(head.placed_at),
        "priority": head.priority,
        "order_value": money(head.order_value),
        "lines": [
            {
                "line_no": r.line_no,
                "sku": r.sku,
                "qty": r.qty,
                "unit_price": money(r.unit_price),
                "allocated_qty": r.allocated_qty,
                "backordered_qty": r.backordered_qty,
                "shipped_qty": r.shipped_qty,
                "cancelled_qty": r.cancelled_qty,
                "eta": iso_date(r.eta),
                "promised_date": iso_date(r.promised_date),
            }
            for r in (head.lines if lines is None else lines)
        ],
    }


def order_view(conn: Connection, order_number: str, channel: str | None = None) -> dict[str, Any]:
    q = select(orders).where(orders.c.order_number == order_number)
    if channel is not None:
        q = q.where(orders.c.channel == channel)
    head = conn.execute(q).first()
    if head is None:
        raise NotFound(f"No order '{order_number}'.")
    return _order_dicts(conn, [head])[0]


def list_orders(
    conn: Connection,
    *,
    status: str | None,
    channel: str | None,
    customer_id: str | None,
    sku: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    q = select(orders)
    if status:
        q = q.where(orders.c.status == status)
    if channel:
        q = q.where(orders.c.channel == channel)
    if customer_id:
        q = q.where(orders.c.customer_id == customer_id)
    if sku:
        q = q.where(orders.c.id.in_(select(order_lines.c.order_id).where(order_lines.c.sku == sku)))
    fields = [SortField("placed_at", descending=False), SortField("id")]
    rows, nxt = page(conn, q, orders, fields, limit, cursor)
    return {"items": _order_dicts(conn, rows), "next_cursor": nxt}


def order_events(conn: Connection, order_number: str, channel: str | None = None) -> dict[str, Any]:
    order_view(conn, order_number, channel)  # 404 when unknown or not visible
    rows = conn.execute(select(events).where(events.c.order_number == order_number).order_by(events.c.id))
    return {"items": [{"at": rfc3339(r.at), "type": r.type, "actor": r.actor, "data": r.data} for r in rows]}


# ---- the back-order queue -----------------------------------------------------------------------

AGE_FIELDS = [SortField("placed_at"), SortField("order_number"), SortField("line_no")]


def list_backorders(
    conn: Connection,
    *,
    sku: str | None,
    customer_id: str | None,
    order_number: str | None,
    channel: str | None,
    min_age_days: int | None,
    sort: str,
    limit: int,
    cursor: str | None,
    now: datetime,
    tier_rank: int | None = None,
) -> dict[str, Any]:
    """Pending back-ordered lines, filtered, each with its queue position under the current rule."""
    rule_fields = sort_fields(allocation_rule(conn))
    ol = order_lines
    # A literal 0, not a bound parameter: SQLite uses a partial index only when it can see that the
    # query's WHERE implies the index's.
    q = (
        select(*PAGE_COLUMNS, customers.c.tier.label("customer_tier"))
        .select_from(ol.outerjoin(customers, customers.c.customer_id == ol.c.customer_id))
        .where(ol.c.backordered_qty > literal_column("0"))
    )
    if sku:
        q = q.where(ol.c.sku == sku)
    if customer_id:
        q = q.where(ol.c.customer_id == customer_id)
    if order_number:
        q = q.where(ol.c.order_number == order_number)
    if channel:
        q = q.where(ol.c.channel == channel)
    if tier_rank is not None:
        q = q.where(ol.c.tier_rank == tier_rank)
    if min_age_days is not None:
        q = q.where(ol.c.placed_at <= now - timedelta(days=min_age_days))
    fields = rule_fields if sort == "queue" else AGE_FIELDS
    rows, nxt = page(conn, q, ol, fields, limit, cursor, ranges=True)
    # In queue order with no filter but the SKU, the page is a window of the global queue, so a
    # SKU's lines on it follow one another in that SKU's queue too.
    unfiltered = not (customer_id or order_number or channel or tier_rank is not None or min_age_days is not None)
    positions = positions_of(conn, rows, rule_fields, consecutive=sort == "queue" and unfiltered)
    items = [
        {
            "order_number": r.order_number,
            "channel": r.channel,
            "line_no": r.line_no,
            "sku": r.sku,
            "customer_id": r.customer_id,
            "customer_tier": r.customer_tier,
            "placed_at": rfc3339(r.placed_at),
            "qty": r.qty,
            "backordered_qty": r.backordered_qty,
            "queue_position": positions[r.id],
            "eta": iso_date(r.eta),
            "age_days": (now - r.placed_at).days,
            "priority": r.priority,
        }
        for r in rows
    ]
    return {"items": items, "next_cursor": nxt}


PAGE_COLUMNS = (
    order_lines.c.id,
    order_lines.c.order_number,
    order_lines.c.channel,
    order_lines.c.line_no,
    order_lines.c.sku,
    order_lines.c.customer_id,
    order_lines.c.placed_at,
    order_lines.c.qty,
    order_lines.c.backordered_qty,
    order_lines.c.eta,
    order_lines.c.priority,
    order_lines.c.tier_rank,
    order_lines.c.order_value,
    order_lines.c.promised_date,
)


def queue_positions(conn: Connection, line_ids: list[int], fields: list[SortField]) -> dict[int, int]:
    """Each waiting line's 1-based place in its SKU's queue."""
    if not line_ids:
        return {}
    rows = conn.execute(
        select(*PAGE_COLUMNS).where(order_lines.c.id.in_(line_ids), order_lines.c.backordered_qty > 0)
    ).all()
    return positions_of(conn, rows, fields)


def positions_of(
    conn: Connection, rows: Sequence[Any], fields: list[SortField], consecutive: bool = False
) -> dict[int, int]:
    """Queue positions of waiting lines (rows carrying the sort fields), in one statement.

    A SKU's lines are put in queue order here. The first costs a count of the lines ahead of it, the
    next ones a count of the lines between each and the one before it: disjoint index ranges, so the
    cost is the first line's position plus the gaps, not each line's position. `consecutive`: the
    caller knows no line of the SKU lies between them, so only the first is counted.
    """
    if not rows:
        return {}
    key = _queue_key(fields)
    by_sku: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_sku[r.sku].append(r)
    firsts: list[int] = []
    follows: list[tuple[int, int]] = []  # (line, the SKU's line before it on the page), in queue order
    for lines in by_sku.values():
        ordered = sorted(lines, key=key)
        firsts.append(ordered[0].id)
        follows += [(b.id, a.id) for a, b in itertools.pairwise(ordered)]
    pairs = [] if consecutive else follows
    if conn.dialect.name == "postgresql":
        params: dict[str, Any] = {"ids": firsts, "me_ids": [b for b, _ in pairs], "pv_ids": [a for _, a in pairs]}
    else:
        params = {"ids": firsts, "pairs": json.dumps(pairs)}
    ahead = {
        line_id: int(n) for line_id, n in conn.execute(_positions_statement(tuple(fields), conn.dialect.name), params)
    }
    out = {line_id: ahead[line_id] + 1 for line_id in firsts}
    for line_id, before_id in follows:  # in queue order, so the line before is always known
        out[line_id] = out[before_id] + 1 + (0 if consecutive else ahead[line_id])
    return out


def _queue_key(fields: list[SortField]) -> Any:
    """A Python sort key equal to the queue's ORDER BY (as the domain's queue_sort_key)."""

    def key(row: Any) -> tuple[Any, ...]:
        out: tuple[Any, ...] = ()
        for f in fields:
            v = getattr(row, f.attr)
            out += (v is None, v) if f.nulls_last else ((-v,) if f.descending else (v,))
        return out

    return key


@functools.cache
def _positions_statement(fields: tuple[SortField, ...], dialect: str) -> Any:
    """Rows (line id, lines ahead of it) for lines `ids`, and (line id, lines between it and its pair)
    for the pairs `me`/`pv`: one statement.

    Correlated counts over disjoint index ranges (store.queue.before_levels/after_levels), so the
    shape depends only on the rule. On PostgreSQL the ids travel as arrays: the text never changes,
    psycopg prepares it, and it is planned once however many lines a page has.
    """
    ol = order_lines
    me, pv = ol.alias("me"), ol.alias("pv")

    def count(*conds: Any) -> Any:
        return (
            select(func.count())
            .select_from(ol)
            .where(ol.c.sku == me.c.sku, ol.c.backordered_qty > literal_column("0"), *conds)
            .scalar_subquery()
        )

    def total(counts: list[Any]) -> Any:
        return functools.reduce(operator.add, counts).label("n")

    ahead_of_me = before_levels(ol, fields, [me.c[f.attr] for f in fields])
    after_pv = after_levels(ol, fields, [pv.c[f.attr] for f in fields])[::-1]  # level j: differs on field j
    firsts = select(me.c.id, total([count(level) for level in ahead_of_me]))
    between = total(
        [
            count(a, b, *level_pair_guard(me, pv, fields, i, j))
            for i, a in enumerate(ahead_of_me)
            for j, b in enumerate(after_pv)
        ]
    )
    if dialect == "postgresql":
        firsts = firsts.where(me.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
        pairs: Any = select(
            func.unnest(bindparam("me_ids", type_=ARRAY(BigInteger))).label("me_id"),
            func.unnest(bindparam("pv_ids", type_=ARRAY(BigInteger))).label("pv_id"),
        ).subquery("pairs")
    else:
        firsts = firsts.where(me.c.id.in_(bindparam("ids", expanding=True)))
        pairs = (
            text("SELECT value ->> 0 AS me_id, value ->> 1 AS pv_id FROM json_each(:pairs)")
            .columns(column("me_id", Integer), column("pv_id", Integer))
            .subquery("pairs")
        )
    follows = select(me.c.id, between).select_from(
        pairs.join(me, me.c.id == pairs.c.me_id).join(pv, pv.c.id == pairs.c.pv_id)
    )
    return union_all(firsts, follows)


# ---- purchasing ---------------------------------------------------------------------------------


def _po_dicts(conn: Connection, heads: Sequence[Any], today: date) -> list[dict[str, Any]]:
    ids = [h.id for h in heads]
    lines: dict[int, list[Any]] = defaultdict(list)
    if ids:
        for r in conn.execute(
            select(po_lines).where(po_lines.c.po_id.in_(ids)).order_by(po_lines.c.po_id, po_lines.c.line_no)
        ):
            lines[r.po_id].append(r)
    return [po_json(h, lines[h.id], today) for h in heads]


def po_json(head: Any, lines: Sequence[Any], today: date) -> dict[str, Any]:
    """A purchase order as the API shows it, from rows or a use case's copy."""
    ls = [
        {
            "line_no": r.line_no,
            "sku": r.sku,
            "qty": r.qty,
            "received_qty": r.received_qty,
            "open_qty": max(0, r.qty - r.received_qty) if r.open else 0,
            "expected_date": iso_date(r.expected_date),
        }
        for r in lines
    ]
    overdue = head.status == "open" and any(
        line["open_qty"] > 0 and line["expected_date"] < today.isoformat() for line in ls
    )
    return {
        "po_number": head.po_number,
        "supplier": head.supplier,
        "status": head.status,
        "created_at": rfc3339(head.created_at),
        "overdue": overdue,
        "lines": ls,
        "version": head.version,
    }


def po_view(conn: Connection, po_number: str, today: date) -> dict[str, Any]:
    head = conn.execute(select(purchase_orders).where(purchase_orders.c.po_number == po_number)).first()
    if head is None:
        raise NotFound(f"No purchase order '{po_number}'.")
    return _po_dicts(conn, [head], today)[0]


def list_pos(
    conn: Connection,
    *,
    status: str | None,
    sku: str | None,
    overdue: bool | None,
    today: date,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    q = select(purchase_orders)
    if status:
        q = q.where(purchase_orders.c.status == status)
    if sku:
        q = q.where(purchase_orders.c.id.in_(select(po_lines.c.po_id).where(po_lines.c.sku == sku)))
    late = select(po_lines.c.po_id).where(
        po_lines.c.open == 1, po_lines.c.qty > po_lines.c.received_qty, po_lines.c.expected_date < today
    )
    if overdue is True:
        q = q.where(purchase_orders.c.status == "open", purchase_orders.c.id.in_(late))
    elif overdue is False:
        q = q.where(~and_(purchase_orders.c.status == "open", purchase_orders.c.id.in_(late)))
    rows, nxt = page(conn, q, purchase_orders, [SortField("id")], limit, cursor)
    return {"items": _po_dicts(conn, rows, today), "next_cursor": nxt}


def shortfall(conn: Connection, today: date | None = None) -> dict[str, Any]:
    """Per SKU with waiting units: back-ordered, incoming, the uncovered rest and what to order.

    suggested_order_qty = max(0, backordered - incoming_within_lead_time), where
    incoming_within_lead_time counts the open PO units expected by today + lead_time_days (a late
    PO counted at its grace date): an order placed today arrives after the lead time, so units due
    later than that do not serve the queue sooner, and units due earlier are not bought twice.
    Without a lead time every open PO counts and the suggestion is the shortfall itself.
    """
    today = today or datetime.now(UTC).date()
    q = (
        select(products.c.sku, products.c.backordered, products.c.lead_time_days)
        .where(products.c.backordered > 0)
        .order_by(products.c.sku)
    )
    rows = conn.execute(q).all()
    open_lines: dict[str, list[tuple[date, int]]] = defaultdict(list)
    if rows:
        supply_q = (
            select(
                po_lines.c.sku, po_lines.c.expected_date, (po_lines.c.qty - po_lines.c.received_qty).label("open_qty")
            )
            .join(purchase_orders, purchase_orders.c.id == po_lines.c.po_id)
            .where(
                po_lines.c.open == 1,
                purchase_orders.c.status == "open",
                po_lines.c.qty > po_lines.c.received_qty,
                po_lines.c.sku.in_([r.sku for r in rows]),
            )
        )
        supply = conn.execute(supply_q).all()
        late = any(s.expected_date < today for s in supply)
        grace = read_config(conn, read_version(conn)).late_po_grace_days if late else 0
        for s in supply:
            open_lines[s.sku].append((late_supply_date(s.expected_date, today, grace), int(s.open_qty)))
    items = []
    for r in rows:
        incoming = sum(q for _, q in open_lines[r.sku])
        short = max(0, r.backordered - incoming)
        if r.lead_time_days is None:
            within, cover_by = incoming, None
        else:
            horizon = today + timedelta(days=r.lead_time_days)
            within, cover_by = sum(q for d, q in open_lines[r.sku] if d <= horizon), horizon.isoformat()
        items.append(
            {
                "sku": r.sku,
                "backordered": r.backordered,
                "incoming": incoming,
                "shortfall": short,
                "suggested_order_qty": max(0, r.backordered - within),
                "lead_time_days": r.lead_time_days,
                "incoming_within_lead_time": within,
                "cover_by": cover_by,
            }
        )
    return {"items": items}


# ---- fulfillment --------------------------------------------------------------------------------


def _shipment_dicts(conn: Connection, heads: Sequence[Any]) -> list[dict[str, Any]]:
    ids = [h.id for h in heads]
    lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        for r in conn.execute(
            select(shipment_lines)
            .where(shipment_lines.c.shipment_id.in_(ids))
            .order_by(shipment_lines.c.shipment_id, shipment_lines.c.line_no)
        ):
            lines[r.shipment_id].append({"line_no": r.line_no, "sku": r.sku, "qty": r.qty})
    return [shipment_json(h, lines[h.id]) for h in heads]


def shipment_json(head: Any, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """A shipment as the API shows it, from a row or a use case's copy."""
    return {
        "id": head.id,
        "channel": head.channel,
        "order_number": head.order_number,
        "status": head.status,
        "lines": lines,
        "carrier": head.carrier,
        "tracking_number": head.tracking_number,
        "created_at": rfc3339(head.created_at),
        "updated_at": rfc3339(head.updated_at),
    }


def shipment_view(conn: Connection, shipment_id: int, channel: str | None = None) -> dict[str, Any]:
    q = select(shipments).where(shipments.c.id == shipment_id)
    if channel is not None:
        q = q.where(shipments.c.channel == channel)
    head = conn.execute(q).first()
    if head is None:
        raise NotFound(f"No shipment {shipment_id}.")
    return _shipment_dicts(conn, [head])[0]


def list_shipments(
    conn: Connection,
    *,
    status: str | None,
    channel: str | None,
    order_number: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    q = select(shipments)
    if status:
        q = q.where(shipments.c.status == status)
    if channel:
        q = q.where(shipments.c.channel == channel)
    if order_number:
        q = q.where(shipments.c.order_number == order_number)
    rows, nxt = page(conn, q, shipments, [SortField("id")], limit, cursor)
    return {"items": _shipment_dicts(conn, rows), "next_cursor": nxt}
