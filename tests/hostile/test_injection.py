"""SQL and HTML injection strings in every text field of every create/update endpoint, on both stores.

Free-text fields (names, reasons, supplier, carrier, tracking, webhook URL and description, email)
take them and give them back exactly; code fields (SKU, order/PO/GRN numbers, channel, customer id,
also in paths) refuse them with a 422 naming the field, and a refused request changes no row of
any table. No request answers 5xx. The dashboard shows accepted markup escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from oms.access.users import create_user
from oms.domain.access import Role
from oms.store.tables import stock_movements

from ..web.conftest import Browser
from .common import HOSTILE, PROBLEM, SCRIPT, snapshot

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")


def day(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def ok(r: Any, status: int | tuple[int, ...] = (200, 201)) -> Any:
    codes = status if isinstance(status, tuple) else (status,)
    assert r.status_code in codes, r.text
    return r.json()


def prepare(api: Any, dispatchable: int = 0) -> list[int]:
    """P-1 (always back-orderable, stock 5), customer C-1, PO-1, SO-1 waiting 200 units; and
    `dispatchable` one-unit orders of D-1 brought to awaiting shipment. Returns their shipment ids."""
    ok(api.put("/products/P-1", {"name": "Tent", "unit_price": "10.00", "backorder_policy": {"mode": "always"}}))
    ok(api.put("/products/D-1", {"name": "Lamp", "unit_price": "5.00"}))
    ok(api.put("/customers/C-1", {"name": "Carol", "email": "carol@example.com"}))
    ok(api.post("/inventory/adjustments", {"sku": "P-1", "qty_delta": 5, "reason": "count"}))
    po = {"po_number": "PO-1", "supplier": "Acme", "lines": [{"sku": "P-1", "qty": 50, "expected_date": day(9)}]}
    ok(api.post("/purchase-orders", po))
    order = {"order_number": "SO-1", "channel": "web", "customer_id": "C-1", "lines": [{"sku": "P-1", "qty": 205}]}
    ok(api.post("/orders", order))
    ids = []
    if dispatchable:
        ok(api.post("/inventory/adjustments", {"sku": "D-1", "qty_delta": dispatchable, "reason": "count"}))
    for i in range(dispatchable):
        body = {"order_number": f"SO-D{i}", "channel": "web", "customer_id": "C-1", "lines": [{"sku": "D-1", "qty": 1}]}
        ok(api.post("/orders", body))
        (shipment,) = ok(api.get("/shipments", params={"order_number": f"SO-D{i}"}))["items"]
        for _ in range(2):  # pick -> pack -> awaiting shipment
            ok(api.post(f"/shipments/{shipment['id']}/advance", {}))
        ids.append(shipment["id"])
    return ids


# ---- free-text fields: accepted, stored and read back exactly -----------------------------------
# Each entry: (name, max length, send(api, i, value) -> response, read back(api, i, response) -> value)
Send = Callable[[Any, int, str], Any]
Back = Callable[[Any, int, Any], Any]


def _events(api: Any, number: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in ok(api.get(f"/orders/{number}/events"))["items"] if e["type"] == kind]


def _last_movement_reason(api: Any) -> Any:
    """The API answers an adjustment without its reason; the stock ledger keeps it."""
    with api.store.engine.connect() as conn:
        query = select(stock_movements.c.reason).order_by(stock_movements.c.id.desc()).limit(1)
        return conn.execute(query).scalar_one()


def _shipment(api: Any, ids: list[int], i: int) -> dict[str, Any]:
    return ok(api.get(f"/shipments/{ids[i]}"))


FREE_TEXT: list[tuple[str, int, Send, Back]] = [
    (
        "product name",
        200,
        lambda api, i, v: api.put("/products/P-1", {"name": v, "unit_price": "10.00"}),
        lambda api, i, r: ok(api.get("/products/P-1"))["name"],
    ),
    (
        "customer name",
        200,
        lambda api, i, v: api.put("/customers/C-1", {"name": v, "email": "carol@example.com"}),
        lambda api, i, r: ok(api.get("/customers/C-1"))["name"],
    ),
    (
        "adjustment reason",
        500,
        lambda api, i, v: api.post("/inventory/adjustments", {"sku": "P-1", "qty_delta": 1, "reason": v}),
        lambda api, i, r: _last_movement_reason(api),
    ),
    (
        "cancel reason",
        500,
        lambda api, i, v: api.post("/orders/SO-1/cancel", {"reason": v, "lines": [{"line_no": 1, "qty": 1}]}),
        lambda api, i, r: _events(api, "SO-1", "cancelled")[-1]["data"]["reason"],
    ),
    (
        "PO supplier",
        200,
        lambda api, i, v: api.post(
            "/purchase-orders",
            {"po_number": f"PO-H{i}", "supplier": v, "lines": [{"sku": "P-1", "qty": 1, "expected_date": day(30)}]},
        ),
        lambda api, i, r: ok(api.get(f"/purchase-orders/PO-H{i}"))["supplier"],
    ),
    (
        "webhook description",
        200,
        lambda api, i, v: api.post(
            "/webhooks", {"url": "https://hooks.example.net/hook", "event_types": ["*"], "description": v}
        ),
        lambda api, i, r: ok(api.get(f"/webhooks/{r.json()['id']}"))["description"],
    ),
]


def _stored_once(api: Any, r: Any) -> None:
    """An accepted request's answer is JSON of the documented kind (no stack trace, no SQL echo)."""
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]


