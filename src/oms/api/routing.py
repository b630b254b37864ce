"""What every route under /api/v1 shares: running one use case in one transaction, answering
created or found, reading, and the common query parameters."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from oms.api import idempotency as idem
from oms.api import schemas as s
from oms.api.app import AuthError, store_of
from oms.domain.access import Principal
from oms.domain.errors import NotFound
from oms.domain.policy import BackorderPolicy
from oms.store.uow import UnitOfWork

T = TypeVar("T")
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=2000)]
Filter = Annotated[str | None, Query(max_length=64, pattern=s.CODE_PATTERN)]


def write(
    request: Request,
    who: Principal,
    use_case: Callable[[UnitOfWork], T],
    answer: Callable[[T], tuple[int, Any]] | None = None,
    queue_on: Sequence[str] = (),
) -> T:
    """Run a use case in one transaction. Under an Idempotency-Key the response — the result itself,
    or `answer(result)` as (status, body) where the route shapes it — is recorded in the same
    transaction, so a process dying after the commit can never leave the key to run a second time."""
    claim = getattr(request.state, "idempotency", None)

    def transaction(uow: UnitOfWork) -> T:
        result = use_case(uow)
        if claim is not None and (answer is not None or isinstance(result, dict)):
            status = getattr(request.scope.get("route"), "status_code", None) or 200
            status, shown = answer(result) if answer is not None else (status, result)
            body = json.dumps(jsonable_encoder(shown), ensure_ascii=False, separators=(",", ":"))
            principal, key = claim
            idem.applied(uow.conn, principal, key, status, body)
        return result

    return store_of(request).write(transaction, actor=who.name, queue_on=queue_on)


def created_or_found(result: tuple[dict[str, Any], bool]) -> tuple[int, dict[str, Any]]:
    """201 for a new order or receipt, 200 when its number was already stored."""
    out, created = result
    return (201 if created else 200), out


def answered(run: Callable[[], tuple[dict[str, Any], bool]]) -> Response:
    """Run a create use case and serialize its answer in the same worker thread: 201 when it created
    something, 200 when the same request found it stored. (FastAPI would encode a returned dict in a
    second trip to a worker thread.)"""
    out, created = run()
    return JSONResponse(out, status_code=201 if created else 200)


def shaped(use_case: Callable[[UnitOfWork], Any], shape: Callable[[Any], Any]) -> Callable[[UnitOfWork], Any]:
    """A use case whose result the API shapes (inside the transaction, so an idempotent answer is the shaped one)."""
    return lambda uow: shape(use_case(uow))


def read(request: Request, query: Callable[[Connection], T]) -> T:
    return store_of(request).read(query)


def now() -> datetime:
    return datetime.now(UTC)


def policy(p: s.BackorderPolicyIn | None) -> BackorderPolicy | None:
    return p.to_policy() if p is not None else None


def as_shipment_id(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if not 1 <= n < 2**62:
        raise NotFound(f"No shipment {value}.")
    return n


def read_within_channel(
    request: Request,
    who: Principal,
    channel: str | None,
    listing: Callable[[Connection, str | None], dict[str, Any]],
) -> dict[str, Any]:
    """A listing as a channel key may see it: its own channel only; asking for another is an empty page."""
    scope = who.channel_scope
    if scope is not None and channel not in (None, scope):
        return {"items": [], "next_cursor": None}
    return read(request, lambda c: listing(c, scope or channel))


def refuse_channel_keys(who: Principal) -> None:
    if who.channel_scope is not None:
        raise AuthError(403, "Channel keys read orders, the queue and promises only.")
