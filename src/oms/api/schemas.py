"""Request bodies. Unknown fields are refused; every bound is stated so the OpenAPI shows it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from oms.domain.access import Role
from oms.domain.allocation import RuleKey, Tier
from oms.domain.fulfillment import ShipPolicy
from oms.domain.policy import BackorderMode

MAX_QTY = 1_000_000
MAX_LINES = 500


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("must carry a time zone, e.g. 2026-01-31T09:00:00Z")
    return t


Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Qty = Annotated[int, Field(ge=1, le=MAX_QTY)]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("9999999999.99"), max_digits=12, decimal_places=2)]
UtcTime = Annotated[datetime, AfterValidator(_utc)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackorderPolicyIn(Body):
    mode: BackorderMode
    max_backorder_qty: Annotated[int, Field(ge=0, le=10**9)] | None = None
    max_qty_per_line: Annotated[int, Field(ge=0, le=10**9)] | None = None
    channels: Annotated[list[Code], Field(max_length=50)] = []
    preorder_ends_at: UtcTime | None = None
    release_date: date | None = None
    auto_cancel_after_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class ProductIn(Body):
    name: Name
    unit_price: Money
    lead_time_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    backorder_policy: BackorderPolicyIn | None = None


class CustomerIn(Body):
    name: Name
    email: Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
    tier: Tier = Tier.STANDARD


class AllocationRuleIn(Body):
    keys: Annotated[list[RuleKey], Field(min_length=1, max_length=5)]


class AdjustmentIn(Body):
    sku: Code
    qty_delta: Annotated[int, Field(ge=-MAX_QTY, le=MAX_QTY)]
    reason: Reason


class OrderLineIn(Body):
    sku: Code
    qty: Qty
    unit_price: Money | None = None


class OrderIn(Body):
    order_number: Code
    channel: Code
    customer_id: Code
    ship_policy: ShipPolicy = ShipPolicy.PARTIAL
    placed_at: UtcTime | None = None
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    lines: Annotated[list[OrderLineIn], Field(min_length=1, max_length=MAX_LINES)]


class CancelLineIn(Body):
    line_no: Annotated[int, Field(ge=1, le=MAX_LINES)]
    qty: Qty


class CancelIn(Body):
    reason: Reason
    lines: Annotated[list[CancelLineIn], Field(min_length=1, max_length=MAX_LINES)] | None = None


class PriorityIn(Body):
    priority: Annotated[int, Field(ge=-1000, le=1000)]


class PoLineIn(Body):
    sku: Code
    qty: Qty
    expected_date: date


class PurchaseOrderIn(Body):
    po_number: Code
    supplier: Name
    lines: Annotated[list[PoLineIn], Field(min_length=1, max_length=MAX_LINES)]


class PoLinePatch(Body):
    sku: Code
    expected_date: date | None = None
    qty: Qty | None = None


class PurchaseOrderPatch(Body):
    lines: Annotated[list[PoLinePatch], Field(min_length=1, max_length=MAX_LINES)]


class ReceiptLineIn(Body):
    sku: Code
    qty: Qty


class ReceiptIn(Body):
    grn_number: Code
    po_number: Code | None = None
    received_at: UtcTime | None = None
    lines: Annotated[list[ReceiptLineIn], Field(min_length=1, max_length=MAX_LINES)]


class PromiseLineIn(Body):
    sku: Code
    qty: Qty


class PromiseIn(Body):
    channel: Code
    customer_id: Code | None = None
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    lines: Annotated[list[PromiseLineIn], Field(min_length=1, max_length=MAX_LINES)]


class AdvanceIn(Body):
    carrier: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    tracking_number: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class KeyIn(Body):
    name: Name
    role: Role
    channel: Code | None = None


SortName = Literal["queue", "age"]