@pytest.mark.parametrize("field", [f[0] for f in FREE_TEXT])
def test_hostile_strings_in_a_free_text_field_are_stored_and_read_back_exactly(api, field):
    prepare(api)
    _, limit, send, back = next(f for f in FREE_TEXT if f[0] == field)
    for i, value in enumerate([*HOSTILE, "x" * limit]):
        r = send(api, i, value)
        assert r.status_code in (200, 201), (field, value, r.text)
        _stored_once(api, r)
        assert back(api, i, r) == value, (field, value)
    before = snapshot(api.store)
    r = send(api, 99, "y" * (limit + 1))  # one over the bound: refused, nothing stored
    assert r.status_code == 422, r.text
    assert snapshot(api.store) == before


def test_hostile_carriers_and_tracking_numbers_dispatch_and_read_back_exactly(api):
    values = [*HOSTILE, "c" * 100]
    ids = prepare(api, dispatchable=len(values))
    for i, value in enumerate(values):
        tracking = value[::-1]
        r = api.post(f"/shipments/{ids[i]}/advance", {"carrier": value, "tracking_number": tracking})
        assert r.status_code == 200, (value, r.text)
        got = _shipment(api, ids, i)
        assert (got["status"], got["carrier"], got["tracking_number"]) == ("dispatched", value, tracking)


def test_hostile_webhook_urls_are_stored_exactly_or_refused_when_not_a_url(api):
    for path in ("/<script>alert(1)</script>", "/?q='OR'1'='1--", "/%27;--", "/{{7*7}}#\u202e"):
        url = "https://hooks.example.net" + path
        r = api.post("/webhooks", {"url": url, "event_types": ["*"]})
        assert r.status_code == 201, r.text
        assert ok(api.get(f"/webhooks/{r.json()['id']}"))["url"] == url
    before = snapshot(api.store)
    for url in ("javascript:alert(1)", "http://x/ a b", "http://x/\x00", "'; DROP TABLE outbox; --"):
        r = api.post("/webhooks", {"url": url, "event_types": ["*"]})
        assert r.status_code == 422, (url, r.text)
        assert [e["field"] for e in r.json()["errors"]] == ["url"]
    assert snapshot(api.store) == before


def test_an_email_takes_markup_without_spaces_and_refuses_the_rest_storing_nothing(api):
    prepare(api)
    for value in HOSTILE:
        email = f"{value}@example.com"
        before = snapshot(api.store)
        r = api.put("/customers/C-1", {"name": "Carol", "email": email})
        if re.search(r"[\s@\x00-\x1f\x7f]", value):
            assert r.status_code == 422, (value, r.text)
            assert [e["field"] for e in r.json()["errors"]] == ["email"]
            assert snapshot(api.store) == before
        else:
            assert r.status_code == 200, (value, r.text)
            assert ok(api.get("/customers/C-1"))["email"] == email


# ---- code fields: refused with the field named, nothing stored ----------------------------------


def _order(**over: Any) -> dict[str, Any]:
    body = {"order_number": "SO-9", "channel": "web", "customer_id": "C-1", "lines": [{"sku": "P-1", "qty": 1}]}
    return {**body, **over}


def _line(sku: str) -> list[dict[str, Any]]:
    return [{"sku": sku, "qty": 1}]


