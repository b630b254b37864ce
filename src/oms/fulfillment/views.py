"""Shipments as the API and the dashboard show them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    select,
)

from oms.domain.allocation import SortField
from oms.formats import rfc3339
from oms.store.paging import one_row, page, where_equal
from oms.store.tables import (
    shipment_lines,
    shipments,
)


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
    head = one_row(conn, shipments, f"No shipment {shipment_id}.", channel, id=shipment_id)
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
    q = where_equal(select(shipments), shipments, status=status, channel=channel, order_number=order_number)
    rows, nxt = page(conn, q, shipments, [SortField("id")], limit, cursor)
    return {"items": _shipment_dicts(conn, rows), "next_cursor": nxt}
