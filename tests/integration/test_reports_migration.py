"""Migration 0007 dates dispatches: a dispatched shipment by its last update, a line by its latest shipment."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import insert, inspect, select

from oms.store.migrate import downgrade, upgrade
from oms.store.tables import customers, events, order_lines, orders, products, shipment_lines, shipments

AT = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
LATER = datetime(2026, 2, 5, 9, 0, tzinfo=UTC)


def test_upgrading_dates_dispatched_shipments_and_leaves_the_others_undated(store):
    url = store.engine.url.render_as_string(hide_password=False)
    store.engine.dispose()
    downgrade(url, "0002")
    assert "dispatched_at" not in {c["name"] for c in inspect(store.engine).get_columns("shipments")}
    store.engine.dispose()
    with store.engine.begin() as conn:
        conn.execute(insert(customers).values(customer_id="C", name="C", email="c@x.test", tier="gold", updated_at=AT))
        order_id = conn.execute(
            insert(orders)
            .returning(orders.c.id)
            .values(
                order_number="SO-1",
                channel="web",
                customer_id="C",
                ship_policy="partial",
                placed_at=AT,
                priority=0,
                order_value=Decimal("1.00"),
                status="in_fulfillment",
                request_hash="x",
                created_at=AT,
            )
        ).scalar_one()
        conn.execute(insert(products).values(sku="A", name="A", unit_price=Decimal("1.00"), updated_at=AT))
        line = {"order_id": order_id, "sku": "A", "unit_price": Decimal("1.00"), "allocated_qty": 0}
        line |= {"backordered_qty": 0, "order_number": "SO-1", "channel": "web", "customer_id": "C"}
        line |= {"placed_at": AT, "priority": 0, "tier_rank": 2, "order_value": Decimal("1.00"), "qty": 3}
        shipped, waiting = conn.execute(
            insert(order_lines).returning(order_lines.c.id, sort_by_parameter_order=True),
            [line | {"line_no": 1, "shipped_qty": 3}, line | {"line_no": 2, "shipped_qty": 0}],
        ).scalars()
        for status, when in (("dispatched", AT), ("dispatched", LATER), ("pick", AT)):
            sid = conn.execute(
                insert(shipments)
                .returning(shipments.c.id)
                .values(
                    order_id=order_id, order_number="SO-1", channel="web", status=status, created_at=AT, updated_at=when
                )
            ).scalar_one()
            conn.execute(insert(shipment_lines).values(shipment_id=sid, line_id=shipped, line_no=1, sku="A", qty=1))
    store.engine.dispose()
    upgrade(url)
    rows = store.read(lambda c: c.execute(select(shipments.c.status, shipments.c.dispatched_at)).all())
    assert sorted(rows, key=str) == [("dispatched", AT), ("dispatched", LATER), ("pick", None)]
    lines = store.read(lambda c: dict(c.execute(select(order_lines.c.line_no, order_lines.c.dispatched_at)).all()))
    assert lines == {1: LATER, 2: None}  # line 2 never shipped
    assert waiting != shipped


def test_upgrading_gives_every_cancelled_event_a_reason_code_from_its_text(store):
    """Migration 0012: the events recorded before reason codes get one, read from their free text."""
    url = store.engine.url.render_as_string(hide_password=False)
    store.engine.dispose()
    downgrade(url, "0011")
    store.engine.dispose()
    old = [
        ("cancelled", {"reason": "Customer changed mind", "lines": []}),
        ("cancelled", {"reason": "aged out", "lines": []}),
        ("cancelled", {"reason": "stock count error", "lines": []}),
        ("order_placed", {"reason": "customer"}),  # not a cancellation: left as it is
    ]
    with store.engine.begin() as conn:
        conn.execute(
            insert(events), [{"at": AT, "type": t, "actor": "old", "order_number": "SO-1", "data": d} for t, d in old]
        )
    store.engine.dispose()
    upgrade(url)
    rows = store.read(lambda c: c.execute(select(events.c.type, events.c.data).order_by(events.c.id)).all())
    assert [(t, d.get("reason_code")) for t, d in rows] == [
        ("cancelled", "customer"),
        ("cancelled", "aged_out"),
        ("cancelled", "operations"),
        ("order_placed", None),
    ]
