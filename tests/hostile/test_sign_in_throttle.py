"""The sign-in throttle holds under concurrency, across processes, and locks out by user name only.

Each attempt is counted before its password is checked (one statement per key), so guesses racing
each other check at most the allowance of passwords. Failures from one address slow that address
down but never lock out a user whose password is right. The counts live in the store, so every
server process draws on the same allowance. On SQLite and PostgreSQL; time is an injected clock.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from oms.app import create_app
from oms.store.db import Store
from oms.web import session as sign_in_module

from ..web.conftest import Browser, seeded, web  # noqa: F401 (fixtures)
from ..web.seed import PASSWORD

PER_USER = 5
PER_ADDRESS = 20


def test_guesses_racing_each_other_check_no_more_passwords_than_the_allowance(
    web: Browser,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[str] = []
    real = sign_in_module.authenticate
    racing = 8

    def while_checking(conn: Connection, username: str, password: str) -> Any:
        """Each guess, while its password is being checked, lets the next guess arrive."""
        checked.append(password)
        if len(checked) < racing:
            web.post("/login", {"username": username, "password": f"guess-{len(checked)}"})
        return real(conn, username, password)

    monkeypatch.setattr(sign_in_module, "authenticate", while_checking)
    web.get("/login")
    web.post("/login", {"username": "otto", "password": "guess-0"})
    assert len(checked) == PER_USER, checked
    monkeypatch.undo()
    r = web.sign_in("otto", PASSWORD)
    assert r.status_code == 429
    assert not signed_in(web)


def test_failures_from_one_address_slow_it_down_but_never_lock_out_a_user_with_the_right_password(
    web: Browser,  # noqa: F811
) -> None:
    now = [1_000_000.0]
    web.client.app.state.sign_in_throttle.clock = lambda: now[0]
    for i in range(PER_ADDRESS):
        assert web.sign_in(f"guess-{i}", "wrong-password").status_code == 401
    r = web.sign_in("nobody", "wrong-password")
    assert r.status_code == 429  # the address is over its allowance: this guess is not checked
    assert 0 < int(r.headers["retry-after"]) <= 60
    now[0] += 60
    assert web.sign_in("ada").status_code == 200  # slowed down, not locked out
    assert signed_in(web)
    web.post("/logout", {})
    assert web.sign_in("guess-0", "wrong-password").status_code == 429  # still paced
    now[0] += 60
    assert web.sign_in("otto").status_code == 200


def test_every_server_process_draws_on_the_same_allowance(seeded: Store) -> None:  # noqa: F811
    with TestClient(create_app(seeded)) as one, TestClient(create_app(seeded)) as two:
        first, second = Browser(one, seeded), Browser(two, seeded)
        for _ in range(PER_USER):
            assert first.sign_in("otto", "wrong-password").status_code == 401
        assert second.sign_in("otto", PASSWORD).status_code == 429
        assert second.sign_in("ada", PASSWORD).status_code == 200


def signed_in(browser: Browser) -> bool:
    return browser.client.get("/", follow_redirects=False).status_code == 200
