"""The steps every stock-changing use case ends with: allocate, release, settle statuses, re-date.

Each works on a set of SKUs or orders with a few set-based statements; none loops queries per line.
Callers hold the SKUs' row locks (common.lock_products) before calling any of them.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any, cast

from sqlalchemy import JSON, Integer, String, bindparam, column, func, insert, select, text, true, update
from sqlalchemy import cast as cast_

from oms.domain.allocation import Allocation, QueueLine, RuleKey, SortField, plan_allocation, sort_fields
from oms.domain.eta import Supply, walk_etas
from oms.domain.fulfillment import LineQty, ShipmentStatus, ShipPolicy, order_status, units_to_release
from oms.store.db import insert_rows, update_rows
from oms.store.queue import order_by
from oms.store.tables import (
    allocations,
    order_lines,
    orders,
    po_lines,
    products,
    purchase_orders,
    settings,
    shipment_lines,
    shipments,
)

from .common import Ctx, policy_from_json

QUEUE_COLUMNS = (
    order_lines.c.id,
    order_lines.c.order_id,
    order_lines.c.order_number,
    order_lines.c.line_no,
    order_lines.c.sku,
    order_lines.c.backordered_qty,
    order_lines.c.priority,
    order_lines.c.tier_rank,
    order_lines.c.order_value,
    order_lines.c.placed_at,
    order_lines.c.promised_date,
)


def queue_line(row: Any) -> QueueLine:
    return QueueLine(
        line_id=row.id,
        order_number=row.order_number,
        line_no=row.line_no,
        sku=row.sku,
        backordered_qty=row.backordered_qty,
        priority=row.priority,
        tier_rank=row.tier_rank,
        order_value=row.order_value,
        placed_at=row.placed_at,
        promised_date=row.promised_date,
    )


def allocate_backorders(
    ctx: Ctx, locked: Mapping[str, Any], source: str, ref: str | None = None
) -> tuple[list[Allocation], dict[int, int]]:
    """Give each locked SKU's available units to its queue in rule order (rule 4).

    Each queue is read in index order only as far as the units reach, and the plan is booked: the
    allocation rows and the products' counters. The lines' own counters are written by
    `settle_orders`, which the caller hands the plan to, so that each line is updated once with its
    allocation, its release and its cleared ETA. Returns the plan and each planned line's order id.
    """
    units = {
        sku: row.on_hand - row.allocated
        for sku, row in locked.items()
        if row.on_hand - row.allocated > 0 and row.backordered > 0
    }
    if not units:
        return [], {}
    fields = sort_fields(ctx.rule())
    plan: list[Allocation] = []
    order_of: dict[int, int] = {}
    per_sku: dict[str, int] = {}
    for sku, rows in _queue_heads(ctx, units, fields):
        seen: list[Any] = []

        def walk(rows: Iterable[Any] = rows, seen: list[Any] = seen) -> Iterator[QueueLine]:
            for r in rows:
                seen.append(r)
                yield queue_line(r)

        sku_plan = plan_allocation(units[sku], walk())
        if sku_plan:
            per_sku[sku] = sum(a.qty for a in sku_plan)
            plan.extend(sku_plan)
            order_of.update((r.id, r.order_id) for r in seen[: len(sku_plan)])
    if not plan:
        return plan, order_of
    update_rows(
        ctx.conn,
        "products",
        ("sku", "b_sku"),
        {"allocated": "allocated + {b_qty}", "backordered": "backordered - {b_qty}"},
        {"b_sku": "varchar", "b_qty": "integer"},
        [{"b_sku": sku, "b_qty": n} for sku, n in sorted(per_sku.items())],
    )
    insert_rows(
        ctx.conn,
        allocations,
        [
            {"line_id": a.line.line_id, "sku": a.line.sku, "qty": a.qty, "source": source, "ref": ref, "at": ctx.now}
            for a in plan
        ],
    )
    by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in plan:
        by_order[a.line.order_number].append({"line_no": a.line.line_no, "sku": a.line.sku, "qty": a.qty})
    for order_number, lines in by_order.items():
        ctx.event("allocated", {"source": source, "ref": ref, "lines": lines}, order_number=order_number)
    return plan, order_of


def _queue_heads(
    ctx: Ctx, units: Mapping[str, int], fields: Sequence[SortField]
) -> Iterator[tuple[str, Iterable[Any]]]:
    """Each SKU's queue head in rule order, SKUs sorted: the lines its units reach.

    PostgreSQL: one statement for every SKU (a LATERAL index walk per SKU bounded by its units, and a
    running sum that keeps only the lines the units reach). SQLite: one indexed read per SKU, run in
    process and stepped only as far as the walk goes.
    """
    skus = sorted(units)
    if ctx.dialect == "postgresql":
        wanted = json.dumps([{"sku": s, "units": units[s]} for s in skus])
        b = (
            func.json_to_recordset(cast_(bindparam("b_units", wanted), JSON))
            .table_valued(column("sku", String), column("units", Integer))
            .render_derived(name="b", with_types=True)
        )
        head = (
            select(*QUEUE_COLUMNS)
            .where(order_lines.c.sku == b.c.sku, order_lines.c.backordered_qty > 0)
            .order_by(*order_by(order_lines, fields))
            .limit(b.c.units)
            .lateral("q")
        )
        ahead = func.sum(head.c.backordered_qty).over(
            partition_by=head.c.sku, order_by=order_by(cast(Any, head), fields)
        )
        walked = (
            select(head, (ahead - head.c.backordered_qty).label("ahead"), b.c.units)
            .select_from(b.join(head, true()))
            .subquery("w")
        )
        q = (
            select(*(walked.c[c.name] for c in QUEUE_COLUMNS))
            .where(walked.c.ahead < walked.c.units)
            .order_by(walked.c.sku, *order_by(cast(Any, walked), fields))
        )
        grouped: dict[str, list[Any]] = defaultdict(list)
        for r in ctx.conn.execute(q):
            grouped[r.sku].append(r)
        for sku in skus:
            yield sku, grouped.get(sku, [])
        return
    one = (
        select(*QUEUE_COLUMNS)
        .where(order_lines.c.sku == bindparam("b_sku"), order_lines.c.backordered_qty > 0)
        .order_by(*order_by(order_lines, fields))
        .limit(bindparam("b_limit"))
    )
    for sku in skus:
        yield sku, ctx.conn.execute(one, {"b_sku": sku, "b_limit": units[sku]})


def held_skus(ctx: Ctx, skus: Iterable[str]) -> frozenset[str]:
    """SKUs whose policy's release date has not come yet: nothing of them goes to picking."""
    wanted = sorted(set(skus))
    if not wanted:
        return frozenset()
    known: dict[str, Any] = ctx._memo.get("policies", {})  # the SKUs this use case locked
    pairs = [(sku, known[sku]) for sku in wanted if sku in known]
    for part in chunks([sku for sku in wanted if sku not in known]):
        pairs += ctx.conn.execute(select(products.c.sku, products.c.backorder_policy).where(products.c.sku.in_(part)))
    held = set()
    for sku, pol in pairs:
        policy = policy_from_json(pol) if pol is not None else ctx.fallback_policy()
        if policy is not None and policy.holds_release(ctx.today):
            held.add(sku)
    return frozenset(held)


