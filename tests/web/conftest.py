"""The dashboard over a seeded store (SQLite and PostgreSQL), driven by TestClient with cookies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from oms.app import create_app
from oms.store.db import Store

from .seed import PASSWORD, seed

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A TestClient that signs in and sends forms with the page's CSRF token, like a person would."""

    def __init__(self, client: TestClient, store: Store) -> None:
        self.client = client
        self.store = store
        self.csrf = ""

    def get(self, url: str, **kw: Any) -> Any:
        r = self.client.get(url, **kw)
        found = CSRF.search(r.text)
        if found:
            self.csrf = found.group(1)
        return r

    def post(self, url: str, data: dict[str, Any] | list[tuple[str, str]], csrf: bool = True, **kw: Any) -> Any:
        items = list(data.items()) if isinstance(data, dict) else list(data)
        flat: list[tuple[str, str]] = []
        for k, v in items:
            flat += [(k, str(x)) for x in v] if isinstance(v, list) else [(k, str(v))]
        if csrf:
            flat.append(("csrf_token", self.csrf))
        body = "&".join(f"{_q(k)}={_q(v)}" for k, v in flat)
        r = self.client.post(url, content=body, headers={"content-type": "application/x-www-form-urlencoded"}, **kw)
        found = CSRF.search(r.text)
        if found:
            self.csrf = found.group(1)
        return r

    def sign_in(self, username: str, password: str = PASSWORD) -> Any:
        self.get("/login")
        return self.post("/login", {"username": username, "password": password})


def _q(s: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(s)


@pytest.fixture
def seeded(store: Store) -> Store:
    seed(store)
    return store


@pytest.fixture
def web(seeded: Store) -> Iterator[Browser]:
    """Signed out; call .sign_in(name)."""
    with TestClient(create_app(seeded), raise_server_exceptions=True) as client:
        yield Browser(client, seeded)


@pytest.fixture
def admin(web: Browser) -> Browser:
    r = web.sign_in("ada")
    assert r.status_code == 200, r.text
    return web
