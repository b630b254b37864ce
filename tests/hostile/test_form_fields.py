"""Dashboard forms read each field once, as text: a field sent twice, or a file for a text field, is a
4xx that names it and changes nothing, on both stores (never a 500, never a silent pick of one copy)."""

from __future__ import annotations

from typing import Any

from ..web.conftest import Browser
from .common import snapshot
from .test_injection import day, prepare
from .test_malformed import signed_in  # noqa: F401 - a fixture

TWICE = {
    "/order-actions/priority": ({"order_number": "SO-1"}, "priority", ["3", "900"]),
    "/order-actions/cancel": ({"order_number": "SO-1", "qty_1": "1"}, "reason", ["a", "b"]),
    "/backorders/action": ({"action": "cancel", "line": "SO-1|1"}, "reason", ["a", "b"]),
    "/purchasing/new": (
        {"supplier": "s", "sku[]": "P-1", "qty[]": "1", "expected_date[]": day(5)},
        "po_number",
        ["PO-A", "PO-B"],
    ),
    "/purchasing/dates": ({"orig:P-1": day(9), "date:P-1": day(12)}, "po_number", ["PO-1", "PO-1"]),
    "/product-actions/policy": ({"mode": "never"}, "sku", ["P-1", "D-1"]),
    "/settings/policy": ({}, "mode", ["never", "always"]),
    "/fulfillment/advance": ({"one": "1"}, "column", ["pick", "pack"]),
}


def _post(web: Browser, url: str, pairs: list[tuple[str, str]], **kw: Any) -> Any:
    return web.post(url, pairs, follow_redirects=False, **kw)


def test_sign_in_with_next_sent_twice_is_refused_and_signs_no_one_in(api, signed_in):  # noqa: F811
    web: Browser = signed_in
    web.post("/logout", {})
    web.get("/login")
    r = _post(
        web,
        "/login",
        [("username", "ada"), ("password", "pw-12345678"), ("next", "/orders"), ("next", "//evil.example")],
    )
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert "next" in r.text
    assert web.get("/orders", follow_redirects=False).status_code == 303  # still signed out
    web.get("/login")
    r = _post(web, "/login", [("username", "ada"), ("password", "pw-12345678"), ("next", "/orders")])
    assert (r.status_code, r.headers["location"]) == (303, "/orders")


def test_every_dashboard_form_refuses_a_single_field_sent_twice_and_stores_nothing(api, signed_in):  # noqa: F811
    prepare(api, dispatchable=1)
    web: Browser = signed_in
    web.get("/settings")
    before = snapshot(api.store)
    for url, (form, field, values) in TWICE.items():
        pairs = list(form.items()) + [(field, v) for v in values]
        r = _post(web, url, pairs)
        assert r.status_code == 422, (url, r.status_code, r.text[:300])
        assert f"&#39;{field}&#39; was sent 2 times" in r.text or f"'{field}' was sent 2 times" in r.text, url
    assert snapshot(api.store) == before


def test_a_file_where_a_text_field_belongs_is_refused(api, signed_in):  # noqa: F811
    prepare(api)
    web: Browser = signed_in
    web.get("/settings")
    before = snapshot(api.store)
    r = web.client.post(
        "/order-actions/priority",
        data={"order_number": "SO-1", "csrf_token": web.csrf},
        files={"priority": ("p.txt", b"5", "text/plain")},
        follow_redirects=False,
    )
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert "must be text" in r.text
    assert snapshot(api.store) == before
