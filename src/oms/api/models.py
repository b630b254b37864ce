"""The answers of the API as the OpenAPI document names them: one model per JSON shape.

They describe, field for field, the dicts the views build (order_json,
product_json, po_json, shipment_json, list_backorders ...), so a client generated from
/openapi.json gets typed objects. They are the document's, not the runtime's: a route declares its
model with `responses=answers(Model)` and still returns its dict, serialized as before, so no answer
changes by a byte and none is validated on the way out. Errors are `oms.api.problems.Problem`.
tests/api/test_response_models.py holds every answer to its model, key for key.

Money is a decimal string ("149.00"), times RFC 3339 in UTC, dates YYYY-MM-DD (API.md). A field that
can be null is required all the same: the key is always there. A field with a default is one the
answer may leave out (which one, the model says).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from oms.domain.allocation import RuleKey, Tier
from oms.domain.fulfillment import CancelReason, OrderStatus, ShipmentStatus, ShipPolicy
from oms.domain.policy import BackorderMode

Money = Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]{2}$", examples=["149.00"], description="A decimal string.")]
Count = Annotated[int, Field(ge=0)]
Rate = Annotated[float | None, Field(description="A share from 0 to 1 (4 places); null when nothing was counted.")]
Hours = Annotated[float | None, Field(description="Hours (2 places); null when nothing was counted.")]

T = TypeVar("T", bound=BaseModel)


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


_STATUS_TEXT = {200: "OK", 201: "Created"}


def answers(model: type[BaseModel], status: int = 200, again: str | None = None) -> dict[int | str, dict[str, Any]]:
    """A route's success answer for the document (`responses=`): `model`, under `status`, and under
    200 as well with the meaning `again` when the route may also answer that. The route still
    returns its dict; FastAPI serializes it as before (oms.api.openapi keeps the model's schema alone)."""
    out: dict[int | str, dict[str, Any]] = {status: {"model": model, "description": _STATUS_TEXT[status]}}
    if again is not None:
        out[200] = {"model": model, "description": again}
    return out


class Page(BaseModel, Generic[T]):
    """One page of a listing, in a stable order. Each listing names its own: OrderPage, ProductPage ..."""

    items: list[T]
    next_cursor: str | None = Field(description="Send it as `cursor` for the next page; null on the last page.")


class Items(BaseModel, Generic[T]):
    """A whole listing, in one answer (no paging)."""

    items: list[T]


# ---- examples (also the document's examples of each operation: oms.api.openapi) ------------------

POLICY_EXAMPLE: dict[str, Any] = {
    "mode": "always",
    "max_backorder_qty": None,
    "max_qty_per_line": None,
    "channels": [],
    "preorder_ends_at": None,
    "release_date": None,
    "auto_cancel_after_days": None,
}
PRODUCT_EXAMPLE: dict[str, Any] = {
    "sku": "TENT-2P",
    "name": "Two-person tent",
    "unit_price": "149.00",
    "lead_time_days": 21,
    "backorder_policy": None,
    "effective_backorder_policy": POLICY_EXAMPLE,
    "stock": {"on_hand": 2, "allocated": 2, "available": 0, "backordered": 3, "incoming": 10},
    "version": 3,
}
CUSTOMER_EXAMPLE: dict[str, Any] = {
    "customer_id": "ALICE",
    "name": "Alice",
    "email": "alice@example.com",
    "tier": "gold",
}
ORDER_EXAMPLE: dict[str, Any] = {
    "order_number": "SO-1001",
    "channel": "web",
    "customer_id": "ALICE",
    "status": "backordered",
    "ship_policy": "partial",
    "placed_at": "2026-11-20T09:30:00Z",
    "priority": 0,
    "order_value": "745.00",
    "lines": [
        {
            "line_no": 1,
            "sku": "TENT-2P",
            "qty": 5,
            "unit_price": "149.00",
            "allocated_qty": 2,
            "backordered_qty": 3,
            "shipped_qty": 0,
            "cancelled_qty": 0,
            "eta": "2026-12-15",
            "promised_date": "2026-12-15",
        }
    ],
}
BACKORDER_LINE_EXAMPLE: dict[str, Any] = {
    "order_number": "SO-1001",
    "channel": "web",
    "line_no": 1,
    "sku": "TENT-2P",
    "customer_id": "ALICE",
    "customer_tier": "gold",
    "placed_at": "2026-11-20T09:30:00Z",
    "qty": 5,
    "backordered_qty": 3,
    "queue_position": 1,
    "eta": "2026-12-15",
    "age_days": 6,
    "priority": 0,
}
PO_EXAMPLE: dict[str, Any] = {
    "po_number": "PO-77",
    "supplier": "Acme",
    "status": "open",
    "created_at": "2026-11-21T08:00:00Z",
    "overdue": False,
    "lines": [
        {"line_no": 1, "sku": "TENT-2P", "qty": 10, "received_qty": 0, "open_qty": 10, "expected_date": "2026-12-15"}
    ],
    "version": 1,
}
RECEIPT_EXAMPLE: dict[str, Any] = {
    "grn_number": "GRN-5",
    "po_number": "PO-77",
    "received_at": "2026-12-14T10:00:00Z",
    "lines": [{"sku": "TENT-2P", "qty": 10}],
    "po_lines": [{"sku": "TENT-2P", "received": 10, "against_po": 10, "over": 0, "unplanned": 0}],
    "allocations": [{"order_number": "SO-1001", "line_no": 1, "sku": "TENT-2P", "qty": 3}],
    "unallocated": [{"sku": "TENT-2P", "qty": 7}],
}
SHIPMENT_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "channel": "web",
    "order_number": "SO-1001",
    "status": "pick",
    "lines": [{"line_no": 1, "sku": "TENT-2P", "qty": 2}],
    "carrier": None,
    "tracking_number": None,
    "created_at": "2026-11-20T09:30:00Z",
    "updated_at": "2026-11-20T09:30:00Z",
}