# Longest list bound into one IN (...): SQLite allows 32,766 parameters per statement.
IN_CHUNK = 5000


def chunks(items: list[Any], size: int = IN_CHUNK) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


SETTLE_LINE_COLUMNS = (
    order_lines.c.id,
    order_lines.c.order_id,
    order_lines.c.line_no,
    order_lines.c.sku,
    order_lines.c.qty,
    order_lines.c.allocated_qty,
    order_lines.c.backordered_qty,
    order_lines.c.shipped_qty,
    order_lines.c.cancelled_qty,
    order_lines.c.released_qty,
)


def settle_orders(ctx: Ctx, order_ids: Iterable[int], allocated: Mapping[int, int] | None = None) -> None:
    """Release what each order may ship (rule 6) and bring its status up to date.

    `allocated` (line id -> units) is a plan from `allocate_backorders` not yet written to the
    lines: it is applied here, in the one UPDATE each line gets with its release and, once the line
    no longer waits, its cleared ETA. Every planned line's order must be among `order_ids`.
    """
    ids = sorted(set(order_ids))
    got = allocated or {}
    done = 0
    for part in chunks(ids):
        done += _settle(ctx, part, got)
    if done != len(got):
        raise AssertionError("an allocated line's order was not settled")


def _settle(ctx: Ctx, ids: list[int], got: Mapping[int, int]) -> int:
    heads = ctx.conn.execute(
        select(orders.c.id, orders.c.order_number, orders.c.channel, orders.c.ship_policy, orders.c.status).where(
            orders.c.id.in_(ids)
        )
    )
    head = {r.id: r for r in heads}
    lines: dict[int, list[tuple[int, LineQty, int]]] = defaultdict(list)  # order id -> (line id, qty, allocated now)
    for r in ctx.conn.execute(
        select(*SETTLE_LINE_COLUMNS)
        .where(order_lines.c.order_id.in_(ids))
        .order_by(order_lines.c.order_id, order_lines.c.line_no)
    ):
        a = got.get(r.id, 0)
        qty = LineQty(
            line_no=r.line_no,
            sku=r.sku,
            qty=r.qty,
            allocated_qty=r.allocated_qty + a,
            backordered_qty=r.backordered_qty - a,
            shipped_qty=r.shipped_qty,
            cancelled_qty=r.cancelled_qty,
            released_qty=r.released_qty,
        )
        lines[r.order_id].append((r.id, qty, a))
    held = held_skus(ctx, {q.sku for rs in lines.values() for _, q, _ in rs if q.allocated_qty > q.released_qty})

    releases: list[tuple[Any, dict[int, int]]] = []
    status_changes: list[dict[str, Any]] = []
    for oid in ids:
        order, rows = head[oid], lines[oid]
        qtys = [q for _, q, _ in rows]
        units = units_to_release(ShipPolicy(order.ship_policy), qtys, held)
        if units:
            releases.append((order, units))
        status = order_status(qtys)
        if status != order.status:
            status_changes.append({"b_id": oid, "b_status": status.value})
            ctx.event("status_changed", {"from": order.status, "to": status.value}, order_number=order.order_number)
    update_rows(
        ctx.conn, "orders", ("id", "b_id"), {"status": "{b_status}"}, {"b_id": "bigint", "b_status": "varchar"},
        status_changes,
    )  # fmt: skip
    released = _release(
        ctx, releases, {oid: {q.line_no: (line_id, q.sku) for line_id, q, _ in lines[oid]} for oid in ids}
    )
    writes = []
    planned = 0
    for oid in ids:
        for line_id, q, a in lines[oid]:
            planned += a > 0
            rel = released.get(line_id, 0)
            if a or rel:
                clear = int(a > 0 and q.backordered_qty == 0)  # filled now: it has no ETA of its own
                writes.append({"b_id": line_id, "b_alloc": a, "b_rel": rel, "b_clear": clear})
    update_rows(
        ctx.conn,
        "order_lines",
        ("id", "b_id"),
        {
            "allocated_qty": "allocated_qty + {b_alloc}",
            "backordered_qty": "backordered_qty - {b_alloc}",
            "released_qty": "released_qty + {b_rel}",
            "eta": "CASE WHEN {b_clear} = 1 THEN NULL ELSE eta END",
            "eta_basis": "CASE WHEN {b_clear} = 1 THEN NULL ELSE eta_basis END",
        },
        {"b_id": "bigint", "b_alloc": "integer", "b_rel": "integer", "b_clear": "integer"},
        writes,
    )
    return planned


