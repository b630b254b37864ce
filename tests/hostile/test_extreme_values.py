"""Extreme numbers, amounts and times at every edge: a 4xx that says what is accepted, never a 5xx, on both stores.

Times and dates lie between 1970 and 2999 (oms.domain.bounds), checked where they are parsed: the
request schemas (so the dashboard's forms too), the report filters (API, CSV, dashboard) and the
listing cursors. An order's value is bounded; a cursor's numbers must be finite and fit the store;
typed whole numbers are ASCII digits. A refused request stores nothing.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote

from sqlalchemy import update

from oms.notifications import links
from oms.store.tables import products

from .common import PROBLEM, snapshot
from .test_injection import day, ok, prepare
from .test_malformed import signed_in  # noqa: F401 - a fixture

EXTREME_TIMES = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59Z",
    "1969-12-31T23:59:59Z",
    "3000-01-01T00:00:00Z",
]
EXTREME_DATES = ["0001-01-01", "9999-12-31", "1969-12-31", "3000-01-01"]


def refused(r: Any, field: str | None = None) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == PROBLEM, r.headers["content-type"]
    body: dict[str, Any] = r.json()
    if field is not None:
        assert field in {e.get("field") for e in body.get("errors", [])}, body
    return body


def cursor(fingerprint: str, values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps([fingerprint, values]).encode()).decode().rstrip("=")


def test_an_order_worth_more_than_the_bound_is_refused_naming_it_and_stores_nothing(api):
    ok(api.put("/products/BIG", {"name": "Big", "unit_price": "9999999999.99", "backorder_policy": {"mode": "always"}}))
    ok(api.put("/customers/C-1", {"name": "Carol", "email": "carol@example.com"}))
    before = snapshot(api.store)
    lines = [{"sku": "BIG", "qty": 1_000_000}] * 10
    for body_lines in (lines, lines[:1], [{"sku": "BIG", "qty": 2}]):
        order = {"order_number": "SO-BIG", "channel": "web", "customer_id": "C-1", "lines": body_lines}
        body = refused(api.post("/orders", order), "lines")
        assert "9999999999.99" in body["detail"]
    assert snapshot(api.store) == before
    one = {"order_number": "SO-ONE", "channel": "web", "customer_id": "C-1", "lines": [{"sku": "BIG", "qty": 1}]}
    assert ok(api.post("/orders", one), 201)["order_value"] == "9999999999.99"


def test_times_and_dates_near_either_end_of_the_calendar_are_refused_naming_the_field(api):
    prepare(api)
    before = snapshot(api.store)
    for t in EXTREME_TIMES:
        order = {
            "order_number": "SO-T",
            "channel": "web",
            "customer_id": "C-1",
            "placed_at": t,
            "lines": [{"sku": "P-1", "qty": 1}],
        }
        refused(api.post("/orders", order), "placed_at")
        receipt = {"grn_number": "G-T", "received_at": t, "lines": [{"sku": "P-1", "qty": 1}]}
        refused(api.post("/receipts", receipt), "received_at")
        refused(api.post("/receipts/preview", receipt), "received_at")
        policy = {"mode": "preorder", "preorder_ends_at": t}
        refused(
            api.put("/products/P-T", {"name": "T", "unit_price": "1.00", "backorder_policy": policy}),
            "backorder_policy.preorder_ends_at",
        )
        refused(api.put("/settings/default-backorder-policy", policy), "preorder_ends_at")
    for d in EXTREME_DATES:
        po = {"po_number": "PO-T", "supplier": "s", "lines": [{"sku": "P-1", "qty": 1, "expected_date": d}]}
        refused(api.post("/purchase-orders", po), "lines.0.expected_date")
        refused(
            api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "P-1", "expected_date": d}]}), "lines.0.expected_date"
        )
        policy = {"mode": "preorder", "release_date": d}
        refused(
            api.put("/products/P-T", {"name": "T", "unit_price": "1.00", "backorder_policy": policy}),
            "backorder_policy.release_date",
        )
    assert snapshot(api.store) == before


def test_report_periods_beyond_the_calendar_are_a_4xx_in_the_api_its_csv_and_the_dashboard(api, signed_in):  # noqa: F811
    prepare(api)
    bounds = ["to=9999-12-31", f"from={quote('0001-01-01T00:00:00+01:00')}", f"to={quote('9999-12-31T23:59:59-01:00')}"]
    for q in bounds:
        for name in (
            "summary",
            "backorders",
            "lead-times",
            "cancellations",
            "fill-rate",
            "promise-accuracy",
            "supplier-on-time",
        ):
            field = q.split("=")[0]
            refused(api.get(f"/reports/{name}?{q}"), field)
            refused(api.get(f"/reports/{name}?{q}&format=csv"), field)
            r = signed_in.get(f"/reports/{name}.csv?{q}")
            assert r.status_code == 422, (name, q, r.status_code)
        r = signed_in.get(f"/reports?{q}")
        assert r.status_code == 422, (q, r.status_code)
        assert "between 1970" in r.text
    assert ok(api.get("/reports/summary?from=1970-01-01&to=2999-12-31"))


def test_crafted_cursors_are_refused_as_cursors_on_every_listing(api):
    prepare(api)
    ok(api.put("/settings/allocation-rule", {"keys": ["order_value", "placed_at"]}))
    queue = "order_value-,placed_at+,order_number+,line_no+"
    t = {"t": "2020-01-01T00:00:00+00:00"}
    crafted = {
        "/backorders": [
            cursor(queue, [{"m": "NaN"}, t, "SO-1", 1]),
            cursor(queue, [{"m": "Infinity"}, t, "SO-1", 1]),
            cursor(queue, [{"m": "-Infinity"}, t, "SO-1", 1]),
            cursor(queue, [{"m": "1E+30"}, t, "SO-1", 1]),
            cursor(queue, [{"m": "not a number"}, t, "SO-1", 1]),
            cursor(queue, [{"m": "1.00"}, {"t": "0001-01-01T00:00:00+01:00"}, "SO-1", 1]),
            cursor(queue, [{"m": "1.00"}, {"t": "9999-12-31T23:59:59-01:00"}, "SO-1", 1]),
            cursor(queue, [{"m": "1.00"}, t, "SO\u00001", 1]),
            cursor(queue, [{"m": "1.00"}, t, "SO-1", 10**30]),
        ],
        "/orders": [
            cursor("placed_at+,id+", [{"t": "9999-12-31T23:59:59-01:00"}, 1]),
            cursor("placed_at+,id+", [t, 10**30]),
            cursor("placed_at+,id+", [t, -(10**30)]),
        ],
        "/products": [cursor("sku+", ["P\u00001"])],
        "/purchase-orders": [cursor("id+", [10**30])],
        "/shipments": [cursor("id+", [10**30])],
        "/notifications": [
            cursor("created_at+,id+", [{"t": "9999-12-31T23:59:59-01:00"}, 1]),
            cursor("created_at+,id+", [t, 10**30]),
        ],
    }
    before = snapshot(api.store)
    for path, cursors in crafted.items():
        for c in cursors:
            refused(api.get(path, params={"cursor": c}), "cursor")
    assert snapshot(api.store) == before


def test_odd_digits_and_huge_numbers_in_dashboard_query_strings_and_forms_are_a_4xx(api, signed_in):  # noqa: F811
    ids = prepare(api, dispatchable=1)
    web = signed_in
    huge = "9" * 30
    t = {"t": "2020-01-01T00:00:00+00:00"}
    for url in (
        "/backorders?min_age_days=%C2%B2",
        f"/backorders?min_age_days={huge}",
        "/backorders?limit=%C2%B2",
        f"/backorders?limit={huge}",
        "/backorders.csv?min_age_days=%C2%B2",
    ):
        r = web.get(url)
        assert r.status_code == 422, (url, r.status_code)
    for url in (  # a cursor that is not one the page gave out: the page starts again at its first rows
        "/backorders?cursor=" + cursor("priority-,placed_at+,order_number+,line_no+", [10**30, t, "SO-1", 1]),
        "/orders?cursor=" + cursor("placed_at+,id+", [t, 10**30]),
        "/products?cursor=" + cursor("sku+", ["P\u00001"]),
        "/purchasing?cursor=" + cursor("id+", [10**30]),
        "/fulfillment?pick_cursor=" + cursor("id+", [10**30]),
    ):
        assert web.get(url).status_code == 200, url
    web.get("/settings")
    before = snapshot(api.store)
    forms = [
        ("/order-actions/priority", {"order_number": "SO-1", "priority": "²"}),
        ("/order-actions/priority", {"order_number": "SO-1", "priority": huge}),
        ("/order-actions/cancel", {"order_number": "SO-1", "reason": "x", "qty_1": "²"}),
        ("/order-actions/cancel", {"order_number": "SO-1", "reason": "x", "qty_1": huge}),
        ("/order-actions/cancel", {"order_number": "SO-1", "reason": "x", f"qty_{huge}": "1"}),
        ("/backorders/action", {"action": "priority", "priority": "²", "line": "SO-1|1"}),
        ("/backorders/action", {"action": "cancel", "reason": "x", "line": f"SO-1|{huge}"}),
        ("/fulfillment/advance", {"one": huge, "column": "awaiting_shipment"}),
        ("/fulfillment/advance", {"id": "²", "column": "awaiting_shipment"}),
        (
            "/purchasing/new",
            {"po_number": "PO-N", "supplier": "s", "sku[]": "P-1", "qty[]": "²", "expected_date[]": day(5)},
        ),
        (
            "/purchasing/new",
            {"po_number": "PO-N", "supplier": "s", "sku[]": "P-1", "qty[]": huge, "expected_date[]": day(5)},
        ),
        (
            "/purchasing/new",
            {"po_number": "PO-N", "supplier": "s", "sku[]": "P-1", "qty[]": "1", "expected_date[]": "9999-12-31"},
        ),
        ("/purchasing/dates", {"po_number": "PO-1", "date:P-1": "9999-12-31", "orig:P-1": day(9)}),
        ("/settings/policy", {"mode": "always", "max_backorder_qty": "²"}),
        ("/settings/policy", {"mode": "always", "auto_cancel_after_days": huge}),
        ("/settings/policy", {"mode": "preorder", "preorder_ends_at": "9999-12-31T23:59"}),
        ("/product-actions/policy", {"sku": "P-1", "mode": "preorder", "release_date": "9999-12-31"}),
    ]
    for url, form in forms:
        r = web.post(url, form, follow_redirects=False)
        assert 400 <= r.status_code < 500, (url, form, r.status_code, r.text[:300])
    assert snapshot(api.store) == before
    assert ids


def test_the_customer_page_refuses_a_line_number_that_is_not_one(api):
    prepare(api)
    token = links.make_token(links.store_secret(api.store), "SO-1")
    assert api.client.get(f"/c/{token}").status_code == 200  # the first dashboard request keys its sessions
    before = snapshot(api.store)
    for line_no in ("9" * 30, "²", "0", "-1"):
        r = api.client.post(f"/c/{token}", data={"action": "cancel", "line_no": line_no})
        assert 400 <= r.status_code < 500, (line_no, r.status_code, r.text[:200])
    assert snapshot(api.store) == before
    r = api.client.post(f"/c/{token}", data={"action": "cancel", "line_no": "1"})
    assert r.status_code == 200 and re.search("cancelled", r.text, re.IGNORECASE)


def test_a_sku_counter_is_never_taken_past_what_it_holds_by_orders_receipts_or_counts(api):
    """Thousands of the largest orders for one SKU would overflow its counters: the last are refused (409)."""
    prepare(api)
    limit = 2**31 - 1
    with api.store.engine.begin() as conn:  # as after some 2,147 orders and receipts of 1,000,000 units
        conn.execute(update(products).where(products.c.sku == "P-1").values(backordered=limit - 10))
    before = snapshot(api.store)
    order = {"order_number": "SO-MAX", "channel": "web", "customer_id": "C-1", "lines": [{"sku": "P-1", "qty": 1_000}]}
    r = api.post("/orders", order)
    assert r.status_code == 409, r.text
    assert [(e["sku"], e["reason"]) for e in r.json()["errors"]] == [("P-1", "sku_backorder_limit")]
    assert snapshot(api.store) == before
    with api.store.engine.begin() as conn:
        conn.execute(update(products).where(products.c.sku == "P-1").values(on_hand=limit - 10))
    before = snapshot(api.store)
    r = api.post("/receipts", {"grn_number": "G-MAX", "lines": [{"sku": "P-1", "qty": 1_000}]})
    assert r.status_code == 409 and r.json()["errors"][0]["max_more"] == 10, r.text
    r = api.post("/inventory/adjustments", {"sku": "P-1", "qty_delta": 1_000, "reason": "count"})
    assert r.status_code == 409 and r.json()["errors"][0]["max_more"] == 10, r.text
    assert snapshot(api.store) == before
    ok(api.post("/inventory/adjustments", {"sku": "P-1", "qty_delta": 10, "reason": "count"}), 201)


def test_the_overview_sums_the_value_waiting_of_a_dear_sku_with_a_long_queue(api, signed_in):  # noqa: F811
    prepare(api)
    ok(
        api.put(
            "/products/P-1", {"name": "Tent", "unit_price": "9999999999.99", "backorder_policy": {"mode": "always"}}
        )
    )
    with api.store.engine.begin() as conn:  # units times cents past what a 64-bit integer holds
        conn.execute(update(products).where(products.c.sku == "P-1").values(backordered=2**31 - 1))
    r = signed_in.get("/")
    assert r.status_code == 200, r.text[:300]
