"""Malformed and hostile bytes anywhere in a request: zero 5xx, and a refused request stores nothing.

Every operation of the OpenAPI gets NUL, control characters, invalid UTF-8 and encoded surrogates in
each of its query and path parameters; every write endpoint gets invalid UTF-8 inside its JSON,
escaped NUL and lone surrogates in each string field, malformed JSON, bodies over the limit, and
hostile bytes in its headers. The dashboard's pages and forms get the same. On SQLite and PostgreSQL
(PostgreSQL refuses NUL in text outright, so a value that reaches it unchecked is a 500).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from oms.access.users import create_user
from oms.domain.access import Role

from ..web.conftest import Browser
from .common import PROBLEM, snapshot
from .test_injection import day, ok, prepare

# Raw (already percent-encoded) values for query strings and path segments.
RAW_VALUES = ["%00", "a%00b", "%01%1F%7F", "%FF%FE", "%C3%28", "%ED%A0%80", "%F4%90%80%80", "%E2%80%AE", "%0D%0AX:1"]
EXAMPLE = {"integer": "1", "number": "1", "boolean": "true"}


def operations(client: Any) -> list[tuple[str, str, dict[str, Any]]]:
    doc = client.get("/openapi.json").json()
    return [(m.upper(), p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]


def fill(path: str, op: dict[str, Any], override: tuple[str, str] | None = None) -> str:
    """The path with every path parameter filled with a plausible value, one perhaps overridden."""
    for p in op.get("parameters", []):
        if p["in"] == "path":
            value = override[1] if override and override[0] == p["name"] else "SO-1"
            if p.get("schema", {}).get("type") == "integer" and not (override and override[0] == p["name"]):
                value = "1"
            path = path.replace("{" + p["name"] + "}", value)
    return path


def test_every_query_and_path_parameter_takes_nul_control_and_invalid_utf8_without_a_5xx(api):
    prepare(api, dispatchable=1)
    before = snapshot(api.store)
    sent = 0
    for method, path, op in operations(api.client):
        if not path.startswith("/api/v1"):
            continue
        params = op.get("parameters", [])
        body = {} if method in ("POST", "PUT", "PATCH") else None
        for p in params:
            if p["in"] not in ("query", "path"):
                continue
            for raw in RAW_VALUES:
                url = fill(path, op, (p["name"], raw)) if p["in"] == "path" else fill(path, op) + f"?{p['name']}={raw}"
                r = api.client.request(method, url, headers=api.headers, json=body)
                sent += 1
                assert r.status_code < 500, (method, url, r.text)
                assert r.headers["content-type"] == PROBLEM or r.status_code < 400, (method, url)
    assert sent > 300
    after = snapshot(api.store)
    # The only change allowed: none. (Writes got a parameter they refuse, or a body they refuse.)
    assert after == before


WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("PUT", "/products/P-9", {"name": "Nine", "unit_price": "1.00"}),
    ("PUT", "/customers/C-9", {"name": "Nine", "email": "nine@example.com"}),
    ("PUT", "/settings/default-backorder-policy", {"mode": "always", "channels": ["web"]}),
    ("PUT", "/settings/allocation-rule", {"keys": ["priority", "placed_at"]}),
    ("POST", "/inventory/adjustments", {"sku": "P-1", "qty_delta": 1, "reason": "count"}),
    (
        "POST",
        "/orders",
        {"order_number": "SO-9", "channel": "web", "customer_id": "C-1", "lines": [{"sku": "P-1", "qty": 1}]},
    ),
    ("POST", "/orders/SO-1/cancel", {"reason": "gone", "lines": [{"line_no": 1, "qty": 1}]}),
    ("POST", "/orders/SO-1/priority", {"priority": 3}),
    (
        "POST",
        "/purchase-orders",
        {"po_number": "PO-9", "supplier": "Acme", "lines": [{"sku": "P-1", "qty": 1, "expected_date": "2031-01-01"}]},
    ),
    ("PATCH", "/purchase-orders/PO-1", {"lines": [{"sku": "P-1", "qty": 60}]}),
    ("POST", "/receipts", {"grn_number": "G-9", "po_number": "PO-1", "lines": [{"sku": "P-1", "qty": 1}]}),
    ("POST", "/shipments/1/advance", {"carrier": "DHL", "tracking_number": "T-1"}),
    ("POST", "/webhooks", {"url": "https://hooks.example.net/h", "event_types": ["*"], "description": "d"}),
]  # fmt: skip


def strings_in(body: Any, prefix: str = "") -> list[str]:
    """JSON paths (a.b.0.c) of every string value in a body."""
    if isinstance(body, dict):
        return [p for k, v in body.items() for p in strings_in(v, f"{prefix}{k}.")]
    if isinstance(body, list):
        return [p for i, v in enumerate(body) for p in strings_in(v, f"{prefix}{i}.")]
    return [prefix[:-1]] if isinstance(body, str) else []


def with_raw(body: Any, where: str, raw: str) -> bytes:
    """The body as JSON text with the string at `where` replaced by raw JSON-escaped text."""
    marker = "\u2603MARK\u2603"
    keys = where.split(".")
    target = json.loads(json.dumps(body))
    node = target
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = marker
    else:
        node[last] = marker
    return json.dumps(target, ensure_ascii=False).replace(marker, raw).encode()


def test_escaped_nul_controls_and_lone_surrogates_in_every_string_field_are_refused_storing_nothing(api):
    prepare(api, dispatchable=1)
    before = snapshot(api.store)
    headers = {**api.headers, "content-type": "application/json"}
    checked = 0
    for method, path, body in WRITES:
        for where in strings_in(body):
            for raw in ("\\u0000", "a\\u0000b", "\\u0001", "\\u001b[31m", "\\ud800", "x\\udfffy", "\\ud83d"):
                r = api.client.request(method, "/api/v1" + path, content=with_raw(body, where, raw), headers=headers)
                assert r.status_code == 422, (method, path, where, raw, r.text)
                assert r.headers["content-type"] == PROBLEM
                checked += 1
    assert checked > 150
    assert snapshot(api.store) == before


def test_invalid_utf8_and_malformed_json_bodies_are_400_on_every_write_storing_nothing(api):
    prepare(api, dispatchable=1)
    before = snapshot(api.store)
    headers = {**api.headers, "content-type": "application/json"}
    for method, path, body in WRITES:
        good = json.dumps(body).encode()
        broken = [
            good.replace(b'"', b'"\xff', 1),  # invalid UTF-8 inside the first key
            good[:-1] + b',"x":"\xc3\x28"}',  # an invalid two-byte sequence in a value
            good[: len(good) // 2],  # truncated
            good + b"}",  # trailing garbage
            b"{'single': 'quotes'}",
            b'{"a": 1,}',
            b"\x00" * 64,
            b"[" * 5000 + b"]" * 5000,  # nested past the parser's limit
            b'{"a": ' + b"9" * 5000 + b"}",  # an integer longer than Python converts
        ]
        for raw in broken:
            r = api.client.request(method, "/api/v1" + path, content=raw, headers=headers)
            assert r.status_code == 400, (method, path, raw[:40], r.text)
            assert [e["field"] for e in r.json()["errors"]] == ["body"]
        # A surrogate encoded as if UTF-8 (CESU): Python's JSON reader lets it through, validation not.
        for first in strings_in(body)[:1]:
            r = api.client.request(method, "/api/v1" + path, content=with_raw(body, first, "N\\udfff"), headers=headers)
            assert r.status_code == 422, r.text
            cesu = with_raw(body, first, "N@CESU@").replace(b"@CESU@", b"\xed\xa0\x80")
            r = api.client.request(method, "/api/v1" + path, content=cesu, headers=headers)
            assert r.status_code in (400, 422), (method, path, r.text)
        optional = path.endswith("/advance")  # its body is optional: null is no body, and advances
        for not_an_object in (b"[]", b'"text"', b"42", b"true") + (() if optional else (b"null",)):
            r = api.client.request(method, "/api/v1" + path, content=not_an_object, headers=headers)
            assert r.status_code == 422, (method, path, not_an_object, r.text)
    assert snapshot(api.store) == before


def test_a_body_over_the_limit_is_413_on_every_write_storing_nothing(api):
    prepare(api, dispatchable=1)
    before = snapshot(api.store)
    headers = {**api.headers, "content-type": "application/json"}
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    for method, path, _ in WRITES:
        r = api.client.request(method, "/api/v1" + path, content=big, headers=headers)
        assert r.status_code == 413, (method, path, r.text)
        assert r.json()["errors"][0]["max_bytes"] == 1024 * 1024
    assert snapshot(api.store) == before


HOSTILE_HEADER_VALUES: list[bytes] = [
    b"\xff\xfe",
    b"\xc3\x28",
    b"a\x01b",
    b"' OR 1=1 --",
    b"<script>x</script>",
    b"x" * 8000,
]


@pytest.mark.parametrize(
    "header", ["Authorization", "Idempotency-Key", "If-Match", "X-Request-Id", "Content-Type", "Accept", "Cookie"]
)
def test_hostile_bytes_in_a_header_never_answer_5xx_and_a_refused_write_stores_nothing(api, header):
    prepare(api)
    method, path, body = WRITES[4]  # a stock adjustment: every header above can matter to it
    for value in HOSTILE_HEADER_VALUES:
        before = snapshot(api.store)
        headers: dict[str, Any] = {**api.headers, "content-type": "application/json", header: value}
        if header == "Authorization":
            headers[header] = b"Bearer " + value
        r = api.client.request(method, "/api/v1" + path, content=json.dumps(body).encode(), headers=headers)
        assert r.status_code < 500, (header, value[:20], r.text)
        if r.status_code >= 400:
            assert snapshot(api.store) == before, (header, value[:20], r.status_code)
        else:
            assert r.status_code == 201, r.text
    if header == "Authorization":
        assert r.status_code == 401
    if header == "Idempotency-Key":
        assert r.status_code == 422  # 8,000 bytes is not a key


def test_a_query_string_of_30_kib_and_500_repeated_parameters_are_answered_without_a_5xx(api):
    prepare(api)
    r = api.get("/orders?customer_id=" + "A" * 30_000)
    assert r.status_code == 422
    r = api.get("/backorders?" + "&".join(f"sku=S{i}" for i in range(500)))
    assert r.status_code == 200
    r = api.get("/orders?" + "&".join(f"p{i}=%FF" for i in range(500)))
    assert r.status_code == 200


# ---- the dashboard ------------------------------------------------------------------------------


@pytest.fixture
def signed_in(api: Any) -> Browser:
    api.store.write(lambda uow: create_user(uow.conn, "ada", Role.ADMIN, "pw-12345678"))
    web = Browser(api.client, api.store)
    web.get("/login")
    assert web.post("/login", {"username": "ada", "password": "pw-12345678"}).status_code == 200
    return web


PAGES = {
    "/backorders": ["sku", "customer_id", "order_number", "channel", "tier", "min_age_days", "sort", "cursor"],
    "/backorders.csv": ["sku", "customer_id", "channel"],
    "/orders": ["status", "channel", "customer_id", "cursor"],
    "/products": ["cursor"],
    "/purchasing": ["view", "sku", "status"],
    "/purchasing/receive": ["po_number"],
    "/fulfillment": ["channel"],
    "/reports": ["from", "to", "channel", "period"],
    "/reports/summary.csv": ["from", "to", "channel"],
    "/": ["x"],
    "/login": ["next"],
}


def test_dashboard_pages_take_hostile_filters_and_paths_without_a_5xx(api, signed_in):
    prepare(api)
    before = snapshot(api.store)
    for page, params in PAGES.items():
        for param in params:
            for raw in RAW_VALUES:
                r = signed_in.get(f"{page}?{param}={raw}", follow_redirects=False)
                assert r.status_code < 500, (page, param, raw, r.text[:300])
    for raw in RAW_VALUES:
        for page in ("/orders/", "/products/"):
            r = signed_in.get(page + raw)
            assert r.status_code in (404, 422), (page, raw, r.status_code)
    assert snapshot(api.store) == before


FORMS = {
    "/order-actions/cancel": {"order_number": "SO-1", "reason": "x", "qty:1": "1"},
    "/order-actions/priority": {"order_number": "SO-1", "priority": "2"},
    "/backorders/action": {"action": "cancel", "reason": "x", "line": "SO-1:1"},
    "/purchasing/new": {"po_number": "PO-N", "supplier": "s", "sku[]": "P-1", "qty[]": "1", "expected_date[]": day(5)},
    "/purchasing/dates": {"po_number": "PO-1", "date:P-1": day(12), "orig:P-1": day(9)},
    "/product-actions/policy": {"sku": "P-1", "mode": "never"},
    "/settings/policy": {"mode": "never"},
    "/fulfillment/advance": {"one": "1", "column": "pick"},
}


def test_dashboard_forms_with_nul_or_invalid_utf8_in_any_field_never_answer_5xx_and_store_nothing(api, signed_in):
    prepare(api)
    signed_in.get("/settings")
    csrf = signed_in.csrf
    for url, form in FORMS.items():
        for name in form:
            for raw in (b"%00", b"a%00b", b"%FF%FE", b"%ED%A0%80", b"\xff", b"%01"):
                before = snapshot(api.store)
                fields = [f"{k}={v}".encode() for k, v in form.items() if k != name]
                fields += [name.encode().replace(b"[", b"%5B").replace(b"]", b"%5D") + b"=" + raw]
                fields.append(b"csrf_token=" + csrf.encode())
                r = api.client.post(
                    url,
                    content=b"&".join(fields),
                    headers={"content-type": "application/x-www-form-urlencoded"},
                    follow_redirects=False,
                )
                assert r.status_code < 500, (url, name, raw, r.text[:300])
                if r.status_code >= 400 and r.status_code != 403:
                    assert snapshot(api.store) == before, (url, name, raw)
                found = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
                csrf = found.group(1) if found else csrf
    ok(api.get("/products/P-1"))
