"""Domain errors. Each gathers every problem at once and says what would be accepted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DomainError(Exception):
    """Base of every refusal the rules make. How it reads over HTTP is the API's business (oms.http)."""

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(DomainError):
    """The request names something that does not exist."""


class Invalid(DomainError):
    """The request is well-formed but names something unknown or impossible."""


class Conflict(DomainError):
    """The request is valid, but the state of things does not allow it now."""


class InsufficientStock(Conflict):
    """Some lines cannot be accepted: neither available now nor back-orderable."""


class IllegalTransition(Conflict):
    """A step a state machine does not take from where it is."""


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