# ---- the catalogue and the settings -------------------------------------------------------------


class BackorderPolicy(BaseModel):
    """A back-order policy as stored and applied; see `BackorderPolicyIn` for what each field means."""

    model_config = _examples(POLICY_EXAMPLE)

    mode: BackorderMode
    max_backorder_qty: int | None
    max_qty_per_line: int | None
    channels: list[str] = Field(description="The channels that may back-order; empty: every channel.")
    preorder_ends_at: datetime | None
    release_date: date | None
    auto_cancel_after_days: int | None


class Stock(BaseModel):
    """A SKU's units: `available` = on_hand - allocated; `incoming` = open purchase-order units."""

    on_hand: int
    allocated: int
    available: int
    backordered: int
    incoming: int


class Product(BaseModel):
    """A product with its stock and version (the `ETag`)."""

    model_config = _examples(PRODUCT_EXAMPLE)

    sku: str
    name: str
    unit_price: Money
    lead_time_days: int | None
    backorder_policy: BackorderPolicy | None = Field(description="The product's own policy; null: the default.")
    effective_backorder_policy: BackorderPolicy = Field(description="The policy that applies: its own, or the default.")
    stock: Stock
    version: int


class ProductPage(Page[Product]):
    """Products by SKU."""


class Customer(BaseModel):
    model_config = _examples(CUSTOMER_EXAMPLE)

    customer_id: str
    name: str
    email: str
    tier: Tier


class AllocationRule(BaseModel):
    """The order of every back-order queue: these keys, then placed_at, order_number, line_no."""

    model_config = _examples({"keys": ["priority", "placed_at"]})

    keys: list[RuleKey]


class QueueMove(BaseModel):
    """A waiting line whose place in its SKU's queue the proposed rule would change."""

    order_number: str
    line_no: int
    sku: str
    before: int
    after: int


class AllocationRulePreview(BaseModel):
    """What a proposed rule would change; nothing is committed. `changes` holds at most 500 moves."""

    keys: list[RuleKey]
    lines_waiting: int
    lines_moved: int
    changes: list[QueueMove]
    truncated: bool


class Allocation(BaseModel):
    """Units given to a waiting order line."""

    order_number: str
    line_no: int
    sku: str
    qty: int


class StockAdjustment(BaseModel):
    """A stock count applied, and the waiting lines the units found went to."""

    model_config = _examples(
        {
            "sku": "TENT-2P",
            "qty_delta": 2,
            "on_hand": 4,
            "allocations": [{"order_number": "SO-1001", "line_no": 1, "sku": "TENT-2P", "qty": 2}],
        }
    )

    sku: str
    qty_delta: int
    on_hand: int
    allocations: list[Allocation]


