"""Orders and the back-order queue as the API and the dashboard show them: the order, its events,
the listings, and each waiting line's place in its queue."""

from __future__ import annotations

import functools
import itertools
import json
import operator
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
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

from oms.domain.allocation import SortField, sort_fields
from oms.domain.errors import NotFound
from oms.formats import iso_date, money, rfc3339
from oms.store.paging import page
from oms.store.queue import after_levels, before_levels, level_pair_guard
from oms.store.reads import allocation_rule
from oms.store.tables import (
    customers,
    events,
    order_lines,
    orders,
)


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
