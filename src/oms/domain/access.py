"""Who may do what. Roles as in API.md; a channel key acts only for its own channel."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # everything
    OPS = "ops"  # orders, queue, cancellations, priorities, fulfillment, stock counts, reads
    PURCHASING = "purchasing"  # purchase orders, receipts, shortfall, catalogue, reads
    CHANNEL = "channel"  # place and read its own channel's orders, ask for promises


class Action(StrEnum):
    READ = "read"  # catalogue, queue, orders, POs, shipments, reports
    PLACE_ORDER = "place_order"
    CHANGE_ORDER = "change_order"  # cancel, priority
    FULFIL = "fulfil"
    ADJUST_STOCK = "adjust_stock"
    PURCHASE = "purchase"  # POs and receipts
    CATALOGUE = "catalogue"  # products and customers
    SETTINGS = "settings"
    PROMISE = "promise"


# ops runs the warehouse and the order desk; purchasing buys and keeps the catalogue; promises
# reserve nothing, so every role may ask for them.
ALLOWED: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.OPS: frozenset(
        {Action.READ, Action.PLACE_ORDER, Action.CHANGE_ORDER, Action.FULFIL, Action.ADJUST_STOCK, Action.PROMISE}
    ),
    Role.PURCHASING: frozenset({Action.READ, Action.PURCHASE, Action.CATALOGUE, Action.PROMISE}),
    Role.CHANNEL: frozenset({Action.PLACE_ORDER, Action.PROMISE, Action.READ, Action.CHANGE_ORDER}),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's name, its role and, for channel keys, its channel."""

    name: str
    role: Role
    channel: str | None = None
    key_id: int | None = None  # the API key's id: the identity for idempotency keys and rate limits

    def may(self, action: Action) -> bool:
        return action in ALLOWED[self.role]

    @property
    def may_move_queue(self) -> bool:
        """Whether this caller may set what orders a back-order queue: a line's priority, placed_at or
        value. Channel keys may not; they could otherwise put their own orders ahead of older ones."""
        return self.may(Action.CHANGE_ORDER) and self.channel_scope is None

    @property
    def channel_scope(self) -> str | None:
        """The only channel this caller may see, or None for all."""
        return self.channel if self.role is Role.CHANNEL else None
