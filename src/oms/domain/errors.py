"""Domain errors. Each gathers every problem at once and says what would be accepted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DomainError(Exception):
    """Base of every refusal the rules make."""

    status = 409
    title = "Conflict"
    type_ = "about:blank"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(DomainError):
    status = 404
    title = "Not found"
    type_ = "/problems/not-found"


class Invalid(DomainError):
    """The request is well-formed JSON but names something unknown or impossible."""

    status = 422
    title = "Unprocessable request"
    type_ = "/problems/invalid"


class Conflict(DomainError):
    status = 409
    title = "Conflict"
    type_ = "/problems/conflict"


class InsufficientStock(Conflict):
    """Some lines cannot be accepted: neither available now nor back-orderable."""

    type_ = "/problems/insufficient-stock"
    title = "Order cannot be accepted"


class IllegalTransition(Conflict):
    type_ = "/problems/illegal-transition"
    title = "Illegal state transition"


@dataclass
class Refusal:
    """One SKU an order asked for that cannot be accepted."""

    sku: str
    requested: int
    available: int
    backorderable: int
    reason: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "requested": self.requested,
            "available": self.available,
            "backorderable": self.backorderable,
            "reason": self.reason,
            **self.extra,
        }
