"""GET /orders/{n}/lines/{line}/explain says why a line waits, in the engine's own terms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oms.domain.access import Role

TODAY = datetime.now(UTC).date()


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def setup(api):
    api.put("/products/A", {"name": "A", "unit_price": "10.00", "lead_time_days": 30})
    for cid, tier in [("ANN", "standard"), ("GIL", "gold")]:
        api.put(f"/customers/{cid}", {"name": cid, "email": f"{cid.lower()}@example.com", "tier": tier})
    api.post(
        "/purchase-orders",
        {
            "po_number": "PO-1",
            "supplier": "Acme",
            "lines": [{"sku": "A", "qty": 3, "expected_date": day(10)}],
        },
    )
    api.post(
        "/purchase-orders",
        {
            "po_number": "PO-2",
            "supplier": "Acme",
            "lines": [{"sku": "A", "qty": 2, "expected_date": day(20)}],
        },
    )
    for n, (cid, qty) in enumerate([("ANN", 2), ("GIL", 2), ("ANN", 4)], start=1):
        r = api.post(
            "/orders",
            {
                "order_number": f"SO-{n}",
                "channel": "web" if n < 3 else "shop",
                "customer_id": cid,
                "placed_at": f"2026-01-0{n}T09:00:00Z",
                "lines": [{"sku": "A", "qty": qty}],
            },
        )
        assert r.status_code == 201, r.text


def test_a_line_covered_by_the_second_po_names_it_and_everything_ahead(api):
    setup(api)
    r = api.get("/orders/SO-2/lines/1/explain")
    assert r.status_code == 200, r.text
    why = r.json()
    assert why["waiting"] is True
    assert (why["queue_position"], why["units_ahead"], why["backordered_qty"]) == (2, 2, 2)
    assert why["queue_length_units"] == 8
    assert why["eta"] == day(20)
    assert why["eta_basis"] == {"kind": "po", "po_number": "PO-2"}
    assert "PO-2" in why["reason"] and "4 units" in why["reason"]
    assert [
        (s["po_number"], s["counted_on"], s["qty"], s["running_qty"], s["covers_this_line"]) for s in why["incoming"]
    ] == [
        ("PO-1", day(10), 3, 3, False),
        ("PO-2", day(20), 2, 5, True),
    ]
    assert [(k["key"], k["direction"], k["value"]) for k in why["rule"]] == [
        ("priority", "high first", 0),
        ("placed_at", "old first", "2026-01-02T09:00:00Z"),
    ]
    assert why["tie_breakers"] == ["placed_at", "order_number", "line_no"]


def test_a_line_past_all_supply_is_dated_by_lead_time(api):
    setup(api)
    why = api.get("/orders/SO-3/lines/1/explain").json()
    assert (why["queue_position"], why["units_ahead"]) == (3, 4)
    assert why["eta"] == day(30)
    assert why["eta_basis"] == {"kind": "lead_time", "lead_time_days": 30}
    assert "fewer than the 8 units" in why["reason"]
    assert [s["covers_this_line"] for s in why["incoming"]] == [False, False]


def test_the_rule_keys_follow_the_current_rule(api):
    setup(api)
    api.put("/settings/allocation-rule", {"keys": ["customer_tier", "placed_at"]})
    why = api.get("/orders/SO-2/lines/1/explain").json()
    assert why["queue_position"] == 1 and why["units_ahead"] == 0
    assert why["eta"] == day(10)
    assert why["rule"][0] == {"key": "customer_tier", "direction": "high first", "value": "gold", "column": "tier_rank"}


def test_a_line_that_does_not_wait_says_so(api):
    setup(api)
    api.post("/receipts", {"grn_number": "G-1", "lines": [{"sku": "A", "qty": 2}]})
    why = api.get("/orders/SO-1/lines/1/explain").json()
    assert (why["waiting"], why["queue_position"], why["units_ahead"], why["eta"]) == (False, None, None, None)
    assert why["eta_basis"] == {"kind": "none"}


def test_unknown_lines_and_other_channels_are_404(api):
    setup(api)
    assert api.get("/orders/SO-1/lines/9/explain").status_code == 404
    assert api.get("/orders/NOPE/lines/1/explain").status_code == 404
    shop = api.as_role(Role.CHANNEL, channel="shop")
    assert shop.get("/orders/SO-1/lines/1/explain").status_code == 404
    assert shop.get("/orders/SO-3/lines/1/explain").status_code == 200
