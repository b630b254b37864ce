"""Dashboard sign-in: the session cookie, the signed-in user, role checks and CSRF.

Reuse in any web router:  `user: User = Depends(require_user(Action.READ))`.  Every router
included through `oms.web.mount.ROUTERS` has its POSTs checked for the session's CSRF token.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from oms.access.users import SESSION_TTL, User, session_user
from oms.domain.access import Action
from oms.settings import settings
from oms.store.db import Store
from oms.store.reads import stored_secret, utcnow
from oms.web.errors import LoginRequired, WebError
from oms.web.forms import read_form

log = logging.getLogger("oms.web")
SECRET_SETTING = "web_session_secret"
SESSION_COOKIE = "oms_session"
SESSION_MAX_AGE = int(SESSION_TTL.total_seconds())
SESSION_TOKEN = "sid"  # the key, in the signed cookie, of the session's token (oms.access.users)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Paths that never carry a dashboard session: the API keeps its bearer keys only.
_NO_SESSION = ("/api/", "/healthz", "/metrics", "/openapi.json", "/docs", "/redoc", "/static/")


def session_secret(store: Store) -> str:
    """The key dashboard session cookies are signed with."""
    return stored_secret(store, SECRET_SETTING)


class DashboardSessions:
    """Starlette's signed-cookie sessions (HttpOnly, SameSite=Lax; Secure whenever OMS_PUBLIC_URL is
    https), keyed once the store is reachable. The cookie names a session kept in the store."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store
        self.sessions: SessionMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_NO_SESSION):
            await self.app(scope, receive, send)
            return
        if self.sessions is None:
            key = await run_in_threadpool(session_secret, self.store)
            self.sessions = SessionMiddleware(
                self.app,
                secret_key=key,
                session_cookie=SESSION_COOKIE,
                max_age=SESSION_MAX_AGE,
                same_site="lax",
                https_only=settings().public_url.startswith("https://"),
            )
        await self.sessions(scope, receive, send)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def verify_csrf(request: Request) -> None:
    """Refuse a POST (or any unsafe method) that does not echo the session's CSRF token.

    A request whose session has no token is refused before its form is read: a visitor without a
    session (and its cookie) makes the server parse nothing.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = request.session.get("csrf")
    sent: Any = None
    if expected:
        sent = request.headers.get(CSRF_HEADER)
        if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            sent = (await read_form(request)).get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, str(expected)):
        raise WebError(
            403,
            "Form expired or forged",
            "This form did not carry the security token of your session (CSRF). Reload the page and try again.",
        )


def signed_in_user(request: Request) -> User | None:
    """The person whose session the cookie names, if that session is still open and they are enabled.

    Checked in the store on every request: a session ended by signing out, a password change or
    disabling the user is refused at once, whatever cookie is sent.
    """
    token = request.session.get(SESSION_TOKEN)
    if not isinstance(token, str):
        return None
    store: Store = request.app.state.store
    user = store.read(lambda c: session_user(c, token, utcnow()))
    if user is None:
        request.session.clear()
    return user


def current_user(request: Request) -> User:
    """The signed-in, still enabled person; signed-out visitors are sent to /login."""
    user = signed_in_user(request)
    if user is None:
        raise LoginRequired
    request.state.user = user
    return user


def require_user(action: Action) -> Callable[[User], User]:
    """A dependency: the signed-in person, who must be allowed `action` (else 403)."""

    def dependency(user: User = Depends(current_user)) -> User:
        if not user.principal.may(action):
            raise WebError(
                403,
                "Not allowed",
                f"Your role ({user.role.value}) may not {action.value.replace('_', ' ')}. "
                "Ask an administrator if you need this page.",
            )
        return user

    return dependency


# The signed-in person, allowed one action: a page's `user: Reader` asks for it (else login or 403).
Reader = Annotated[User, Depends(require_user(Action.READ))]
OrderChanger = Annotated[User, Depends(require_user(Action.CHANGE_ORDER))]
Fulfiller = Annotated[User, Depends(require_user(Action.FULFIL))]
Purchaser = Annotated[User, Depends(require_user(Action.PURCHASE))]
CatalogueEditor = Annotated[User, Depends(require_user(Action.CATALOGUE))]
SettingsEditor = Annotated[User, Depends(require_user(Action.SETTINGS))]


def may(user: User | None, action: Action | str) -> bool:
    """For templates: show a link or a button only to those who may use it."""
    return user is not None and user.principal.may(Action(action))