# ---- orders and the back-order queue ------------------------------------------------------------


class OrderLine(BaseModel):
    line_no: int
    sku: str
    qty: int
    unit_price: Money
    allocated_qty: int = Field(description="Allocated units not yet dispatched.")
    backordered_qty: int = Field(description="Units waiting in the SKU's back-order queue.")
    shipped_qty: int
    cancelled_qty: int
    eta: date | None = Field(description="When the waiting units are expected; null when none wait or unknown.")
    promised_date: date | None = Field(description="The first ETA given; null if the line never waited.")


class Order(BaseModel):
    """An order. `status`: backordered (some units wait), in_fulfillment (none wait, some not yet
    dispatched), dispatched (all non-cancelled units dispatched), cancelled (all units cancelled)."""

    model_config = _examples(ORDER_EXAMPLE)

    order_number: str
    channel: str
    customer_id: str
    status: OrderStatus
    ship_policy: ShipPolicy
    placed_at: datetime
    priority: int
    order_value: Money
    lines: list[OrderLine]


class OrderPage(Page[Order]):
    """Orders, oldest placed first."""


class OrderEvent(BaseModel):
    at: datetime
    type: str
    actor: str
    data: dict[str, Any]


class OrderEventList(Items[OrderEvent]):
    """The order's events, oldest first."""

    model_config = _examples(
        {"items": [{"at": "2026-11-20T09:30:00Z", "type": "order_placed", "actor": "web-shop", "data": {"lines": 1}}]}
    )


class BackorderLine(BaseModel):
    """A waiting order line with its 1-based place in its SKU's queue under the current rule."""

    order_number: str
    channel: str
    line_no: int
    sku: str
    customer_id: str
    customer_tier: Tier | None
    placed_at: datetime
    qty: int
    backordered_qty: int
    queue_position: int
    eta: date | None
    age_days: int = Field(description="Whole days since the order was placed.")
    priority: int


class BackorderLinePage(Page[BackorderLine]):
    """Waiting lines in queue order (`sort=queue`) or oldest first (`sort=age`)."""

    model_config = _examples({"items": [BACKORDER_LINE_EXAMPLE], "next_cursor": None})


class IncomingSupply(BaseModel):
    po_number: str
    expected_date: date | None
    counted_on: date = Field(description="The day the ETA counts the units on (a late PO: its grace date).")
    late: bool
    qty: int
    running_qty: int
    covers_this_line: bool


class EtaBasis(BaseModel):
    """What the ETA rests on: a PO (`po_number`), the lead time (`lead_time_days`), unknown, or none."""

    kind: Literal["po", "lead_time", "unknown", "none"]
    po_number: str | None = None
    lead_time_days: int | None = None


class RuleStep(BaseModel):
    key: RuleKey
    direction: str
    value: int | str | None = Field(description="The line's value of this key.")
    column: str


class LineExplanation(BaseModel):
    """Why the line waits: queue position, units ahead, incoming supply by date, the ETA's basis, the rule."""

    order_number: str
    line_no: int
    sku: str
    qty: int
    backordered_qty: int
    waiting: bool
    queue_position: int | None
    units_ahead: int | None
    queue_length_units: int
    eta: date | None
    promised_date: date | None
    eta_basis: EtaBasis
    reason: str
    incoming: list[IncomingSupply]
    rule: list[RuleStep]
    tie_breakers: list[str]


# ---- replenishment ------------------------------------------------------------------------------


class PurchaseOrderStatus(StrEnum):
    OPEN = "open"
    RECEIVED = "received"
    CANCELLED = "cancelled"


class PurchaseOrderLine(BaseModel):
    line_no: int
    sku: str
    qty: int
    received_qty: int
    open_qty: int = Field(description="Units still expected (0 once the line is closed).")
    expected_date: date


class PurchaseOrder(BaseModel):
    """A purchase order with its version (the `ETag`)."""

    model_config = _examples(PO_EXAMPLE)

    po_number: str
    supplier: str
    status: PurchaseOrderStatus
    created_at: datetime
    overdue: bool = Field(description="Open, with units expected before today.")
    lines: list[PurchaseOrderLine]
    version: int