def line_qty(r: Any) -> LineQty:
    return LineQty(
        line_no=r.line_no,
        sku=r.sku,
        qty=r.qty,
        allocated_qty=r.allocated_qty,
        backordered_qty=r.backordered_qty,
        shipped_qty=r.shipped_qty,
        cancelled_qty=r.cancelled_qty,
        released_qty=r.released_qty,
    )


def _release(
    ctx: Ctx, releases: list[tuple[Any, dict[int, int]]], line_ids: dict[int, dict[int, tuple[int, str]]]
) -> dict[int, int]:
    """Create a shipment in pick for each (order, units by line number); returns units released by line id."""
    if not releases:
        return {}
    if ctx.dialect == "postgresql":
        # One INSERT ... SELECT for every shipment; ids are matched back by order (one shipment each).
        created = ctx.conn.execute(
            text(
                "INSERT INTO shipments (order_id, order_number, channel, status, created_at, updated_at) "
                "SELECT v.o, v.n, v.c, 'pick', :now, :now FROM json_to_recordset(CAST(:rows AS json)) "
                "AS v(i integer, o bigint, n varchar, c varchar) ORDER BY v.i RETURNING id, order_id"
            ),
            {
                "rows": json.dumps(
                    [
                        {"i": i, "o": order.id, "n": order.order_number, "c": order.channel}
                        for i, (order, _) in enumerate(releases)
                    ]
                ),
                "now": ctx.now,
            },
        )
        shipment_of = {order_id: shipment_id for shipment_id, order_id in created}
        ids: Sequence[int] = [shipment_of[order.id] for order, _ in releases]
    else:
        ids = (
            ctx.conn.execute(
                insert(shipments).returning(shipments.c.id, sort_by_parameter_order=True),
                [
                    {
                        "order_id": order.id,
                        "order_number": order.order_number,
                        "channel": order.channel,
                        "status": ShipmentStatus.PICK.value,
                        "created_at": ctx.now,
                        "updated_at": ctx.now,
                    }
                    for order, _ in releases
                ],
            )
            .scalars()
            .all()
        )
    ship_rows: list[dict[str, Any]] = []
    released: dict[int, int] = {}
    for shipment_id, (order, units) in zip(ids, releases, strict=True):
        for line_no, qty in sorted(units.items()):
            line_id, sku = line_ids[order.id][line_no]
            ship_rows.append(
                {"shipment_id": shipment_id, "line_id": line_id, "line_no": line_no, "sku": sku, "qty": qty}
            )
            released[line_id] = qty
        ctx.event(
            "shipment_created",
            {
                "shipment_id": shipment_id,
                "status": "pick",
                "lines": [{"line_no": n, "qty": q} for n, q in sorted(units.items())],
            },
            order_number=order.order_number,
        )
    insert_rows(ctx.conn, shipment_lines, ship_rows)
    return released


