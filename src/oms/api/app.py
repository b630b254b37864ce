"""The FastAPI application: wiring, authentication and problem details (RFC 9457)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from oms.access import keys
from oms.api.guard import MAX_BODY_BYTES, Guard, GuardSettings, bearer_token
from oms.api.models import Health, answers
from oms.api.problems import PROBLEM, problem_body
from oms.api.ratelimit import RateLimiter, limit_from_env
from oms.domain.access import Action, Principal
from oms.domain.errors import DomainError
from oms.http import reading
from oms.store.db import Store, make_engine

log = logging.getLogger("oms.api")
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>oms API</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui" data-openapi-url="/openapi.json"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body></html>
"""


def problem(
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    request: Request | None = None,
) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    body = problem_body(status, title, detail, errors, type_, request_id)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


class AuthError(Exception):
    def __init__(self, status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        self.status = status
        self.detail = detail
        self.errors = errors


def store_of(request: Request) -> Store:
    """The store the app was made with."""
    store: Store = request.app.state.store
    return store


async def current_principal(request: Request) -> Principal:
    """The caller: as the Guard found it (from the process's key cache, no transaction), else looked up.

    Async, as is `require`: a dependency that is a plain function costs a hop to a worker thread.
    """
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise AuthError(401, "Send an API key as 'Authorization: Bearer <key>'. Keys are made with `oms keys create`.")
    found: Principal | None
    if getattr(request.state, "auth_checked", False):  # the Guard looked the key up already
        found = request.state.principal
    else:
        cache: keys.KeyCache = request.app.state.keys
        found = cache.fresh(token) or await run_in_threadpool(cache.authenticate, token)
    if found is None:
        raise AuthError(401, "The API key is unknown or revoked.")
    request.state.principal = found
    return found


def require(action: Action) -> Callable[[Principal], Awaitable[Principal]]:
    async def dependency(p: Principal = Depends(current_principal)) -> Principal:
        if not p.may(action):
            raise AuthError(403, f"Role '{p.role}' may not {action.value.replace('_', ' ')}.")
        return p

    return dependency


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


def operation_id(route: APIRoute) -> str:
    """An operation's id in the OpenAPI document: its handler's name (`place_order`), which every
    area keeps unique and stable, so generated clients get short, lasting function names."""
    return route.name


def create_api(
    store: Store | None = None, *, rate_limit_per_minute: int | None = None, max_body_bytes: int = MAX_BODY_BYTES
) -> FastAPI:
    """The app's frame over a store, without routes: the Guard (authentication, the rate limit, body caps,
    idempotency), problem details for every error, /healthz and /docs. oms.app puts the areas' routes on it.
    The rate limit defaults to OMS_RATE_LIMIT_PER_MINUTE (0: off)."""
    app = FastAPI(
        title="oms",
        version="1.0.0",
        description="Order management with back orders at its heart: orders, the back-order queue, "
        "replenishment and allocation, fulfillment.",
        docs_url=None,
        redoc_url=None,  # ReDoc loads its script from a CDN: /docs serves the vendored Swagger UI instead
        generate_unique_id_function=operation_id,
    )
    app.state.store = store or Store(make_engine())

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Interactive API docs, served from vendored Swagger UI files (no CDN) and started by a file,
        not an inline script, so the page keeps the dashboard's Content-Security-Policy."""
        return HTMLResponse(DOCS_PAGE)

    per_minute = limit_from_env() if rate_limit_per_minute is None else rate_limit_per_minute
    app.state.keys = keys.KeyCache(app.state.store)
    guard = GuardSettings(key_cache=app.state.keys, max_body_bytes=max_body_bytes, limiter=RateLimiter(per_minute))
    app.add_middleware(Guard, store=app.state.store, settings=guard)
    app.state.guard_settings = guard

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        status, title, type_ = reading(exc)
        return problem(status, title, exc.detail, exc.errors, type_, request=request)

    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="oms"'} if exc.status == 401 else None
        title = "Unauthorized" if exc.status == 401 else "Forbidden"
        return problem(exc.status, title, exc.detail, exc.errors, headers=headers, request=request)

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
        headers = getattr(exc, "headers", None)
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is no {request.url.path}; the API lives under /api/v1 (see /openapi.json)."
        elif exc.status_code == 405:
            # Starlette names only the first route that matched the path; a path has one per method here.
            methods: set[str] = set()
            paths = request.app.openapi()["paths"]
            exact = paths.get(request.url.path)  # a literal route wins over a template, as in routing
            for template, operations in {request.url.path: exact}.items() if exact else paths.items():
                if compile_path(template)[0].match(request.url.path):
                    methods |= {m.upper() for m in operations}
            allowed = ", ".join(sorted(methods)) or (headers or {}).get("Allow", "")
            headers = {**(headers or {}), "Allow": allowed}
            detail = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed or 'none'}."
        return problem(exc.status_code, str(exc.detail), detail, request=request, headers=headers)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error request_id=%s", getattr(request.state, "request_id", "-"))
        return problem(
            500, "Internal error", "Something went wrong on our side; quote the request_id.", request=request
        )

    @app.get("/healthz", tags=["health"], responses=answers(Health))
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
