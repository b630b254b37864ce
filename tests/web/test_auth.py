"""Sign-in, sessions, CSRF and roles on the dashboard (TestClient, both stores)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from oms.access.throttle import SignInThrottle, Wait, forget_attempts
from oms.access.users import create_user, disable_user
from oms.app import create_app
from oms.cli import app as cli
from oms.domain.access import Role
from oms.domain.errors import Invalid
from oms.store.db import Store
from oms.store.tables import settings, users

from .conftest import Browser
from .seed import PASSWORD


def test_a_signed_out_visitor_is_sent_to_the_login_page(web: Browser) -> None:
    r = web.client.get("/", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    r = web.client.get("/backorders?sku=TENT-2P", follow_redirects=False)
    assert r.headers["location"] == "/login?next=/backorders%3Fsku%3DTENT-2P"


def test_signing_in_sets_an_httponly_samesite_cookie_and_returns_to_the_page_asked_for(web: Browser) -> None:
    web.get("/login?next=/backorders")
    r = web.post("/login", {"username": "otto", "password": PASSWORD, "next": "/backorders"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/backorders"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("oms_session=")
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    assert web.get("/backorders").status_code == 200


def test_a_wrong_password_is_refused_and_the_user_name_kept(web: Browser) -> None:
    r = web.sign_in("otto", "not the password")
    assert r.status_code == 401
    assert "Unknown user name or wrong password." in r.text
    assert 'value="otto"' in r.text
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_never_redirects_off_the_site(web: Browser) -> None:
    web.get("/login")
    r = web.post(
        "/login", {"username": "otto", "password": PASSWORD, "next": "//evil.example/"}, follow_redirects=False
    )
    assert r.headers["location"] == "/"


def test_passwords_are_stored_as_argon2_hashes(seeded: Store) -> None:
    stored = seeded.read(lambda c: c.execute(select(users.c.password_hash).where(users.c.username == "ada")).scalar())
    assert stored is not None and stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_channel_roles_and_short_passwords_are_refused_as_dashboard_users(seeded: Store) -> None:
    try:
        seeded.write(lambda uow: create_user(uow.conn, "shop", Role.CHANNEL, "x"))
    except Invalid as exc:
        assert {e["field"] for e in exc.errors} == {"role", "password"}
    else:
        raise AssertionError("a channel user was created")


def test_a_post_without_the_session_csrf_token_is_refused(admin: Browser) -> None:
    form = {"line": "SO-B1|1", "action": "cancel", "reason": "forged"}
    r = admin.post("/backorders/action", form, csrf=False)
    assert r.status_code == 403
    assert "CSRF" in r.text
    r = admin.post("/backorders/action", {**form, "csrf_token": "guess"}, csrf=False)
    assert r.status_code == 403
    page = admin.get("/backorders?sku=BOOT-42")
    assert page.text.count('data-order="SO-B1"') == 1  # still waiting


def test_the_login_form_itself_needs_the_csrf_token(web: Browser) -> None:
    web.get("/login")
    r = web.post("/login", {"username": "ada", "password": PASSWORD}, csrf=False)
    assert r.status_code == 403


def test_each_role_sees_and_does_only_what_it_may(web: Browser) -> None:
    web.sign_in("otto")  # ops
    assert web.get("/purchasing").status_code == 403
    assert web.get("/purchasing/receive").status_code == 403
    assert web.get("/settings").status_code == 403
    assert web.get("/fulfillment").status_code == 200
    nav = web.get("/").text
    assert 'href="/fulfillment"' in nav and 'href="/purchasing"' not in nav and 'href="/settings"' not in nav
    web.post("/logout", {})
    web.sign_in("pat")  # purchasing
    assert web.get("/purchasing").status_code == 200
    assert web.get("/fulfillment").status_code == 403
    r = web.post("/backorders/action", {"line": "SO-B1|1", "action": "cancel", "reason": "no right"})
    assert r.status_code == 403
    assert "may not change order" in r.text
    assert 'data-order="SO-B1"' in web.get("/backorders?sku=BOOT-42").text


def test_signing_out_and_disabling_end_the_session(web: Browser, seeded: Store) -> None:
    web.sign_in("otto")
    web.post("/logout", {})
    assert web.client.get("/", follow_redirects=False).status_code == 303
    web.sign_in("otto")
    assert web.client.get("/", follow_redirects=False).status_code == 200
    seeded.write(lambda uow: disable_user(uow.conn, "otto"))
    assert web.client.get("/", follow_redirects=False).status_code == 303
    assert web.sign_in("otto").status_code == 401


def test_the_session_key_is_made_once_and_shared_by_every_process(
    seeded: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMS_SECRET_KEY", raising=False)
    with TestClient(create_app(seeded)) as one:
        b = Browser(one, seeded)
        b.sign_in("ada")
        cookie = one.cookies.get("oms_session")
    with TestClient(create_app(seeded)) as two:
        two.cookies.set("oms_session", cookie or "")
        assert two.get("/", follow_redirects=False).status_code == 200
    keys = seeded.read(lambda c: c.execute(select(settings.c.key).where(settings.c.key == "web_session_secret")).all())
    assert len(keys) == 1


def test_oms_users_create_makes_a_user_who_can_sign_in(seeded: Store) -> None:
    url = seeded.engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    r = runner.invoke(cli, ["users", "create", "zed", "--role", "ops"], env={"OMS_DATABASE_URL": url})
    assert r.exit_code == 0, r.output
    password = next(line.split()[-1] for line in r.output.splitlines() if "password:" in line)
    again = runner.invoke(
        cli, ["users", "create", "zed", "--role", "ops", "--if-absent"], env={"OMS_DATABASE_URL": url}
    )
    assert again.exit_code == 0 and "already exists" in again.output
    with TestClient(create_app(seeded)) as client:
        b = Browser(client, seeded)
        assert b.sign_in("zed", password).status_code == 200
        assert b.sign_in("zed", "wrong-password").status_code == 401


def test_five_wrong_passwords_make_that_user_name_wait_even_with_the_right_one(web: Browser) -> None:
    for _ in range(5):
        assert web.sign_in("otto", "not the password").status_code == 401
    r = web.sign_in("otto", PASSWORD)
    assert r.status_code == 429
    assert "Too many failed sign-ins. Try again in 15 minute(s)." in r.text
    assert 0 < int(r.headers["retry-after"]) <= 15 * 60
    assert web.client.get("/", follow_redirects=False).status_code == 303  # still signed out
    assert web.sign_in("ada").status_code == 200  # another user name from the same address may still sign in


def test_the_sign_in_throttle_locks_a_user_name_paces_an_address_and_forgets_after_its_window(store: Store) -> None:
    now = [1000.0]
    throttle = SignInThrottle(store, per_user=3, per_address=5, window_s=60, address_pace_s=10, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.admit("Otto", "10.0.0.1") is None
    assert throttle.admit("otto", "10.0.0.2") == Wait(60, user_name=True)  # user names compare case-insensitively
    now[0] += 30
    assert throttle.admit("OTTO", "10.0.0.2") == Wait(30, user_name=True)
    now[0] += 30
    assert throttle.admit("otto", "10.0.0.2") is None  # the window has ended
    for name in ("a", "b", "c", "d", "e"):
        assert throttle.admit(name, "10.0.0.9") is None
    assert throttle.admit("f", "10.0.0.9") == Wait(10, user_name=False)  # one address guessing many names is paced
    now[0] += 10
    assert throttle.admit("f", "10.0.0.9") is None  # ... one attempt a pace, never locked
    assert throttle.admit("g", "10.0.0.9") == Wait(10, user_name=False)
    for _ in range(3):
        assert throttle.admit("h", "10.0.0.3") is None
    store.write(lambda uow: forget_attempts(uow.conn, "h", "10.0.0.3"))  # a right password
    assert throttle.admit("h", "10.0.0.4") is None  # the user name starts afresh