def open_supplies(ctx: Ctx, skus: Iterable[str]) -> dict[str, list[Supply]]:
    wanted = sorted(set(skus))
    out: dict[str, list[Supply]] = defaultdict(list)
    if not wanted:
        return out
    q = (
        select(
            po_lines.c.sku,
            po_lines.c.expected_date,
            po_lines.c.qty,
            po_lines.c.received_qty,
            purchase_orders.c.po_number,
        )
        .join(purchase_orders, purchase_orders.c.id == po_lines.c.po_id)
        .where(po_lines.c.sku.in_(wanted), po_lines.c.open == 1, purchase_orders.c.status == "open")
    )
    grace: int | None = None
    for r in ctx.conn.execute(q):
        if r.qty > r.received_qty:
            expected = r.expected_date
            if expected < ctx.today:  # late: read the grace setting only when some PO is late
                grace = late_po_grace_days(ctx.conn) if grace is None else grace
                expected = late_supply_date(expected, ctx.today, grace)
            out[r.sku].append(Supply(expected, r.qty - r.received_qty, r.po_number))
    return out


LATE_PO_GRACE_KEY = "late_po_grace_days"


def late_po_grace_days(conn: Any) -> int:
    """Days a late PO is given at a time: env OMS_LATE_PO_GRACE_DAYS, else the setting, else 0."""
    env = os.environ.get("OMS_LATE_PO_GRACE_DAYS")
    if env is not None and env.strip().isdigit():
        return int(env)
    found = conn.execute(select(settings.c.value).where(settings.c.key == LATE_PO_GRACE_KEY)).scalar()
    return int(found["days"]) if isinstance(found, dict) and isinstance(found.get("days"), int) else 0


def late_supply_date(expected: date, today: date, grace_days: int) -> date:
    """The date a late PO line's open units are now counted on.

    A PO whose expected date has passed is given `grace_days` more at a time: expected + k x grace,
    the first such date after today. So its ETAs move later once per grace period (one notice per
    period, not one a day), never into the past; with no grace the date is today.
    """
    if expected >= today:
        return expected
    if grace_days <= 0:
        return today
    periods = (today - expected).days // grace_days + 1
    return expected + timedelta(days=periods * grace_days)


def recompute_etas(ctx: Ctx, skus: Iterable[str]) -> None:
    """Re-date every waiting line of these SKUs (rule 9); write only the lines whose ETA moved."""
    wanted = sorted(set(skus))
    if not wanted:
        return
    fields = sort_fields(ctx.rule())
    supplies = open_supplies(ctx, wanted)
    lead_q = select(products.c.sku, products.c.lead_time_days).where(products.c.sku.in_(wanted))
    lead = {r.sku: r.lead_time_days for r in ctx.conn.execute(lead_q)}
    # The queue in index order, only the columns the walk and the comparison need; one statement for
    # every SKU, built once.
    q = (
        select(
            order_lines.c.id,
            order_lines.c.order_number,
            order_lines.c.line_no,
            order_lines.c.backordered_qty,
            order_lines.c.eta,
            order_lines.c.eta_basis,
            order_lines.c.promised_date,
        )
        .where(order_lines.c.sku == bindparam("b_sku"), order_lines.c.backordered_qty > 0)
        .order_by(*order_by(order_lines, fields))
    )
    changes: list[dict[str, Any]] = []
    for sku in wanted:
        rows = ctx.conn.execute(q, {"b_sku": sku}).all()
        etas = walk_etas([r[3] for r in rows], supplies.get(sku, []), ctx.today, lead.get(sku))
        for (line_id, order_number, line_no, _, eta, basis, promised), e in zip(rows, etas, strict=True):
            if eta == e.eta and basis == e.basis and (promised is not None or e.eta is None):
                continue
            changes.append(
                {
                    "b_id": line_id,
                    "b_eta": e.eta,
                    "b_basis": e.basis,
                    "b_promised": promised if promised is not None else e.eta,
                }
            )
            if eta != e.eta:
                ctx.event(
                    "eta_changed",
                    {
                        "line_no": line_no,
                        "sku": sku,
                        "from": iso(eta),
                        "to": iso(e.eta),
                        "basis": e.basis,
                        "later": bool(eta and (e.eta is None or e.eta > eta)),
                    },
                    order_number=order_number,
                )
    update_rows(
        ctx.conn,
        "order_lines",
        ("id", "b_id"),
        {"eta": "{b_eta}", "eta_basis": "{b_basis}", "promised_date": "{b_promised}"},
        {"b_id": "bigint", "b_eta": "date", "b_basis": "varchar", "b_promised": "date"},
        changes,
    )


