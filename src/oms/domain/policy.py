"""Back-order policy and placement (PRODUCT.md rules 1-3).

Each line takes what is available now; the rest is back-ordered when the SKU's policy allows it.
If any line cannot be accepted the whole order is refused, naming every refused SKU at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from oms.domain.bounds import MAX_SKU_UNITS
from oms.domain.errors import InsufficientStock, Refusal

UNBOUNDED = 10**12


class BackorderMode(StrEnum):
    NEVER = "never"
    ALWAYS = "always"
    WHEN_INCOMING = "when_incoming"  # only units covered by incoming supply not yet promised to the queue
    PREORDER = "preorder"  # accepted until preorder_ends_at; nothing released before release_date


@dataclass(frozen=True)
class BackorderPolicy:
    mode: BackorderMode = BackorderMode.ALWAYS
    max_backorder_qty: int | None = None  # cap on the SKU's total pending back-ordered units
    max_qty_per_line: int | None = None  # cap on the back-ordered units of one order line
    channels: tuple[str, ...] = ()  # channels allowed to back order; empty = all
    preorder_ends_at: datetime | None = None
    release_date: date | None = None
    auto_cancel_after_days: int | None = None

    def holds_release(self, today: date) -> bool:
        """True while units of this SKU may not be released for picking."""
        return self.release_date is not None and today < self.release_date


DEFAULT_POLICY = BackorderPolicy()


def policy_from_json(data: Mapping[str, Any] | None) -> BackorderPolicy | None:
    """A policy as stored (JSON), or None when none is set."""
    if data is None:
        return None
    ends = data.get("preorder_ends_at")
    release = data.get("release_date")
    return BackorderPolicy(
        mode=BackorderMode(data.get("mode", "always")),
        max_backorder_qty=data.get("max_backorder_qty"),
        max_qty_per_line=data.get("max_qty_per_line"),
        channels=tuple(data.get("channels") or ()),
        preorder_ends_at=datetime.fromisoformat(ends) if ends else None,
        release_date=date.fromisoformat(release) if release else None,
        auto_cancel_after_days=data.get("auto_cancel_after_days"),
    )


def policy_to_json(p: BackorderPolicy) -> dict[str, Any]:
    """A policy as stored and shown: JSON values, times in RFC 3339 UTC."""
    return {
        "mode": p.mode.value,
        "max_backorder_qty": p.max_backorder_qty,
        "max_qty_per_line": p.max_qty_per_line,
        "channels": list(p.channels),
        "preorder_ends_at": p.preorder_ends_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if p.preorder_ends_at
        else None,
        "release_date": p.release_date.isoformat() if p.release_date else None,
        "auto_cancel_after_days": p.auto_cancel_after_days,
    }


@dataclass(frozen=True)
class SkuStock:
    """What placement needs to know of one SKU, read under its lock."""

    sku: str
    on_hand: int
    allocated: int
    backordered: int
    incoming: int
    policy: BackorderPolicy = field(default_factory=BackorderPolicy)

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.allocated)


@dataclass(frozen=True)
class LineRequest:
    line_no: int
    sku: str
    qty: int


@dataclass(frozen=True)
class LineDecision:
    line_no: int
    sku: str
    qty: int
    allocate_qty: int
    backorder_qty: int


def backorder_room(stock: SkuStock, channel: str, now: datetime) -> tuple[int, str | None]:
    """How many more units of this SKU may be back-ordered now, and why not more."""
    policy = stock.policy
    if policy.channels and channel not in policy.channels:
        return 0, "channel_not_allowed"
    match policy.mode:
        case BackorderMode.NEVER:
            return 0, "backorder_not_allowed"
        case BackorderMode.ALWAYS:
            room, why = UNBOUNDED, None
        case BackorderMode.WHEN_INCOMING:
            room, why = max(0, stock.incoming - stock.backordered), "not_covered_by_incoming"
        case BackorderMode.PREORDER:
            if policy.preorder_ends_at is not None and now >= policy.preorder_ends_at:
                return 0, "preorder_closed"
            room, why = UNBOUNDED, None
    if policy.max_backorder_qty is not None:
        cap = max(0, policy.max_backorder_qty - stock.backordered)
        if cap < room:
            room, why = cap, "max_backorder_qty"
    ceiling = max(0, MAX_SKU_UNITS - stock.backordered)  # what the SKU's counter can hold
    if ceiling < room:
        room, why = ceiling, "sku_backorder_limit"
    return room, why


def _line_room(stock: SkuStock, channel: str, now: datetime) -> tuple[int, str | None]:
    """Back-order room for one line: the SKU's room, capped by the per-line limit."""
    room, why = backorder_room(stock, channel, now)
    per_line = stock.policy.max_qty_per_line
    if per_line is not None and per_line < room:
        return per_line, "max_qty_per_line"
    return room, why


def decide_placement(
    lines: Sequence[LineRequest], stock: Mapping[str, SkuStock], channel: str, now: datetime
) -> list[LineDecision]:
    """Split each line into units allocated now and units back-ordered, or refuse the order.

    Lines of the same SKU share its availability and back-order room in line order.
    """
    left = dict(stock)
    decisions: list[LineDecision] = []
    refused: set[str] = set()
    for line in lines:
        s = left[line.sku]
        take = min(line.qty, s.available)
        rest = line.qty - take
        if rest > _line_room(s, channel, now)[0]:
            refused.add(line.sku)
            continue
        decisions.append(LineDecision(line.line_no, line.sku, line.qty, take, rest))
        left[line.sku] = replace(s, allocated=s.allocated + take, backordered=s.backordered + rest)
    short: dict[str, Refusal] = {}
    for sku in sorted(refused):
        room, why = _line_room(stock[sku], channel, now)
        short[sku] = Refusal(
            sku=sku,
            requested=sum(line.qty for line in lines if line.sku == sku),
            available=stock[sku].available,
            backorderable=room,
            reason=why or "insufficient_stock",
        )
    if short:
        skus = ", ".join(sorted(short))
        raise InsufficientStock(
            f"Not enough stock and back-ordering not allowed for: {skus}. "
            "Order at most the available units plus what each SKU's back-order policy allows.",
            [r.as_dict() for r in short.values()],
        )
    return decisions
