"""Shipments, order status, release and cancellation (PRODUCT.md rules 6-8), on plain values."""

from __future__ import annotations

import pytest

from oms.domain.errors import Conflict, IllegalTransition, Invalid
from oms.domain.fulfillment import (
    CancelPlan,
    LineQty,
    OrderStatus,
    ShipmentStatus,
    ShipPolicy,
    advance,
    order_status,
    plan_cancel,
    units_to_release,
)

S = ShipmentStatus


def line_qty(
    line_no: int = 1,
    sku: str = "SKU-A",
    *,
    allocated: int = 0,
    backordered: int = 0,
    shipped: int = 0,
    cancelled: int = 0,
    released: int = 0,
) -> LineQty:
    qty = allocated + backordered + shipped + cancelled
    return LineQty(line_no, sku, qty, allocated, backordered, shipped, cancelled, released)


# --- shipment state machine ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [(S.PICK, S.PACK), (S.PACK, S.AWAITING_SHIPMENT)],
)
def test_a_shipment_moves_one_step_without_a_carrier_before_dispatch(status: S, expected: S) -> None:
    assert advance(status, None, None) is expected


def test_an_awaiting_shipment_is_dispatched_with_carrier_and_tracking() -> None:
    assert advance(S.AWAITING_SHIPMENT, "DHL", "JD0146000001") is S.DISPATCHED


def test_a_shipment_walks_pick_pack_awaiting_dispatched_in_order() -> None:
    seen = [S.PICK]
    while seen[-1] is not S.DISPATCHED:
        seen.append(advance(seen[-1], "UPS", "1Z999"))
    assert seen == [S.PICK, S.PACK, S.AWAITING_SHIPMENT, S.DISPATCHED]


def test_a_carrier_given_before_dispatch_does_not_skip_steps() -> None:
    assert advance(S.PICK, "DHL", "JD0146000001") is S.PACK


@pytest.mark.parametrize("status", [S.DISPATCHED, S.CANCELLED])
def test_a_finished_shipment_cannot_advance(status: S) -> None:
    with pytest.raises(IllegalTransition) as caught:
        advance(status, "DHL", "JD0146000001")
    err = caught.value
    assert isinstance(err, Conflict)
    assert f"'{status.value}'" in err.detail
    assert err.errors == [{"field": "status", "value": status.value, "reason": "terminal state"}]


def test_the_illegal_transition_says_which_states_can_advance() -> None:
    with pytest.raises(IllegalTransition) as caught:
        advance(S.DISPATCHED, None, None)
    assert "pick, pack, awaiting_shipment" in caught.value.detail


@pytest.mark.parametrize(
    ("carrier", "tracking", "missing"),
    [
        (None, "JD0146000001", ["carrier"]),
        ("DHL", None, ["tracking_number"]),
        (None, None, ["carrier", "tracking_number"]),
        ("", "", ["carrier", "tracking_number"]),
    ],
)
def test_dispatch_needs_carrier_and_tracking_naming_each_missing_field(
    carrier: str | None, tracking: str | None, missing: list[str]
) -> None:
    with pytest.raises(Invalid) as caught:
        advance(S.AWAITING_SHIPMENT, carrier, tracking)
    assert caught.value.errors == [{"field": f, "reason": "required to dispatch"} for f in missing]


# --- order status --------------------------------------------------------------------------------


def test_an_order_with_any_unit_waiting_is_backordered() -> None:
    lines = [line_qty(1, shipped=4), line_qty(2, allocated=1, backordered=1)]
    assert order_status(lines) is OrderStatus.BACKORDERED


def test_an_order_with_every_unit_cancelled_is_cancelled() -> None:
    assert order_status([line_qty(1, cancelled=3), line_qty(2, cancelled=1)]) is OrderStatus.CANCELLED


def test_an_order_with_every_remaining_unit_shipped_is_dispatched() -> None:
    lines = [line_qty(1, shipped=2, cancelled=1), line_qty(2, cancelled=5), line_qty(3, shipped=1)]
    assert order_status(lines) is OrderStatus.DISPATCHED


def test_an_order_with_allocated_units_not_yet_shipped_is_in_fulfillment() -> None:
    assert order_status([line_qty(1, allocated=3, released=3)]) is OrderStatus.IN_FULFILLMENT


def test_a_partly_shipped_order_is_in_fulfillment() -> None:
    lines = [line_qty(1, shipped=2), line_qty(2, allocated=2)]
    assert order_status(lines) is OrderStatus.IN_FULFILLMENT


# --- units to release ----------------------------------------------------------------------------


def test_unreleased_units_are_allocated_minus_released() -> None:
    assert line_qty(allocated=5, released=2).unreleased_qty == 3


