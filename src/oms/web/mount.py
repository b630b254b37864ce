"""Put the dashboard on the app: sessions, /static, HTML error pages and every web router.

The pages themselves live with their areas (oms.orders.pages, oms.catalog.pages, ...); oms.app hands
their routers to `mount_web`, and every POST among them is CSRF-checked like every other dashboard form.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from oms.access.throttle import SignInThrottle
from oms.web.auth import DashboardSessions, verify_csrf
from oms.web.errors import LoginRequired, WebError
from oms.web.headers import SecurityHeaders
from oms.web.render import HERE, render


def mount_web(app: FastAPI, pages: Sequence[APIRouter]) -> None:
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
    for router in pages:
        app.include_router(router, include_in_schema=False, dependencies=[Depends(verify_csrf)])
