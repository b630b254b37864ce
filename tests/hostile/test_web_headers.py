"""Every page the server renders refuses to be framed and carries a Content-Security-Policy it can live with.

Dashboard pages (signed in or not, error pages too), the customer's page and the API docs answer
`X-Frame-Options: DENY` and a CSP with `frame-ancestors 'none'` that allows no inline script or
style; the pages hold none (the browser tests run them under that policy). The session cookie is
`Secure` whenever OMS_PUBLIC_URL is https. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from oms.app import create_app
from oms.notifications import links
from oms.store.db import Store

from ..web.conftest import Browser, admin, seeded, web  # noqa: F401 (fixtures)

PAGES = [
    "/",
    "/backorders",
    "/backorders?sku=BOOT-42",
    "/orders",
    "/orders/SO-B1",
    "/products",
    "/products/TENT-2P",
    "/purchasing",
    "/purchasing/new",
    "/purchasing/receive?po=PO-S1",
    "/purchasing/shortfall",
    "/fulfillment",
    "/settings",
    "/reports",
    "/orders/NO-SUCH-ORDER",  # an error page
]
INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    re.compile(r"<style", re.I),
    re.compile(r"\sstyle=", re.I),
    re.compile(r"\son[a-z]+=", re.I),
    re.compile(r"javascript:", re.I),
]


def policy(headers: object) -> dict[str, str]:
    raw = str(headers.get("content-security-policy", ""))  # type: ignore[attr-defined]
    return {part.split()[0]: part for part in (p.strip() for p in raw.split(";")) if part}


def assert_framing_refused_and_policy_kept(r: object, where: str) -> None:
    headers = r.headers  # type: ignore[attr-defined]
    assert headers.get("x-frame-options") == "DENY", where
    csp = policy(headers)
    assert csp.get("frame-ancestors") == "frame-ancestors 'none'", (where, csp)
    assert csp.get("default-src") == "default-src 'self'", (where, csp)
    for directive in ("script-src", "style-src"):
        assert "'unsafe-inline'" not in csp.get(directive, ""), (where, csp)
        assert "'unsafe-eval'" not in csp.get(directive, ""), (where, csp)
    assert headers.get("x-content-type-options") == "nosniff", where
    html = r.text  # type: ignore[attr-defined]
    for pattern in INLINE:
        found = pattern.search(html)
        assert found is None, (where, found.group(0) if found else "")


def test_every_rendered_page_refuses_framing_and_carries_a_strict_policy(admin: Browser) -> None:  # noqa: F811
    for url in PAGES:
        r = admin.get(url)
        assert r.status_code in (200, 404), (url, r.status_code)
        assert_framing_refused_and_policy_kept(r, url)
    token = links.make_token(links.store_secret(admin.store), "SO-B1")
    stranger = TestClient(admin.client.app)
    for url in ("/login", f"/c/{token}", "/c/not-a-link", "/docs"):
        r = stranger.get(url)
        assert r.status_code in (200, 404), (url, r.status_code)
        assert_framing_refused_and_policy_kept(r, url)


@pytest.mark.parametrize(
    ("public_url", "secure"), [("https://oms.example.com", True), ("http://127.0.0.1:8000", False)]
)
def test_the_session_cookie_is_secure_whenever_the_public_url_is_https(
    seeded: Store,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    public_url: str,
    secure: bool,
) -> None:
    monkeypatch.setenv("OMS_PUBLIC_URL", public_url)
    with TestClient(create_app(seeded)) as client:
        cookie = client.get("/login").headers["set-cookie"]
    assert cookie.startswith("oms_session=")
    assert ("; secure" in cookie.lower()) is secure, cookie
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