def test_a_partial_order_releases_its_allocated_units_at_once() -> None:
    lines = [
        line_qty(1, allocated=3, backordered=2),
        line_qty(2, "SKU-B", allocated=2, released=1),
        line_qty(3, "SKU-C", backordered=4),
    ]
    assert units_to_release(ShipPolicy.PARTIAL, lines, frozenset()) == {1: 3, 2: 1}


def test_a_partial_order_with_everything_released_releases_nothing() -> None:
    lines = [line_qty(1, allocated=2, released=2), line_qty(2, shipped=3)]
    assert units_to_release(ShipPolicy.PARTIAL, lines, frozenset()) == {}


def test_a_complete_order_holds_everything_while_any_line_waits() -> None:
    lines = [line_qty(1, allocated=5), line_qty(2, "SKU-B", allocated=3, backordered=1)]
    assert units_to_release(ShipPolicy.COMPLETE, lines, frozenset()) == {}


def test_a_complete_order_releases_every_line_once_fully_allocated() -> None:
    lines = [line_qty(1, allocated=5), line_qty(2, "SKU-B", allocated=4, cancelled=1)]
    assert units_to_release(ShipPolicy.COMPLETE, lines, frozenset()) == {1: 5, 2: 4}


def test_a_partial_order_releases_all_but_held_skus() -> None:
    lines = [line_qty(1, "SKU-PRE", allocated=2), line_qty(2, "SKU-B", allocated=3)]
    assert units_to_release(ShipPolicy.PARTIAL, lines, frozenset({"SKU-PRE"})) == {2: 3}


def test_a_partial_order_of_only_held_skus_releases_nothing() -> None:
    lines = [line_qty(1, "SKU-PRE", allocated=2)]
    assert units_to_release(ShipPolicy.PARTIAL, lines, frozenset({"SKU-PRE"})) == {}


def test_a_complete_order_holds_everything_while_a_line_is_held_for_its_release_date() -> None:
    lines = [line_qty(1, "SKU-PRE", allocated=2), line_qty(2, "SKU-B", allocated=3)]
    assert units_to_release(ShipPolicy.COMPLETE, lines, frozenset({"SKU-PRE"})) == {}


def test_a_held_sku_with_nothing_to_release_does_not_hold_a_complete_order() -> None:
    lines = [line_qty(1, "SKU-PRE", cancelled=2), line_qty(2, "SKU-B", allocated=3)]
    assert units_to_release(ShipPolicy.COMPLETE, lines, frozenset({"SKU-PRE"})) == {2: 3}


# --- cancellation --------------------------------------------------------------------------------

# 2 back-ordered, 5 allocated of which 3 released; of those 3, 1 is still in pick and 2 are packed.
MIXED = line_qty(4, "SKU-A", backordered=2, allocated=5, released=3, shipped=1)


@pytest.mark.parametrize(
    ("qty", "expected"),
    [
        (1, CancelPlan(4, 1, 0, 0)),
        (2, CancelPlan(4, 2, 0, 0)),
        (3, CancelPlan(4, 2, 1, 0)),
        (4, CancelPlan(4, 2, 2, 0)),
        (5, CancelPlan(4, 2, 2, 1)),
    ],
)
def test_cancel_takes_back_ordered_then_unreleased_then_pick_units(qty: int, expected: CancelPlan) -> None:
    assert plan_cancel(MIXED, qty, in_pick=1) == expected


def test_cancel_without_a_quantity_takes_every_cancellable_unit() -> None:
    plan = plan_cancel(MIXED, None, in_pick=1)
    assert plan == CancelPlan(4, 2, 2, 1)
    assert plan.total == 5
    assert plan.freed_allocated == 3


def test_cancelling_back_ordered_units_frees_no_allocated_units() -> None:
    plan = plan_cancel(MIXED, 2, in_pick=1)
    assert plan.total == 2
    assert plan.freed_allocated == 0


def test_cancel_refuses_more_than_the_cancellable_units() -> None:
    with pytest.raises(Conflict) as caught:
        plan_cancel(MIXED, 6, in_pick=1)
    err = caught.value
    assert err.errors == [{"line_no": 4, "sku": "SKU-A", "requested": 6, "cancellable": 5}]
    assert "5 cancellable units; 6 were asked" in err.detail


def test_packed_and_shipped_units_cannot_be_cancelled() -> None:
    packed = line_qty(1, allocated=2, released=2, shipped=3)
    with pytest.raises(Conflict) as caught:
        plan_cancel(packed, 1, in_pick=0)
    assert caught.value.errors == [{"line_no": 1, "sku": "SKU-A", "requested": 1, "cancellable": 0}]


def test_cancelling_all_of_a_line_with_nothing_cancellable_plans_nothing() -> None:
    packed = line_qty(1, allocated=2, released=2)
    assert plan_cancel(packed, None, in_pick=0) == CancelPlan(1, 0, 0, 0)
