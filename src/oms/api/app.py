"""The FastAPI application: wiring, authentication and problem details (RFC 9457)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from oms.domain.access import Action, Principal
from oms.domain.errors import DomainError
from oms.services import keys
from oms.store.db import Store, make_engine

log = logging.getLogger("oms.api")
PROBLEM = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    request: Request | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    if request is not None and getattr(request.state, "request_id", None):
        body["request_id"] = request.state.request_id
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


class AuthError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail


def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "Send an API key as 'Authorization: Bearer <key>'. Keys are made with `oms keys create`.")
    store: Store = request.app.state.store
    found = store.read(lambda conn: keys.authenticate(conn, token.strip()))
    if found is None:
        raise AuthError(401, "The API key is unknown or revoked.")
    request.state.principal = found
    return found


def require(action: Action) -> Callable[[Principal], Principal]:
    def dependency(p: Principal = Depends(current_principal)) -> Principal:
        if not p.may(action):
            raise AuthError(403, f"Role '{p.role}' may not {action.value.replace('_', ' ')}.")
        return p

    return dependency


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def create_app(store: Store | None = None) -> FastAPI:
    app = FastAPI(
        title="oms",
        version="1.0.0",
        description="Order management with back orders at its heart: orders, the back-order queue, "
        "replenishment and allocation, fulfillment.",
    )
    app.state.store = store or Store(make_engine())

    @app.middleware("http")
    async def request_id(request: Request, call_next: Callable[[Request], Any]) -> Any:
        request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        return response

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, exc.errors, exc.type_, request=request)

    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="oms"'} if exc.status == 401 else None
        title = "Unauthorized" if exc.status == 401 else "Forbidden"
        return problem(exc.status, title, exc.detail, headers=headers, request=request)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _loc(tuple(e.get("loc", ()))),
                "reason": e.get("msg", "invalid"),
                **({"accepted": e["ctx"]["expected"]} if "expected" in (e.get("ctx") or {}) else {}),
            }
            for e in exc.errors()
        ]
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem(
            422,
            "Invalid request",
            f"The request has invalid fields: {fields}.",
            errors,
            "/problems/validation",
            request=request,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            exc.status_code, str(exc.detail), str(exc.detail), request=request, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error request_id=%s", getattr(request.state, "request_id", "-"))
        return problem(
            500, "Internal error", "Something went wrong on our side; quote the request_id.", request=request
        )

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    from .routes import router

    app.include_router(router, prefix="/api/v1")
    return app