def date_new_lines(ctx: Ctx, ahead: Mapping[str, int], new_lines: list[tuple[int, str, int]]) -> None:
    """Date lines just added to their queues.

    The common case is a new line at the tail of its queue (FIFO): then nothing else moves and its
    ETA follows from the units already waiting. Otherwise (a boosted or higher-tier order jumped in)
    the SKU's whole queue is re-dated.
    """
    if not new_lines:
        return
    rule = ctx.rule()
    if RuleKey.PROMISED_DATE in rule:  # a new line's first promise places it: date the queue whole
        recompute_etas(ctx, {sku for _, sku, _ in new_lines})
        return
    fields = sort_fields(rule)
    by_sku: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for line_id, sku, qty in new_lines:
        by_sku[sku].append((line_id, qty))
    # A new line is at the tail when it is its queue's last line: one backward index probe per SKU
    # (a "does anyone come after me" predicate cannot use the index and scans the whole queue).
    last_q = (
        select(order_lines.c.id)
        .where(order_lines.c.sku == bindparam("b_sku"), order_lines.c.backordered_qty > 0)
        .order_by(*order_by(order_lines, fields, reverse=True))
        .limit(1)
    )
    jumped = {sku for sku, ids in by_sku.items() if ctx.conn.scalar(last_q, {"b_sku": sku}) != ids[-1][0]}
    recompute_etas(ctx, jumped)
    at_tail = sorted(set(by_sku) - jumped)
    if not at_tail:
        return
    supplies = open_supplies(ctx, at_tail)
    lead_q = select(products.c.sku, products.c.lead_time_days).where(products.c.sku.in_(at_tail))
    lead = {r.sku: r.lead_time_days for r in ctx.conn.execute(lead_q)}
    changes = []
    for sku in at_tail:
        lines = by_sku[sku]
        etas = walk_etas([ahead[sku]] + [q for _, q in lines], supplies.get(sku, []), ctx.today, lead.get(sku))[1:]
        changes += [
            {"b_id": line_id, "b_eta": e.eta, "b_basis": e.basis, "b_promised": e.eta}
            for (line_id, _), e in zip(lines, etas, strict=True)
        ]
    ctx.conn.execute(
        update(order_lines)
        .where(order_lines.c.id == bindparam("b_id"))
        .values(eta=bindparam("b_eta"), eta_basis=bindparam("b_basis"), promised_date=bindparam("b_promised")),
        changes,
    )


def iso(d: Any) -> str | None:
    return d.isoformat() if d is not None else None


def after_stock_change(
    ctx: Ctx,
    locked: Mapping[str, Any],
    source: str,
    ref: str | None = None,
    touched_orders: Iterable[int] = (),
    redate: Iterable[str] = (),
) -> list[Allocation]:
    """The common tail of a stock-changing use case: allocate, release, settle, re-date, log."""
    fresh = {
        r.sku: r
        for r in ctx.conn.execute(
            select(products.c.sku, products.c.on_hand, products.c.allocated, products.c.backordered).where(
                products.c.sku.in_(sorted(locked))
            )
        )
    }
    plan, order_of = allocate_backorders(ctx, fresh, source, ref)
    settle_orders(ctx, set(touched_orders) | set(order_of.values()), {a.line.line_id: a.qty for a in plan})
    recompute_etas(ctx, {a.line.sku for a in plan} | set(redate))
    ctx.flush_events()
    return plan
