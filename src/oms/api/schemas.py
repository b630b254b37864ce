"""Request bodies. Unknown fields are refused; every bound is stated so the OpenAPI shows it."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from oms.domain import bounds
from oms.domain.access import Role
from oms.domain.allocation import RuleKey, Tier
from oms.domain.fulfillment import CancelReason, ShipPolicy
from oms.domain.policy import BackorderMode, BackorderPolicy

MAX_QTY = 1_000_000
MAX_LINES = 500


def _utc(t: datetime) -> datetime:
    problem = bounds.time_problem(t)
    if problem is not None:
        raise ValueError(problem)
    return t


def _in_range(d: date) -> date:
    problem = bounds.date_problem(d)
    if problem is not None:
        raise ValueError(problem)
    return d


CODE_PATTERN = bounds.CODE_PATTERN  # no '/': every code accepted can be named in a path
Code = Annotated[str, Field(min_length=1, max_length=bounds.MAX_CODE_LENGTH, pattern=CODE_PATTERN)]
# Free text: no control characters but tab and newlines (PostgreSQL refuses NUL in text outright).
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)]
# Integers are strict: "2", 2.0 and true are not quantities (API.md: quantities are integers).
Qty = Annotated[int, Field(ge=1, le=MAX_QTY, strict=True)]
LineNo = Annotated[int, Field(ge=1, le=MAX_LINES, strict=True)]
Money = Annotated[Decimal, Field(ge=0, le=bounds.MAX_MONEY, max_digits=12, decimal_places=2)]


def _date_text(v: object) -> object:
    # Without this a number would pass as a Unix time (1735689600 -> 2025-01-01).
    if not isinstance(v, str) or not _DATE.match(v):
        raise ValueError("must be a date as YYYY-MM-DD")
    return v


def _time_text(v: object) -> object:
    if not isinstance(v, str):
        raise ValueError("must be an RFC 3339 time, e.g. 2026-01-31T09:00:00Z")
    return v


_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
UtcTime = Annotated[datetime, BeforeValidator(_time_text), AfterValidator(_utc)]
Day = Annotated[date, BeforeValidator(_date_text), AfterValidator(_in_range)]
Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=TEXT_PATTERN)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackorderPolicyIn(Body):
    mode: BackorderMode
    max_backorder_qty: Annotated[int, Field(ge=0, le=10**9, strict=True)] | None = None
    max_qty_per_line: Annotated[int, Field(ge=0, le=10**9, strict=True)] | None = None
    channels: Annotated[list[Code], Field(max_length=50)] = []
    preorder_ends_at: UtcTime | None = None
    release_date: Day | None = None
    auto_cancel_after_days: Annotated[int, Field(ge=1, le=3650, strict=True)] | None = None

    def to_policy(self) -> BackorderPolicy:
        return BackorderPolicy(
            mode=self.mode,
            max_backorder_qty=self.max_backorder_qty,
            max_qty_per_line=self.max_qty_per_line,
            channels=tuple(self.channels),
            preorder_ends_at=self.preorder_ends_at,
            release_date=self.release_date,
            auto_cancel_after_days=self.auto_cancel_after_days,
        )


class ProductIn(Body):
    name: Name
    unit_price: Money
    lead_time_days: Annotated[int, Field(ge=0, le=3650, strict=True)] | None = None
    backorder_policy: BackorderPolicyIn | None = None


class CustomerIn(Body):
    name: Name
    email: Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$")]
    tier: Tier = Tier.STANDARD


class AllocationRuleIn(Body):
    keys: Annotated[list[RuleKey], Field(min_length=1, max_length=5)]


class AdjustmentIn(Body):
    sku: Code
    qty_delta: Annotated[int, Field(ge=-MAX_QTY, le=MAX_QTY, strict=True)]
    reason: Reason


class OrderLineIn(Body):
    sku: Code
    qty: Qty
    unit_price: Money | None = None


# The fields of an order body that set its lines' place in a back-order queue, by the rule key each
# feeds. Only callers who may change priorities may send them (Principal.may_move_queue). A rule key
# added to RuleKey must be entered here: tests/hostile/test_queue_jumping.py checks that none is missing.
QUEUE_FIELDS: dict[RuleKey, tuple[str, ...]] = {
    RuleKey.PRIORITY: ("priority",),
    RuleKey.PLACED_AT: ("placed_at",),
    RuleKey.ORDER_VALUE: ("lines[].unit_price",),  # the value is the sum of qty x unit_price
    RuleKey.CUSTOMER_TIER: (),  # the named customer's tier, kept by PUT /customers (catalogue roles)
    RuleKey.PROMISED_DATE: (),  # the first ETA the engine computed
}


class OrderIn(Body):
    order_number: Code
    channel: Code
    customer_id: Code
    ship_policy: ShipPolicy = ShipPolicy.PARTIAL
    placed_at: UtcTime | None = None
    priority: Annotated[int, Field(ge=-1000, le=1000, strict=True)] = 0
    lines: Annotated[list[OrderLineIn], Field(min_length=1, max_length=MAX_LINES)]

    def queue_fields_sent(self) -> list[str]:
        """The queue-setting fields (QUEUE_FIELDS) this body carries, as `errors` name them."""
        sent: list[str] = []
        for name in (f for fields in QUEUE_FIELDS.values() for f in fields):
            if name.startswith("lines[]."):
                attr = name.removeprefix("lines[].")
                sent += [f"lines.{i}.{attr}" for i, line in enumerate(self.lines) if attr in line.model_fields_set]
            elif name in self.model_fields_set:
                sent.append(name)
        return sent


class CancelLineIn(Body):
    line_no: LineNo
    qty: Qty


class CancelIn(Body):
    reason: Reason
    reason_code: CancelReason | None = Field(
        None, description="Why, for the reports: customer, aged_out or operations. Omitted: read from `reason`."
    )
    lines: Annotated[list[CancelLineIn], Field(min_length=1, max_length=MAX_LINES)] | None = None


class PriorityIn(Body):
    priority: Annotated[int, Field(ge=-1000, le=1000, strict=True)]


class PoLineIn(Body):
    sku: Code
    qty: Qty
    expected_date: Day


class PurchaseOrderIn(Body):
    po_number: Code
    supplier: Name
    lines: Annotated[list[PoLineIn], Field(min_length=1, max_length=MAX_LINES)]


class PoLinePatch(Body):
    sku: Code
    expected_date: Day | None = None
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
    priority: Annotated[int, Field(ge=-1000, le=1000, strict=True)] = 0
    lines: Annotated[list[PromiseLineIn], Field(min_length=1, max_length=MAX_LINES)]


class AdvanceIn(Body):
    carrier: Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT_PATTERN)] | None = None
    tracking_number: Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT_PATTERN)] | None = None


class KeyIn(Body):
    name: Name
    role: Role
    channel: Code | None = None


SortName = Literal["queue", "age"]
