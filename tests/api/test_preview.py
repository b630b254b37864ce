"""What-if previews run the real use case and roll it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def _setup(api):
    api.put("/products/P1", {"name": "P", "unit_price": "10.00", "lead_time_days": 30})
    for cid, tier in [("C-STD", "standard"), ("C-PLAT", "platinum")]:
        api.put(f"/customers/{cid}", {"name": cid, "email": f"{cid.lower()}@example.com", "tier": tier})
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n, cid in enumerate(["C-STD", "C-STD", "C-PLAT"], start=1):
        r = api.post(
            "/orders",
            {
                "order_number": f"SO-{n}",
                "channel": "web",
                "customer_id": cid,
                "placed_at": (start + timedelta(hours=n)).isoformat(),
                "lines": [{"sku": "P1", "qty": 2}],
            },
        )
        assert r.status_code == 201, r.text


def test_receipt_preview_commits_nothing_and_the_real_receipt_makes_exactly_its_allocations(api):
    _setup(api)
    body = {"grn_number": "GRN-1", "lines": [{"sku": "P1", "qty": 3}]}
    stock_before = api.get("/products/P1").json()["stock"]
    preview = api.post("/receipts/preview", body)
    assert preview.status_code == 200, preview.text
    assert preview.json()["allocations"] == [
        {"order_number": "SO-1", "line_no": 1, "sku": "P1", "qty": 2},
        {"order_number": "SO-2", "line_no": 1, "sku": "P1", "qty": 1},
    ]
    assert api.get("/products/P1").json()["stock"] == stock_before
    assert api.get("/orders/SO-1").json()["lines"][0]["backordered_qty"] == 2
    real = api.post("/receipts", body)
    assert real.status_code == 201
    assert real.json()["allocations"] == preview.json()["allocations"]


def test_rule_preview_shows_who_moves_and_changes_nothing(api):
    _setup(api)
    r = api.post("/settings/allocation-rule/preview", {"keys": ["customer_tier", "placed_at"]})
    assert r.status_code == 200, r.text
    moves = {(c["order_number"], c["before"], c["after"]) for c in r.json()["changes"]}
    assert moves == {("SO-3", 3, 1), ("SO-1", 1, 2), ("SO-2", 2, 3)}
    assert api.get("/settings/allocation-rule").json() == {"keys": ["priority", "placed_at"]}
    positions = {b["order_number"]: b["queue_position"] for b in api.get("/backorders?sku=P1").json()["items"]}
    assert positions == {"SO-1": 1, "SO-2": 2, "SO-3": 3}
