"""Put the dashboard on the app: sessions, /static, HTML error pages and every web router.

To add a page module, give it a module-level `router` and add its name to WEB_MODULES (one line);
its POSTs are then CSRF-checked like every other dashboard form.
"""

from __future__ import annotations

import importlib
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from .auth import DashboardSessions, verify_csrf
from .errors import LoginRequired, WebError
from .headers import SecurityHeaders
from .render import HERE, render
from .throttle import SignInThrottle

WEB_MODULES = [
    "oms.web.session",
    "oms.web.overview",
    "oms.web.backorders",
    "oms.web.orders",
    "oms.web.fulfillment",
    "oms.web.purchasing",
    "oms.web.products",
    "oms.web.settings",
    "oms.web.reports",
]


def mount_web(app: FastAPI) -> None:
    """Called once by create_app: the dashboard lives at /, the API stays under /api/v1."""
    app.add_middleware(DashboardSessions, store=app.state.store)
    app.add_middleware(SecurityHeaders)  # outermost: every page gets the headers, refusals included
    app.state.sign_in_throttle = SignInThrottle(app.state.store)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    async def to_login(request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"
        return RedirectResponse("/login" + ("" if target == "/" else f"?next={quote(target)}"), status_code=303)

    async def web_error(request: Request, exc: Exception) -> HTMLResponse:
        assert isinstance(exc, WebError)
        return render(request, "error.html", exc.status, title=exc.title, detail=exc.detail)

    app.add_exception_handler(LoginRequired, to_login)
    app.add_exception_handler(WebError, web_error)
    for name in WEB_MODULES:
        module = importlib.import_module(name)
        app.include_router(module.router, include_in_schema=False, dependencies=[Depends(verify_csrf)])
