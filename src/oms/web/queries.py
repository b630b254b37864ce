"""Read-side figures the dashboard shows that the API's views do not already give."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from sqlalchemy import BigInteger, Connection, Numeric, case, cast, func, literal_column, select, type_coerce

from oms.store.tables import order_lines, po_lines, products, purchase_orders, shipments
from oms.store.types import Money

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# (label, youngest age in days, oldest age in days or None)
AGE_BUCKETS: list[tuple[str, int, int | None]] = [
    ("0-6 days", 0, 6),
    ("7-13 days", 7, 13),
    ("14-29 days", 14, 29),
    ("30+ days", 30, None),
]
SHIPMENT_COLUMNS = [
    ("pick", "Pick"),
    ("pack", "Pack"),
    ("awaiting_shipment", "Awaiting shipment"),
    ("dispatched", "Dispatched"),
]


def overview(conn: Connection, now: datetime) -> dict[str, Any]:
    """Pending back orders by age, overdue purchase orders and shipments per state.

    Cheap at a million waiting lines: units and value come from the products' counters (kept in the
    same transactions as the lines), and each age bucket is a range count on the pending-age index.
    """
    ol = order_lines
    pending = ol.c.backordered_qty > literal_column("0")  # a literal, so SQLite uses the partial indexes

    def newer_than(days: int) -> Any:
        return select(func.count()).where(pending, ol.c.placed_at > now - timedelta(days=days)).scalar_subquery()

    edges = [hi + 1 for _, _, hi in AGE_BUCKETS if hi is not None]  # 7, 14, 30 days
    counts = conn.execute(
        # the placed_at bound is always true; it lets SQLite count on the narrow pending-age index
        select(
            select(func.count()).where(pending, ol.c.placed_at >= EPOCH).scalar_subquery(),
            *[newer_than(d) for d in edges],
        )
    ).one()
    total, cumulative = int(counts[0]), [int(n) for n in counts[1:]] + [int(counts[0])]
    lines = [cumulative[0]] + [b - a for a, b in pairwise(cumulative)]
    buckets = [
        {"label": label, "min_age_days": lo, "max_age_days": hi, "lines": n}
        for (label, lo, hi), n in zip(AGE_BUCKETS, lines, strict=True)
    ]
    stock = conn.execute(
        select(
            func.coalesce(func.sum(products.c.backordered), 0),
            # in NUMERIC: units times cents can pass what a BIGINT holds (a dear SKU with a long queue)
            type_coerce(
                func.coalesce(func.sum(cast(products.c.backordered, Numeric) * _cents(products.c.unit_price)), 0), Money
            ),
        ).where(products.c.backordered > 0)
    ).one()
    today = now.date()
    late = select(po_lines.c.po_id).where(
        po_lines.c.open == 1, po_lines.c.qty > po_lines.c.received_qty, po_lines.c.expected_date < today
    )
    open_pos = conn.execute(
        select(
            func.count().label("open"),
            func.sum(case((purchase_orders.c.id.in_(late), 1), else_=0)).label("overdue"),
        ).where(purchase_orders.c.status == "open")
    ).one()
    states: dict[str, int] = {
        status: int(n)
        for status, n in conn.execute(select(shipments.c.status, func.count()).group_by(shipments.c.status))
    }
    return {
        "pending_lines": total,
        "pending_units": int(stock[0]),
        "pending_value": Decimal(stock[1]).quantize(Decimal("0.01")),
        "buckets": buckets,
        "open_pos": int(open_pos.open or 0),
        "overdue_pos": int(open_pos.overdue or 0),
        "shipments": [{"status": s, "label": label, "count": int(states.get(s, 0))} for s, label in SHIPMENT_COLUMNS],
    }


def _cents(col: Any) -> Any:
    return type_coerce(col, BigInteger)


def next_supply(conn: Connection, skus: list[str]) -> dict[str, dict[str, Any]]:
    """Per SKU: the earliest open purchase-order line still to come (its PO, date and open units)."""
    if not skus:
        return {}
    q = (
        select(
            purchase_orders.c.po_number,
            po_lines.c.sku,
            po_lines.c.expected_date,
            po_lines.c.qty,
            po_lines.c.received_qty,
        )
        .join(purchase_orders, purchase_orders.c.id == po_lines.c.po_id)
        .where(po_lines.c.sku.in_(sorted(set(skus))), po_lines.c.open == 1, purchase_orders.c.status == "open")
        .order_by(po_lines.c.sku, po_lines.c.expected_date, purchase_orders.c.po_number)
    )
    out: dict[str, dict[str, Any]] = {}
    for r in conn.execute(q):
        out.setdefault(
            r.sku, {"po_number": r.po_number, "expected_date": r.expected_date, "open_qty": r.qty - r.received_qty}
        )
    return out


def is_overdue(expected: date | None, today: date) -> bool:
    return expected is not None and expected < today