# (field as the API names it, method, path, body) for a hostile value v
CODE_FIELDS: list[tuple[str, Callable[[str], tuple[str, str, Any]]]] = [
    ("order_number", lambda v: ("POST", "/orders", _order(order_number=v))),
    ("channel", lambda v: ("POST", "/orders", _order(channel=v))),
    ("customer_id", lambda v: ("POST", "/orders", _order(customer_id=v))),
    ("lines.0.sku", lambda v: ("POST", "/orders", _order(lines=_line(v)))),
    ("sku", lambda v: ("POST", "/inventory/adjustments", {"sku": v, "qty_delta": 1, "reason": "r"})),
    (
        "backorder_policy.channels.0",
        lambda v: (
            "PUT",
            "/products/P-1",
            {"name": "n", "unit_price": "1.00", "backorder_policy": {"mode": "always", "channels": [v]}},
        ),
    ),
    ("channels.0", lambda v: ("PUT", "/settings/default-backorder-policy", {"mode": "always", "channels": [v]})),
    (
        "po_number",
        lambda v: (
            "POST",
            "/purchase-orders",
            {"po_number": v, "supplier": "s", "lines": [{"sku": "P-1", "qty": 1, "expected_date": day(3)}]},
        ),
    ),
    (
        "lines.0.sku",
        lambda v: (
            "POST",
            "/purchase-orders",
            {"po_number": "PO-9", "supplier": "s", "lines": [{"sku": v, "qty": 1, "expected_date": day(3)}]},
        ),
    ),
    ("lines.0.sku", lambda v: ("PATCH", "/purchase-orders/PO-1", {"lines": [{"sku": v, "qty": 2}]})),
    ("grn_number", lambda v: ("POST", "/receipts", {"grn_number": v, "lines": _line("P-1")})),
    ("po_number", lambda v: ("POST", "/receipts", {"grn_number": "G-9", "po_number": v, "lines": _line("P-1")})),
    ("lines.0.sku", lambda v: ("POST", "/receipts", {"grn_number": "G-9", "lines": _line(v)})),
    ("channel", lambda v: ("POST", "/promise", {"channel": v, "lines": _line("P-1")})),
    ("customer_id", lambda v: ("POST", "/promise", {"channel": "web", "customer_id": v, "lines": _line("P-1")})),
    ("lines.0.sku", lambda v: ("POST", "/receipts/preview", {"grn_number": "G-9", "lines": _line(v)})),
]
PATH_FIELDS: list[tuple[str, Callable[[str], tuple[str, str, Any]]]] = [
    ("sku", lambda v: ("PUT", f"/products/{v}", {"name": "n", "unit_price": "1.00"})),
    ("customer_id", lambda v: ("PUT", f"/customers/{v}", {"name": "n", "email": "n@example.com"})),
    ("order_number", lambda v: ("POST", f"/orders/{v}/cancel", {"reason": "r"})),
    ("order_number", lambda v: ("POST", f"/orders/{v}/priority", {"priority": 5})),
    ("po_number", lambda v: ("PATCH", f"/purchase-orders/{v}", {"lines": [{"sku": "P-1", "qty": 2}]})),
    ("po_number", lambda v: ("POST", f"/purchase-orders/{v}/cancel", None)),
    ("shipment_id", lambda v: ("POST", f"/shipments/{v}/advance", {})),
]


def test_hostile_strings_in_every_code_field_are_refused_naming_the_field_and_store_nothing(api):
    prepare(api)
    before = snapshot(api.store)
    values = [v for v in HOSTILE if not CODE.match(v)] + ["x" * 65]
    assert len(values) == len(HOSTILE) + 1  # none of them is a valid code
    for field, build in CODE_FIELDS:
        for value in values:
            method, path, body = build(value)
            r = api.client.request(method, "/api/v1" + path, json=body, headers=api.headers)
            assert r.status_code == 422, (field, value, r.text)
            assert r.headers["content-type"] == PROBLEM
            assert [e["field"] for e in r.json()["errors"]] == [field], (field, value, r.json())
    assert snapshot(api.store) == before


def test_hostile_strings_in_path_segments_are_refused_or_not_found_and_store_nothing(api):
    prepare(api)
    before = snapshot(api.store)
    for field, build in PATH_FIELDS:
        for value in [*HOSTILE, "x" * 65, "..", "%00", "SO-1/../PO-1"]:
            method, path, body = build(quote(value, safe=""))
            r = api.client.request(method, "/api/v1" + path, json=body, headers=api.headers)
            assert r.status_code in (404, 422), (field, value, r.status_code, r.text)
            assert r.headers["content-type"] == PROBLEM
    assert snapshot(api.store) == before


