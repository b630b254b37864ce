"""Sign in and sign out."""

from __future__ import annotations

import math
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from .render import form_data, redirect, render, store_of
from .throttle import SignInThrottle
from .users import authenticate

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute URL or a protocol-relative one."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    if isinstance(request.session.get("uid"), int):
        return redirect(_safe_next(next))
    return render(request, "login.html", form={"next": _safe_next(next)})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, form: dict[str, Any] = Depends(form_data)) -> Response:
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    target = _safe_next(form.get("next"))
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    address = request.client.host if request.client else "-"
    wait = throttle.wait_seconds(username, address)
    if wait:
        errors = {"password": f"Too many failed sign-ins. Try again in {math.ceil(wait / 60)} minute(s)."}
        page = render(request, "login.html", 429, form={"username": username, "next": target}, errors=errors)
        page.headers["Retry-After"] = str(wait)
        return page
    user = store_of(request).read(lambda c: authenticate(c, username, password)) if username and password else None
    if user is None:
        errors = {"password": "Unknown user name or wrong password."}
        if not username:
            errors = {"username": "Enter your user name."}
        else:
            throttle.failed(username, address)
        return render(request, "login.html", 401, form={"username": username, "next": target}, errors=errors)
    throttle.succeeded(username)
    request.session.clear()  # a new session on sign-in: no fixation
    request.session["uid"] = user.id
    request.session["csrf"] = secrets.token_urlsafe(32)
    return redirect(target)


@router.post("/logout")
def logout(request: Request) -> Response:
    request.session.clear()
    return redirect("/login")