class PurchaseOrderPage(Page[PurchaseOrder]):
    """Purchase orders as created."""


class SkuQty(BaseModel):
    sku: str
    qty: int


class ReceiptPoLine(BaseModel):
    """How a receipt's units of a SKU met its purchase order."""

    sku: str
    received: int
    against_po: int
    over: int
    unplanned: int


class Receipt(BaseModel):
    """A goods receipt: what came in, and the waiting lines it went to at once."""

    model_config = _examples(RECEIPT_EXAMPLE)

    grn_number: str
    po_number: str | None
    received_at: datetime
    lines: list[SkuQty]
    po_lines: list[ReceiptPoLine] = Field(description="Against the purchase order; empty without one.")
    allocations: list[Allocation]
    unallocated: list[SkuQty] = Field(description="Units left on hand, per SKU.")


class EtaChange(BaseModel):
    """A waiting line whose ETA would move."""

    order_number: str
    line_no: int
    sku: str
    from_: date | None = Field(alias="from")
    to: date | None


class ReceiptPreview(Receipt):
    """What the receipt would do; nothing is committed."""

    model_config = _examples(
        {
            **RECEIPT_EXAMPLE,
            "eta_changes": [
                {"order_number": "SO-1002", "line_no": 1, "sku": "TENT-2P", "from": "2027-01-04", "to": "2026-12-15"}
            ],
        }
    )

    eta_changes: list[EtaChange]


class PromiseLine(BaseModel):
    sku: str
    qty: int
    available_now: int
    backorderable: bool = Field(description="Whether the policy takes every unit not available now.")
    backorderable_qty: int
    eta: date | None


class Promise(BaseModel):
    """What an order would get now and when the rest would come; nothing is reserved."""

    model_config = _examples(
        {
            "lines": [
                {
                    "sku": "TENT-2P",
                    "qty": 5,
                    "available_now": 0,
                    "backorderable": True,
                    "backorderable_qty": 5,
                    "eta": "2026-12-15",
                }
            ]
        }
    )

    lines: list[PromiseLine]


class ShortfallLine(BaseModel):
    """A SKU with waiting units; `suggested_order_qty` = backordered - incoming_within_lead_time."""

    sku: str
    backordered: int
    incoming: int
    shortfall: int
    suggested_order_qty: int
    lead_time_days: int | None
    incoming_within_lead_time: int
    cover_by: date | None


class ShortfallReport(Items[ShortfallLine]):
    """Per SKU with waiting units, by SKU."""

    model_config = _examples(
        {
            "items": [
                {
                    "sku": "TENT-2P",
                    "backordered": 13,
                    "incoming": 10,
                    "shortfall": 3,
                    "suggested_order_qty": 3,
                    "lead_time_days": 21,
                    "incoming_within_lead_time": 10,
                    "cover_by": "2026-12-17",
                }
            ]
        }
    )


# ---- fulfillment --------------------------------------------------------------------------------


class ShipmentLine(BaseModel):
    line_no: int
    sku: str
    qty: int


class Shipment(BaseModel):
    """A shipment: pick → pack → awaiting_shipment → dispatched (or cancelled while in pick)."""

    model_config = _examples(SHIPMENT_EXAMPLE)

    id: int
    channel: str
    order_number: str
    status: ShipmentStatus
    lines: list[ShipmentLine]
    carrier: str | None
    tracking_number: str | None
    created_at: datetime
    updated_at: datetime


class ShipmentPage(Page[Shipment]):
    """Shipments as created."""


class ReleaseDueResult(BaseModel):
    model_config = _examples({"orders_settled": 0})

    orders_settled: int = Field(description="Orders whose units held for a release date were released.")


# ---- notifications and webhooks -----------------------------------------------------------------


class Notification(BaseModel):
    """An outbox record. A webhook's `to` is its URL for admin keys, `subscription:<id>` for others."""

    id: str
    kind: Literal["email", "webhook"]
    to: str
    status: Literal["pending", "delivered", "dead"]
    created_at: datetime
    event_type: str
    order_number: str | None
    channel: str | None
    subscription_id: int | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None


class NotificationPage(Page[Notification]):
    """Outbox records, oldest first."""


class Webhook(BaseModel):
    id: int
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    created_at: datetime


