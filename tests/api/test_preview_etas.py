"""A receipt preview names every waiting line whose ETA would move, and the real receipt moves exactly those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

TODAY = datetime.now(UTC).date()


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def setup(api):
    """PO-1 brings 3 units on day 10; SO-1, SO-2, SO-3 wait for 2 each; lead time 30 days."""
    api.put("/products/P1", {"name": "P", "unit_price": "10.00", "lead_time_days": 30})
    api.put("/customers/C", {"name": "C", "email": "c@example.com", "tier": "standard"})
    r = api.post(
        "/purchase-orders",
        {"po_number": "PO-1", "supplier": "Acme", "lines": [{"sku": "P1", "qty": 3, "expected_date": day(10)}]},
    )
    assert r.status_code == 201
    for n in (1, 2, 3):
        body = {
            "order_number": f"SO-{n}",
            "channel": "web",
            "customer_id": "C",
            "placed_at": f"2026-01-0{n}T09:00:00Z",
            "lines": [{"sku": "P1", "qty": 2}],
        }
        assert api.post("/orders", body).status_code == 201
    assert etas(api) == {"SO-1": day(10), "SO-2": day(30), "SO-3": day(30)}


def etas(api):
    return {n: api.get(f"/orders/{n}").json()["lines"][0]["eta"] for n in ("SO-1", "SO-2", "SO-3")}


def test_an_unplanned_receipt_brings_the_next_line_onto_the_po(api):
    setup(api)
    body = {"grn_number": "G-1", "lines": [{"sku": "P1", "qty": 2}]}
    preview = api.post("/receipts/preview", body).json()
    assert preview["allocations"] == [{"order_number": "SO-1", "line_no": 1, "sku": "P1", "qty": 2}]
    assert preview["eta_changes"] == [
        {"order_number": "SO-2", "line_no": 1, "sku": "P1", "from": day(30), "to": day(10)}
    ]
    assert etas(api) == {"SO-1": day(10), "SO-2": day(30), "SO-3": day(30)}  # nothing committed
    real = api.post("/receipts", body)
    assert real.json()["allocations"] == preview["allocations"]
    assert etas(api) == {"SO-1": None, "SO-2": day(10), "SO-3": day(30)}


def test_a_receipt_against_the_po_uses_up_its_supply_and_moves_no_eta(api):
    setup(api)
    body = {"grn_number": "G-1", "po_number": "PO-1", "lines": [{"sku": "P1", "qty": 2}]}
    preview = api.post("/receipts/preview", body).json()
    assert preview["allocations"] == [{"order_number": "SO-1", "line_no": 1, "sku": "P1", "qty": 2}]
    assert preview["eta_changes"] == []  # PO-1 has 1 unit left: SO-2 still waits for the lead time
    api.post("/receipts", body)
    assert etas(api) == {"SO-1": None, "SO-2": day(30), "SO-3": day(30)}


def test_a_large_receipt_fills_some_lines_and_dates_the_rest(api):
    setup(api)
    body = {"grn_number": "G-1", "lines": [{"sku": "P1", "qty": 3}]}
    preview = api.post("/receipts/preview", body).json()
    assert preview["allocations"] == [
        {"order_number": "SO-1", "line_no": 1, "sku": "P1", "qty": 2},
        {"order_number": "SO-2", "line_no": 1, "sku": "P1", "qty": 1},
    ]
    # SO-2 (1 unit left) and SO-3 now fit in PO-1's 3 units
    assert sorted((c["order_number"], c["from"], c["to"]) for c in preview["eta_changes"]) == [
        ("SO-2", day(30), day(10)),
        ("SO-3", day(30), day(10)),
    ]
    api.post("/receipts", body)
    assert etas(api) == {"SO-1": None, "SO-2": day(10), "SO-3": day(10)}
