"""Form floods: every body is bounded before anything parses it, and tokens are checked before forms are read.

Outside the API (whose JSON bodies have their own cap) a body over the form cap is a 413 whoever sends
it, signed in or not, with or without a Content-Length; nothing parses it. The customer page checks
its link and the dashboard its session's CSRF token before reading the form, and every form is read
with a bound on its number of fields and on each field's size. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from oms.notifications import links

from ..web.conftest import Browser
from .common import snapshot
from .test_injection import admin_browser, prepare  # noqa: F401 (a fixture)

FORM = {"content-type": "application/x-www-form-urlencoded"}
OVER_THE_CAP = 300 * 1024  # above the dashboard's form cap, below the API's 1 MiB


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths whose form some code began to parse."""
    seen: list[str] = []
    real = Request.form

    def spy(self: Request, **kw: Any) -> Any:
        seen.append(self.url.path)
        return real(self, **kw)

    monkeypatch.setattr(Request, "form", spy)
    return seen


def body(fields: list[tuple[str, str]]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(fields).encode()


def chunks(data: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    """The body sent without a Content-Length (chunked), as a client may."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


def customer_link(api: Any, order_number: str) -> str:
    return "/c/" + links.make_token(links.store_secret(api.store), order_number)


def test_a_body_over_the_form_cap_is_413_before_it_is_parsed_signed_in_or_not(api, admin_browser, parsed):  # noqa: F811
    prepare(api)
    link = customer_link(api, "SO-1")
    before = snapshot(api.store)
    pad = ("pad", "x" * OVER_THE_CAP)

    anonymous = Browser(TestClient(api.client.app), api.store)
    anonymous.get("/login")  # a session and its CSRF token, as any visitor gets
    login = body([("username", "ada"), ("password", "wrong-password"), ("csrf_token", anonymous.csrf), pad])
    admin_browser.get("/settings")
    policy = body([("mode", "never"), ("csrf_token", admin_browser.csrf), pad])
    cases = [
        (anonymous.client, "/login", login, FORM),
        (anonymous.client, "/login", chunks(login), FORM),
        (anonymous.client, "/login", b'{"pad": "' + b"x" * OVER_THE_CAP + b'"}', {"content-type": "application/json"}),
        (anonymous.client, link, body([("action", "wait"), pad]), FORM),
        (anonymous.client, link, chunks(body([("action", "wait"), pad])), FORM),
        (admin_browser.client, "/settings/policy", policy, FORM),
        (admin_browser.client, "/settings/policy", chunks(policy), FORM),
    ]
    for client, url, content, headers in cases:
        r = client.post(url, content=content, headers=headers, follow_redirects=False)
        assert r.status_code == 413, (url, r.status_code, r.text[:300])
        assert "too large" in r.text.lower(), r.text[:300]
    assert parsed == []
    assert snapshot(api.store) == before


def test_the_customer_link_and_the_csrf_session_are_checked_before_the_form_is_read(api, parsed):
    prepare(api)
    many = body([(f"f{i}", "1") for i in range(5000)])  # under the byte cap, far over the field cap
    r = api.client.post("/c/not-a-signed-link", content=many, headers=FORM)
    assert r.status_code == 404, r.text[:300]
    r = api.client.post("/c/not-a-signed-link", content=b"", headers=FORM)  # no `action`: never looked at
    assert r.status_code == 404, r.text[:300]
    stranger = TestClient(api.client.app)  # no session cookie, so no CSRF token to match
    r = stranger.post("/login", content=many, headers=FORM)
    assert r.status_code == 403, r.text[:300]
    assert "CSRF" in r.text
    assert parsed == []


def test_forms_are_read_with_a_bound_on_fields_and_field_size_above_the_largest_real_form(api, admin_browser):  # noqa: F811
    prepare(api)
    link = customer_link(api, "SO-1")
    web = admin_browser
    web.get("/settings")
    # A 500-line purchase order sends three fields a line: 1,500 fields must still be read.
    filler = [(f"unused{i}", "1") for i in range(1500)]
    r = web.client.post(
        "/settings/policy", content=body([("mode", "never"), ("csrf_token", web.csrf), *filler]), headers=FORM
    )
    assert r.status_code in (200, 303), r.text[:300]

    before = snapshot(api.store)
    web.get("/settings")
    too_many = [("mode", "always"), ("csrf_token", web.csrf), *[(f"f{i}", "1") for i in range(2100)]]
    too_big = [("mode", "always"), ("csrf_token", web.csrf), ("reason", "x" * (40 * 1024))]
    for fields in (too_many, too_big):
        r = web.client.post("/settings/policy", content=body(fields), headers=FORM)
        assert r.status_code == 413, r.text[:300]
        assert "form" in r.text.lower()
    for fields in ([("action", "cancel"), *[(f"f{i}", "1") for i in range(2100)]], [("action", "x" * 40 * 1024)]):
        r = api.client.post(link, content=body(fields), headers=FORM)
        assert r.status_code == 413, r.text[:300]
    assert snapshot(api.store) == before
