"""Order lines, shipments and their states (PRODUCT.md rules 6-8)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from oms.domain.errors import Conflict, IllegalTransition, Invalid


class ShipPolicy(StrEnum):
    PARTIAL = "partial"  # allocated units are released into a shipment at once
    COMPLETE = "complete"  # nothing is released until every line is fully allocated


class ShipmentStatus(StrEnum):
    PICK = "pick"  # released to the warehouse, to be picked from the shelf
    PACK = "pack"  # picked, being packed; its units can no longer be cancelled
    AWAITING_SHIPMENT = "awaiting_shipment"  # packed, waiting for the carrier
    DISPATCHED = "dispatched"  # handed to the carrier; stock has left the building
    CANCELLED = "cancelled"  # every unit was cancelled while in pick


NEXT_STATUS: dict[ShipmentStatus, ShipmentStatus] = {
    ShipmentStatus.PICK: ShipmentStatus.PACK,
    ShipmentStatus.PACK: ShipmentStatus.AWAITING_SHIPMENT,
    ShipmentStatus.AWAITING_SHIPMENT: ShipmentStatus.DISPATCHED,
}


def advance(status: ShipmentStatus, carrier: str | None, tracking_number: str | None) -> ShipmentStatus:
    """The one legal next state of a shipment; dispatch needs a carrier and a tracking number."""
    nxt = NEXT_STATUS.get(status)
    if nxt is None:
        raise IllegalTransition(
            f"A shipment in state '{status}' cannot advance; only {', '.join(NEXT_STATUS)} can, one step at a time.",
            [{"field": "status", "value": str(status), "reason": "terminal state"}],
        )
    if nxt is ShipmentStatus.DISPATCHED:
        missing = [f for f, v in (("carrier", carrier), ("tracking_number", tracking_number)) if not v]
        if missing:
            raise Invalid(
                "Dispatch needs the carrier and the tracking number.",
                [{"field": f, "reason": "required to dispatch"} for f in missing],
            )
    return nxt


class OrderStatus(StrEnum):
    BACKORDERED = "backordered"  # some units still wait in a queue
    IN_FULFILLMENT = "in_fulfillment"  # none wait, some not yet dispatched
    DISPATCHED = "dispatched"  # every non-cancelled unit dispatched
    CANCELLED = "cancelled"  # every unit cancelled


@dataclass(frozen=True)
class LineQty:
    """The units of one order line by where they are. qty = allocated + backordered + shipped + cancelled."""

    line_no: int
    sku: str
    qty: int
    allocated_qty: int  # allocated and not yet dispatched, whether released or not
    backordered_qty: int
    shipped_qty: int
    cancelled_qty: int
    released_qty: int  # allocated units in open shipments (pick, pack, awaiting shipment)

    @property
    def unreleased_qty(self) -> int:
        return self.allocated_qty - self.released_qty


def order_status(lines: Sequence[LineQty]) -> OrderStatus:
    if any(line.backordered_qty > 0 for line in lines):
        return OrderStatus.BACKORDERED
    if all(line.cancelled_qty == line.qty for line in lines):
        return OrderStatus.CANCELLED
    if all(line.shipped_qty == line.qty - line.cancelled_qty for line in lines):
        return OrderStatus.DISPATCHED
    return OrderStatus.IN_FULFILLMENT


def units_to_release(ship_policy: ShipPolicy, lines: Sequence[LineQty], held_skus: frozenset[str]) -> dict[int, int]:
    """Allocated units to put into a new shipment now, by line number.

    `held_skus` are SKUs whose release date has not come. Ship-complete orders release nothing
    until every line is fully allocated and none is held.
    """
    if ship_policy is ShipPolicy.COMPLETE and any(
        line.backordered_qty > 0 or (line.unreleased_qty > 0 and line.sku in held_skus) for line in lines
    ):
        return {}
    return {
        line.line_no: line.unreleased_qty for line in lines if line.unreleased_qty > 0 and line.sku not in held_skus
    }


class CancelReason(StrEnum):
    """Why units were cancelled, as a code the reports count (the free-text reason goes with it)."""

    CUSTOMER = "customer"  # the customer asked, through a channel or their order link
    AGED_OUT = "aged_out"  # waited longer than the SKU's policy allows (the scheduled job)
    OPERATIONS = "operations"  # stock errors, discontinued items, fraud, duplicates, anything else


_AGED_WORDS = ("aged", "auto-cancel", "auto cancel", "autocancel", "auto_cancel", "expired", "too long", "older than")
_CUSTOMER_WORDS = ("customer", "buyer", "client", "changed mind", "changed their mind", "no longer want")


def reason_code_of(reason: str | None) -> CancelReason:
    """The code of a cancellation sent with a free-text reason only.

    `aged_out` when the text speaks of age or automatic cancellation ("aged", "auto-cancel",
    "expired", "too long", "older than"); else `customer` when it names the customer or buyer
    ("customer", "buyer", "client", "changed mind", "no longer want"); else `operations`. The
    product's own cancellations (the aged-out job, the customer's link) name their code.
    """
    text = (reason or "").lower()
    if any(w in text for w in _AGED_WORDS):
        return CancelReason.AGED_OUT
    if any(w in text for w in _CUSTOMER_WORDS):
        return CancelReason.CUSTOMER
    return CancelReason.OPERATIONS


@dataclass(frozen=True)
class CancelPlan:
    """Where the cancelled units of one line come from, in the order they are taken."""

    line_no: int
    from_backordered: int
    from_unreleased: int
    from_pick: int  # units in shipments still in pick

    @property
    def total(self) -> int:
        return self.from_backordered + self.from_unreleased + self.from_pick

    @property
    def freed_allocated(self) -> int:
        return self.from_unreleased + self.from_pick


def plan_cancel(line: LineQty, qty: int | None, in_pick: int) -> CancelPlan:
    """Cancel `qty` outstanding units (all when None): back-ordered first, then allocated ones.

    Units packed or dispatched cannot be cancelled.
    """
    cancellable = line.backordered_qty + line.unreleased_qty + in_pick
    want = cancellable if qty is None else qty
    if want > cancellable:
        raise Conflict(
            f"Line {line.line_no} ({line.sku}) has {cancellable} cancellable units; {want} were asked. "
            "Units already packed or dispatched cannot be cancelled.",
            [{"line_no": line.line_no, "sku": line.sku, "requested": want, "cancellable": cancellable}],
        )
    b = min(want, line.backordered_qty)
    u = min(want - b, line.unreleased_qty)
    return CancelPlan(line.line_no, b, u, want - b - u)
