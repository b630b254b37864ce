"""Sign in and sign out."""

from __future__ import annotations

import math
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from oms.access.throttle import SignInThrottle, Wait, forget_attempts
from oms.access.users import authenticate, end_session, start_session
from oms.store.reads import utcnow
from oms.store.uow import UnitOfWork
from oms.web.auth import SESSION_TOKEN, signed_in_user
from oms.web.render import PostedForm, redirect, render, store_of

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute URL or a protocol-relative one."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    if signed_in_user(request) is not None:
        return redirect(_safe_next(next))
    return render(request, "login.html", form={"next": _safe_next(next)})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, form: PostedForm) -> Response:
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    target = _safe_next(form.get("next"))
    kept = {"username": username, "next": target}
    if not username or not password:
        errors = {"username": "Enter your user name."} if not username else {"password": "Enter your password."}
        return render(request, "login.html", 401, form=kept, errors=errors)
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    address = request.client.host if request.client else "-"
    wait = throttle.admit(username, address)  # counted before the password is checked
    if wait is not None:
        page = render(request, "login.html", 429, form=kept, errors={"password": _wait_message(wait)})
        page.headers["Retry-After"] = str(wait.seconds)
        return page
    store = store_of(request)
    user = store.read(lambda c: authenticate(c, username, password))
    if user is None:
        errors = {"password": "Unknown user name or wrong password."}
        return render(request, "login.html", 401, form=kept, errors=errors)

    def signed_in(uow: UnitOfWork) -> str:
        forget_attempts(uow.conn, username, address)
        return start_session(uow.conn, user.id, utcnow())

    token = store.write(signed_in, actor=user.username)
    request.session.clear()  # a new session on sign-in: no fixation
    request.session[SESSION_TOKEN] = token
    request.session["csrf"] = secrets.token_urlsafe(32)
    return redirect(target)


def _wait_message(wait: Wait) -> str:
    if wait.user_name:
        return f"Too many failed sign-ins. Try again in {math.ceil(wait.seconds / 60)} minute(s)."
    return f"Too many failed sign-ins from your network. Try again in {wait.seconds} seconds."


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session in the store (a copy of the cookie is then worth nothing) and forget the cookie."""
    token = request.session.get(SESSION_TOKEN)
    if isinstance(token, str):
        store_of(request).write(lambda uow: end_session(uow.conn, token))
    request.session.clear()
    return redirect("/login")
