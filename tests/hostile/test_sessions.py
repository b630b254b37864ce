"""Dashboard sessions end on the server: a copied session cookie is worth nothing once its session ended.

Signing out ends that session; a password change and disabling the user end every session of the
user at once. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from oms.access.users import disable_user
from oms.cli import app as cli

from ..web.conftest import Browser, seeded, web  # noqa: F401 (fixtures)
from ..web.seed import PASSWORD


def copy_of(browser: Browser) -> TestClient:
    """Another client holding a copy of the browser's session cookie (a stolen or shared cookie)."""
    thief = TestClient(browser.client.app)
    thief.cookies.set("oms_session", browser.client.cookies.get("oms_session") or "")
    return thief


def signed_in(client: TestClient) -> bool:
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (200, 303), r.text[:300]
    return r.status_code == 200


def test_a_copied_session_cookie_stops_working_when_its_session_signs_out(web: Browser) -> None:  # noqa: F811
    web.sign_in("otto")
    thief = copy_of(web)
    assert signed_in(thief)
    other = Browser(TestClient(web.client.app), web.store)
    other.sign_in("otto")  # the same user on another device
    web.post("/logout", {})
    assert not signed_in(web.client)
    assert not signed_in(thief)
    assert thief.post("/logout", data={}, follow_redirects=False).status_code in (303, 403)
    assert signed_in(other.client)  # signing out ends this session, not the user's others


def test_a_password_change_ends_every_session_of_the_user(web: Browser) -> None:  # noqa: F811
    web.sign_in("otto")
    thief = copy_of(web)
    other = Browser(TestClient(web.client.app), web.store)
    other.sign_in("ada")
    url = web.store.engine.url.render_as_string(hide_password=False)
    r = CliRunner().invoke(
        cli, ["users", "set-password", "otto", "--password", "a-new-password-1"], env={"OMS_DATABASE_URL": url}
    )
    assert r.exit_code == 0, r.output
    assert not signed_in(web.client)
    assert not signed_in(thief)
    assert signed_in(other.client)  # another user's session is untouched
    assert web.sign_in("otto", PASSWORD).status_code == 401
    assert web.sign_in("otto", "a-new-password-1").status_code == 200


def test_disabling_a_user_ends_every_session_including_copies(web: Browser) -> None:  # noqa: F811
    web.sign_in("otto")
    thief = copy_of(web)
    web.store.write(lambda uow: disable_user(uow.conn, "otto"))
    assert not signed_in(web.client)
    assert not signed_in(thief)
