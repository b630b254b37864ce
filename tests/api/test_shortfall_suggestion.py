"""The shortfall report suggests what to order so the queue is covered within the supplier lead time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

TODAY = datetime.now(UTC).date()


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def product(api, sku, lead):
    body = {"name": sku, "unit_price": "10.00"} | ({"lead_time_days": lead} if lead is not None else {})
    assert api.put(f"/products/{sku}", body).status_code == 201


def po(api, number, sku, qty, expected):
    body = {"po_number": number, "supplier": "Acme", "lines": [{"sku": sku, "qty": qty, "expected_date": expected}]}
    assert api.post("/purchase-orders", body).status_code == 201


def order(api, number, sku, qty):
    body = {"order_number": number, "channel": "web", "customer_id": "C", "lines": [{"sku": sku, "qty": qty}]}
    assert api.post("/orders", body).status_code == 201


def test_suggested_quantity_counts_only_supply_arriving_within_the_lead_time(api):
    api.put("/customers/C", {"name": "C", "email": "c@example.com", "tier": "standard"})
    product(api, "A", 14)
    product(api, "B", None)
    product(api, "C", 10)
    product(api, "D", 10)
    po(api, "PO-1", "A", 3, day(5))  # in time
    po(api, "PO-2", "A", 4, day(30))  # later than an order placed today would arrive
    po(api, "PO-3", "B", 2, day(40))
    po(api, "PO-4", "C", 4, day(-2))  # late: counted today (no grace configured)
    order(api, "SO-1", "A", 10)
    order(api, "SO-2", "B", 5)
    order(api, "SO-3", "C", 4)
    items = {i["sku"]: i for i in api.get("/reports/shortfall").json()["items"]}
    assert set(items) == {"A", "B", "C"}  # D has nothing waiting
    assert items["A"] == {
        "sku": "A",
        "backordered": 10,
        "incoming": 7,
        "shortfall": 3,
        "suggested_order_qty": 7,
        "lead_time_days": 14,
        "incoming_within_lead_time": 3,
        "cover_by": day(14),
    }
    assert (items["B"]["shortfall"], items["B"]["suggested_order_qty"], items["B"]["cover_by"]) == (3, 3, None)
    assert (items["C"]["shortfall"], items["C"]["suggested_order_qty"], items["C"]["incoming_within_lead_time"]) == (
        0,
        0,
        4,
    )


def test_overdue_purchase_orders_are_listed_for_purchasing(api):
    product(api, "A", 14)
    po(api, "PO-LATE", "A", 3, day(-1))
    po(api, "PO-SOON", "A", 3, day(1))
    late = api.get("/purchase-orders", params={"overdue": "true"}).json()["items"]
    assert [p["po_number"] for p in late] == ["PO-LATE"]
