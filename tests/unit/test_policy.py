"""Back-order policy and placement (PRODUCT.md rules 1-3), on plain values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from oms.domain.errors import Conflict, InsufficientStock
from oms.domain.policy import (
    DEFAULT_POLICY,
    BackorderMode,
    BackorderPolicy,
    LineDecision,
    LineRequest,
    SkuStock,
    decide_placement,
)

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def sku(
    name: str = "SKU-A",
    *,
    on_hand: int = 0,
    allocated: int = 0,
    backordered: int = 0,
    incoming: int = 0,
    **policy: Any,
) -> SkuStock:
    return SkuStock(name, on_hand, allocated, backordered, incoming, BackorderPolicy(**policy))


def place(
    lines: list[tuple[str, int]], *stocks: SkuStock, channel: str = "web", now: datetime = NOW
) -> list[LineDecision]:
    requests = [LineRequest(no, s, qty) for no, (s, qty) in enumerate(lines, start=1)]
    return decide_placement(requests, {s.sku: s for s in stocks}, channel, now)


def refusals(lines: list[tuple[str, int]], *stocks: SkuStock, channel: str = "web", now: datetime = NOW) -> list[Any]:
    with pytest.raises(InsufficientStock) as caught:
        place(lines, *stocks, channel=channel, now=now)
    return caught.value.errors


def refused(name: str, *, requested: int, available: int, backorderable: int, reason: str) -> dict[str, Any]:
    return {
        "sku": name,
        "requested": requested,
        "available": available,
        "backorderable": backorderable,
        "reason": reason,
    }


def split(decisions: list[LineDecision]) -> list[tuple[int, int]]:
    return [(d.allocate_qty, d.backorder_qty) for d in decisions]


# --- stock and policy basics ---------------------------------------------------------------------


def test_available_is_on_hand_minus_allocated() -> None:
    assert sku(on_hand=10, allocated=4).available == 6


def test_available_is_never_negative() -> None:
    assert sku(on_hand=3, allocated=5).available == 0


def test_default_policy_always_back_orders_without_caps() -> None:
    assert DEFAULT_POLICY.mode is BackorderMode.ALWAYS
    assert DEFAULT_POLICY.max_backorder_qty is None
    assert DEFAULT_POLICY.max_qty_per_line is None
    assert DEFAULT_POLICY.channels == ()


def test_release_is_held_before_the_release_date_only() -> None:
    policy = BackorderPolicy(mode=BackorderMode.PREORDER, release_date=date(2026, 4, 1))
    assert policy.holds_release(date(2026, 3, 31)) is True
    assert policy.holds_release(date(2026, 4, 1)) is False
    assert policy.holds_release(date(2026, 4, 2)) is False


def test_release_is_never_held_without_a_release_date() -> None:
    assert BackorderPolicy().holds_release(date(2026, 3, 2)) is False


# --- placement: taking what is available ---------------------------------------------------------


def test_a_line_fully_in_stock_is_allocated_and_nothing_back_ordered() -> None:
    decisions = place([("SKU-A", 4)], sku(on_hand=10, mode=BackorderMode.NEVER))
    assert decisions == [LineDecision(1, "SKU-A", 4, 4, 0)]


def test_a_short_line_takes_what_is_available_and_back_orders_the_rest() -> None:
    decisions = place([("SKU-A", 10)], sku(on_hand=6, allocated=2))
    assert decisions == [LineDecision(1, "SKU-A", 10, 4, 6)]


def test_lines_of_the_same_sku_share_its_availability_in_line_order() -> None:
    decisions = place([("SKU-A", 3), ("SKU-A", 4), ("SKU-A", 2)], sku(on_hand=5))
    assert split(decisions) == [(3, 0), (2, 2), (0, 2)]


def test_lines_of_different_skus_do_not_share_availability() -> None:
    decisions = place([("SKU-A", 3), ("SKU-B", 3)], sku("SKU-A", on_hand=3), sku("SKU-B", on_hand=1))
    assert split(decisions) == [(3, 0), (1, 2)]


def test_decisions_keep_line_numbers_skus_and_quantities_in_request_order() -> None:
    requests = [LineRequest(7, "SKU-B", 2), LineRequest(3, "SKU-A", 1)]
    stocks = {"SKU-A": sku("SKU-A", on_hand=5), "SKU-B": sku("SKU-B", on_hand=5)}
    decisions = decide_placement(requests, stocks, "web", NOW)
    assert [(d.line_no, d.sku, d.qty) for d in decisions] == [(7, "SKU-B", 2), (3, "SKU-A", 1)]


# --- mode: never ---------------------------------------------------------------------------------


def test_never_mode_refuses_a_line_that_is_short() -> None:
    errors = refusals([("SKU-A", 5)], sku(on_hand=2, mode=BackorderMode.NEVER))
    assert errors == [refused("SKU-A", requested=5, available=2, backorderable=0, reason="backorder_not_allowed")]


def test_never_mode_refuses_even_when_incoming_supply_exists() -> None:
    errors = refusals([("SKU-A", 1)], sku(incoming=50, mode=BackorderMode.NEVER))
    assert errors[0]["reason"] == "backorder_not_allowed"
    assert errors[0]["backorderable"] == 0


# --- mode: always --------------------------------------------------------------------------------


def test_always_mode_back_orders_any_quantity_without_caps() -> None:
    decisions = place([("SKU-A", 1_000_000)], sku(on_hand=1, backordered=500_000, mode=BackorderMode.ALWAYS))
    assert split(decisions) == [(1, 999_999)]


# --- mode: when_incoming -------------------------------------------------------------------------


def test_when_incoming_accepts_units_covered_by_incoming_not_yet_promised() -> None:
    decisions = place([("SKU-A", 6)], sku(incoming=10, backordered=4, mode=BackorderMode.WHEN_INCOMING))
    assert split(decisions) == [(0, 6)]


def test_when_incoming_refuses_units_beyond_unpromised_incoming() -> None:
    errors = refusals([("SKU-A", 9)], sku(on_hand=2, incoming=10, backordered=4, mode=BackorderMode.WHEN_INCOMING))
    assert errors == [refused("SKU-A", requested=9, available=2, backorderable=6, reason="not_covered_by_incoming")]


def test_when_incoming_takes_stock_first_and_only_back_orders_the_rest() -> None:
    decisions = place([("SKU-A", 5)], sku(on_hand=2, incoming=3, mode=BackorderMode.WHEN_INCOMING))
    assert split(decisions) == [(2, 3)]


def test_when_incoming_has_no_room_when_the_queue_already_exceeds_incoming() -> None:
    errors = refusals([("SKU-A", 1)], sku(incoming=5, backordered=8, mode=BackorderMode.WHEN_INCOMING))
    assert errors[0]["backorderable"] == 0
    assert errors[0]["reason"] == "not_covered_by_incoming"


def test_when_incoming_room_is_shared_by_lines_of_the_same_sku() -> None:
    stock = sku(incoming=10, backordered=4, mode=BackorderMode.WHEN_INCOMING)
    assert split(place([("SKU-A", 3), ("SKU-A", 3)], stock)) == [(0, 3), (0, 3)]
    errors = refusals([("SKU-A", 3), ("SKU-A", 4)], stock)
    assert [e["sku"] for e in errors] == ["SKU-A"]
    assert errors[0]["reason"] == "not_covered_by_incoming"


# --- mode: preorder ------------------------------------------------------------------------------


def test_preorder_accepts_back_orders_before_preorder_ends_at() -> None:
    stock = sku(mode=BackorderMode.PREORDER, preorder_ends_at=NOW + timedelta(seconds=1))
    assert split(place([("SKU-A", 40)], stock)) == [(0, 40)]


def test_preorder_refuses_back_orders_at_preorder_ends_at() -> None:
    errors = refusals([("SKU-A", 2)], sku(on_hand=1, mode=BackorderMode.PREORDER, preorder_ends_at=NOW))
    assert errors == [refused("SKU-A", requested=2, available=1, backorderable=0, reason="preorder_closed")]


def test_preorder_refuses_back_orders_after_preorder_ends_at() -> None:
    stock = sku(mode=BackorderMode.PREORDER, preorder_ends_at=NOW - timedelta(days=1))
    assert refusals([("SKU-A", 1)], stock)[0]["reason"] == "preorder_closed"


def test_preorder_without_an_end_stays_open() -> None:
    stock = sku(mode=BackorderMode.PREORDER, preorder_ends_at=None)
    assert split(place([("SKU-A", 3)], stock, now=datetime(2099, 1, 1, tzinfo=UTC))) == [(0, 3)]


def test_closed_preorder_still_sells_units_in_stock() -> None:
    stock = sku(on_hand=3, mode=BackorderMode.PREORDER, preorder_ends_at=NOW - timedelta(days=1))
    assert split(place([("SKU-A", 3)], stock)) == [(3, 0)]


def test_preorder_respects_max_backorder_qty() -> None:
    open_until = NOW + timedelta(days=1)
    stock = sku(backordered=8, mode=BackorderMode.PREORDER, preorder_ends_at=open_until, max_backorder_qty=10)
    errors = refusals([("SKU-A", 3)], stock)
    assert errors == [refused("SKU-A", requested=3, available=0, backorderable=2, reason="max_backorder_qty")]


# --- cap: max_backorder_qty ----------------------------------------------------------------------


def test_max_backorder_qty_accepts_up_to_the_cap_on_pending_units() -> None:
    assert split(place([("SKU-A", 2)], sku(backordered=3, max_backorder_qty=5))) == [(0, 2)]


def test_max_backorder_qty_refuses_past_the_cap_on_pending_units() -> None:
    errors = refusals([("SKU-A", 4)], sku(on_hand=1, backordered=3, max_backorder_qty=5))
    assert errors == [refused("SKU-A", requested=4, available=1, backorderable=2, reason="max_backorder_qty")]


def test_max_backorder_qty_leaves_no_room_when_the_queue_is_already_over_it() -> None:
    errors = refusals([("SKU-A", 1)], sku(backordered=7, max_backorder_qty=5))
    assert errors[0]["backorderable"] == 0
    assert errors[0]["reason"] == "max_backorder_qty"


def test_max_backorder_qty_room_is_shared_by_lines_of_the_same_sku() -> None:
    stock = sku(max_backorder_qty=5)
    assert split(place([("SKU-A", 3), ("SKU-A", 2)], stock)) == [(0, 3), (0, 2)]
    with pytest.raises(InsufficientStock):
        place([("SKU-A", 3), ("SKU-A", 3)], stock)


def test_the_tighter_of_incoming_and_max_backorder_qty_wins_and_is_named() -> None:
    cap_tighter = sku(incoming=100, max_backorder_qty=5, mode=BackorderMode.WHEN_INCOMING)
    incoming_tighter = sku(incoming=3, max_backorder_qty=5, mode=BackorderMode.WHEN_INCOMING)
    assert refusals([("SKU-A", 6)], cap_tighter) == [
        refused("SKU-A", requested=6, available=0, backorderable=5, reason="max_backorder_qty")
    ]
    assert refusals([("SKU-A", 6)], incoming_tighter) == [
        refused("SKU-A", requested=6, available=0, backorderable=3, reason="not_covered_by_incoming")
    ]


# --- cap: max_qty_per_line -----------------------------------------------------------------------


def test_max_qty_per_line_accepts_a_line_back_ordering_exactly_the_cap() -> None:
    assert split(place([("SKU-A", 4)], sku(max_qty_per_line=4))) == [(0, 4)]


def test_max_qty_per_line_refuses_a_line_back_ordering_more_than_the_cap() -> None:
    errors = refusals([("SKU-A", 5)], sku(max_qty_per_line=4))
    assert errors == [refused("SKU-A", requested=5, available=0, backorderable=4, reason="max_qty_per_line")]


def test_max_qty_per_line_counts_only_back_ordered_units_of_the_line() -> None:
    assert split(place([("SKU-A", 14)], sku(on_hand=10, max_qty_per_line=4))) == [(10, 4)]


def test_max_qty_per_line_applies_to_each_line_separately() -> None:
    assert split(place([("SKU-A", 4), ("SKU-A", 4)], sku(max_qty_per_line=4))) == [(0, 4), (0, 4)]


def test_max_backorder_qty_is_named_when_tighter_than_the_per_line_cap() -> None:
    errors = refusals([("SKU-A", 5)], sku(backordered=8, max_backorder_qty=10, max_qty_per_line=4))
    assert errors[0]["backorderable"] == 2
    assert errors[0]["reason"] == "max_backorder_qty"


def test_per_line_cap_does_not_open_a_never_policy() -> None:
    errors = refusals([("SKU-A", 1)], sku(mode=BackorderMode.NEVER, max_qty_per_line=3))
    assert errors[0]["backorderable"] == 0
    assert errors[0]["reason"] == "backorder_not_allowed"


# --- cap: channels -------------------------------------------------------------------------------


def test_a_listed_channel_may_back_order() -> None:
    assert split(place([("SKU-A", 2)], sku(channels=("web", "b2b")), channel="b2b")) == [(0, 2)]


def test_an_unlisted_channel_may_not_back_order() -> None:
    errors = refusals([("SKU-A", 2)], sku(on_hand=1, channels=("web",)), channel="pos")
    assert errors == [refused("SKU-A", requested=2, available=1, backorderable=0, reason="channel_not_allowed")]


def test_an_empty_channel_list_allows_every_channel() -> None:
    for channel in ("web", "pos", "marketplace", "phone", "b2b"):
        assert split(place([("SKU-A", 2)], sku(channels=()), channel=channel)) == [(0, 2)]


def test_an_unlisted_channel_still_buys_units_in_stock() -> None:
    assert split(place([("SKU-A", 5)], sku(on_hand=5, channels=("web",)), channel="pos")) == [(5, 0)]


# --- refusal: every SKU at once, nothing returned ------------------------------------------------


def test_refusal_names_every_refused_sku_and_none_of_the_accepted_ones() -> None:
    stocks = (
        sku("SKU-C", on_hand=1, max_qty_per_line=2),
        sku("SKU-B", on_hand=10),
        sku("SKU-A", on_hand=2, mode=BackorderMode.NEVER),
    )
    with pytest.raises(InsufficientStock) as caught:
        place([("SKU-C", 6), ("SKU-B", 3), ("SKU-A", 3)], *stocks)
    err = caught.value
    assert sorted(err.errors, key=lambda e: e["sku"]) == [
        refused("SKU-A", requested=3, available=2, backorderable=0, reason="backorder_not_allowed"),
        refused("SKU-C", requested=6, available=1, backorderable=2, reason="max_qty_per_line"),
    ]
    assert "SKU-A, SKU-C" in err.detail
    assert "SKU-B" not in err.detail


def test_refusal_is_a_conflict_with_the_insufficient_stock_problem_type() -> None:
    with pytest.raises(InsufficientStock) as caught:
        place([("SKU-A", 1)], sku(mode=BackorderMode.NEVER))
    assert isinstance(caught.value, Conflict)


def test_refusal_leaves_the_stock_it_was_given_untouched() -> None:
    stocks = {"SKU-A": sku("SKU-A", on_hand=4, mode=BackorderMode.NEVER), "SKU-B": sku("SKU-B", on_hand=9)}
    before = dict(stocks)
    with pytest.raises(InsufficientStock):
        decide_placement([LineRequest(1, "SKU-B", 5), LineRequest(2, "SKU-A", 5)], stocks, "web", NOW)
    assert stocks == before


def test_refusal_names_a_sku_once_when_several_of_its_lines_are_refused() -> None:
    errors = refusals([("SKU-A", 3), ("SKU-A", 2)], sku(on_hand=1, mode=BackorderMode.NEVER))
    assert errors == [refused("SKU-A", requested=5, available=1, backorderable=0, reason="backorder_not_allowed")]


def test_refusal_of_a_sku_on_several_lines_reports_the_whole_order_for_that_sku() -> None:
    # 16 units asked over two lines; 5 in stock and room for 5 back-ordered: "what could be had" is 5 + 5.
    errors = refusals([("SKU-A", 8), ("SKU-A", 8)], sku(on_hand=5, max_backorder_qty=5))
    assert errors == [refused("SKU-A", requested=16, available=5, backorderable=5, reason="max_backorder_qty")]


def test_refused_units_do_not_use_up_the_back_order_room_reported_for_their_sku() -> None:
    # Neither line fits in the order as asked, but the SKU could still back-order 5 units.
    errors = refusals([("SKU-A", 10), ("SKU-A", 1)], sku(max_backorder_qty=5))
    assert errors == [refused("SKU-A", requested=11, available=0, backorderable=5, reason="max_backorder_qty")]