def test_hostile_strings_in_query_filters_are_refused_or_match_nothing(api):
    prepare(api)
    before = snapshot(api.store)
    lists = {
        "/orders": ["customer_id", "channel", "status"],
        "/backorders": ["sku", "customer_id", "order_number", "channel", "cursor"],
        "/purchase-orders": ["sku", "status", "cursor"],
        "/shipments": ["order_number", "channel", "status"],
        "/notifications": ["order_number", "status", "kind"],
        "/reports/backorders": ["channel", "group_by", "from"],
    }
    for path, params in lists.items():
        for param in params:
            for value in HOSTILE:
                r = api.get(path, params={param: value})
                assert r.status_code in (200, 422), (path, param, value, r.text)
                if r.status_code == 200:
                    items = r.json().get("items", [])
                    assert items == [], (path, param, value)
    assert snapshot(api.store) == before


# ---- shown escaped in the dashboard -------------------------------------------------------------


@pytest.fixture
def admin_browser(api: Any) -> Browser:
    api.store.write(lambda uow: create_user(uow.conn, "ada", Role.ADMIN, "pw-12345678"))
    web = Browser(api.client, api.store)
    web.get("/login")
    r = web.post("/login", {"username": "ada", "password": "pw-12345678"})
    assert r.status_code == 200, r.text
    return web


MARKUP = [SCRIPT, '"><img src=x onerror=alert(1)>', "</textarea></title><script>x()</script>"]


def assert_escaped(html: str, where: str) -> None:
    for raw in ("<script>alert(1)", "<img src=x", "<script>x()"):
        assert raw not in html, (where, raw)


def test_accepted_markup_is_shown_escaped_on_every_dashboard_page(api, admin_browser):
    ids = prepare(api, dispatchable=2)
    web = admin_browser
    ok(api.put("/products/P-1", {"name": SCRIPT, "unit_price": "10.00", "backorder_policy": {"mode": "always"}}))
    ok(api.post("/orders/SO-1/cancel", {"reason": MARKUP[1], "lines": [{"line_no": 1, "qty": 1}]}))
    po = {"po_number": "PO-X", "supplier": MARKUP[2], "lines": [{"sku": "P-1", "qty": 3, "expected_date": day(-2)}]}
    ok(api.post("/purchase-orders", po))
    ok(api.post("/receipts", {"grn_number": "G-X", "po_number": "PO-X", "lines": [{"sku": "P-1", "qty": 3}]}))
    ok(api.post(f"/shipments/{ids[0]}/advance", {"carrier": SCRIPT, "tracking_number": MARKUP[1]}))

    pages = {
        "/products/P-1": ["&lt;script&gt;alert(1)&lt;/script&gt;"],
        "/products": ["&lt;script&gt;alert(1)&lt;/script&gt;"],
        "/orders/SO-1": ["&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"],
        "/orders/SO-D0": ["&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"],
        "/fulfillment": ["&lt;script&gt;alert(1)&lt;/script&gt;"],
        "/purchasing?view=all": ["&lt;/textarea&gt;&lt;/title&gt;&lt;script&gt;x()&lt;/script&gt;"],
        "/reports": [r"\u003c/textarea\u003e\u003c/title\u003e\u003cscript\u003ex()\u003c/script\u003e"],
        "/backorders?sku=P-1": ["SO-1"],
        "/": ["kpi-lines"],
    }
    for url, escaped in pages.items():
        r = web.get(url)
        assert r.status_code == 200, (url, r.text[:500])
        assert_escaped(r.text, url)
        for text in escaped:
            assert text in r.text, (url, text)


def test_refused_dashboard_forms_keep_hostile_input_escaped_and_store_nothing(api, admin_browser):
    prepare(api)
    web = admin_browser
    before = snapshot(api.store)
    web.get("/purchasing/new")
    r = web.post(
        "/purchasing/new",
        {"po_number": "PO-N", "supplier": SCRIPT, "sku[]": ["P-1"], "qty[]": ["1"], "expected_date[]": ["not-a-date"]},
    )
    assert r.status_code == 422, r.text[:500]
    assert_escaped(r.text, "new PO")
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in r.text
    web.get("/backorders")
    r = web.post("/backorders/action", {"action": "cancel", "reason": MARKUP[1], "back": "sku=P-1"})
    assert r.status_code == 422, r.text[:500]
    assert_escaped(r.text, "back orders")
    assert 'value="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"' in r.text
    assert snapshot(api.store) == before