class WebhookCreated(Webhook):
    secret: str = Field(description='The signing secret ("whsec_" + base64 key): shown in this answer only.')


class WebhookList(Items[Webhook]):
    """Every subscription, by id."""


class WebhookDelivery(BaseModel):
    message_id: str
    event_type: str
    attempt: int
    at: datetime
    status_code: int | None
    ok: bool
    error: str | None
    duration_ms: int


class WebhookDeliveryPage(Page[WebhookDelivery]):
    """Delivery attempts, newest first."""


# ---- reports ------------------------------------------------------------------------------------

AgeBuckets = Annotated[dict[str, int], Field(description="Units by age bucket: 0-2, 3-7, 8-14, 15-30, >30 days.")]


class Percentiles(BaseModel):
    p50: Hours
    p90: Hours


class AgeBucket(BaseModel):
    lines: Count
    units: Count
    value: Money


class SummaryReport(BaseModel):
    """Headline back-order health over the period."""

    pending_backorder_lines: Count
    pending_backorder_units: Count
    pending_backorder_value: Money
    by_age_bucket: dict[str, AgeBucket] = Field(description="By age bucket: 0-2, 3-7, 8-14, 15-30, >30 days.")
    lead_time_hours: Percentiles
    backorder_wait_hours: Percentiles
    cancelled_units_by_reason: dict[str, int]
    fill_rate_at_placement: Rate


class BackorderFigures(BaseModel):
    lines: Count
    units: Count
    value: Money
    oldest_age_days: int | None
    units_by_age: AgeBuckets


class BackorderGroup(BackorderFigures):
    """One group: the key named by `group_by` carries its value."""

    sku: str | None = None
    customer: str | None = None
    channel: str | None = None
    tier: str | None = None


class BackorderReport(BaseModel):
    """Lines waiting now, grouped, most units first; `groups` counts every group, `total` sums them."""

    group_by: Literal["sku", "customer", "channel", "tier"]
    groups: Count
    limit: int
    items: list[BackorderGroup]
    total: BackorderFigures


class LeadTime(BaseModel):
    measure: str
    segment: str
    count: Count
    p50: Hours
    p90: Hours
    max: Hours


class LeadTimesReport(BaseModel):
    unit: Literal["hours"]
    items: list[LeadTime]


class CancellationFigures(BaseModel):
    cancellations: Count
    units: Count
    backordered_units: Count
    share_of_backordered_units: Rate


class CancellationsByReason(CancellationFigures):
    reason: CancelReason


class CancellationTotal(CancellationFigures):
    units_backordered: Count = Field(description="Units that began waiting in the period.")


class CancellationsReport(BaseModel):
    items: list[CancellationsByReason]
    total: CancellationTotal


class FillRate(BaseModel):
    lines: Count
    lines_filled_at_placement: Count
    units_ordered: Count
    units_allocated_at_placement: Count
    fill_rate: Rate


class FillRateGroup(FillRate):
    """One group: the key named by `group_by` carries its value (a day or week as YYYY-MM-DD)."""

    sku: str | None = None
    channel: str | None = None
    day: str | None = None
    week: str | None = None


class FillRateReport(BaseModel):
    group_by: Literal["sku", "channel", "day", "week"]
    items: list[FillRateGroup]
    total: FillRate


class PromiseAccuracy(BaseModel):
    lines_judged: Count
    on_time: Count
    late: Count
    late_still_open: Count
    on_time_rate: Rate
    mean_slip_days: float | None
    max_slip_days: int | None


class PromiseAccuracyGroup(PromiseAccuracy):
    """One group: the key named by `group_by` carries its value."""

    sku: str | None = None
    channel: str | None = None


class PromiseAccuracyReport(BaseModel):
    group_by: Literal["sku", "channel"]
    items: list[PromiseAccuracyGroup]
    total: PromiseAccuracy


class SupplierOnTime(BaseModel):
    po_lines_judged: Count
    on_time: Count
    late: Count
    late_still_open: Count
    on_time_rate: Rate
    mean_days_late: float | None


class SupplierOnTimeBySupplier(SupplierOnTime):
    supplier: str


class SupplierOnTimeReport(BaseModel):
    items: list[SupplierOnTimeBySupplier]
    total: SupplierOnTime


class Health(BaseModel):
    status: Literal["ok"]
