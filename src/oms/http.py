"""How the domain's refusals read over HTTP: one status, title and problem type per kind of refusal,
for the API's problem details and the dashboard's pages alike (the domain itself knows no HTTP)."""

from __future__ import annotations

from typing import NamedTuple

from oms.domain.errors import Conflict, DomainError, IllegalTransition, InsufficientStock, Invalid, NotFound


class Reading(NamedTuple):
    status: int
    title: str
    type_: str


# Most specific first: a refusal reads as the first class it is an instance of.
READINGS: list[tuple[type[Exception], Reading]] = [
    (NotFound, Reading(404, "Not found", "/problems/not-found")),
    (Invalid, Reading(422, "Unprocessable request", "/problems/invalid")),
    (InsufficientStock, Reading(409, "Order cannot be accepted", "/problems/insufficient-stock")),
    (IllegalTransition, Reading(409, "Illegal state transition", "/problems/illegal-transition")),
    (Conflict, Reading(409, "Conflict", "/problems/conflict")),
    (DomainError, Reading(409, "Conflict", "about:blank")),
]


def reading(exc: DomainError) -> Reading:
    """The HTTP status, title and problem type a refusal is answered with."""
    return next(r for kind, r in READINGS if isinstance(exc, kind))


def status_of(exc: DomainError) -> int:
    return reading(exc).status
