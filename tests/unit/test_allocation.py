"""The allocation rule, queue order and allocation walk (PRODUCT.md rules 2, 4, 5), on plain values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.domain.allocation import (
    DEFAULT_RULE,
    KEY_FIELDS,
    TIE_BREAK,
    Allocation,
    QueueLine,
    RuleKey,
    SortField,
    Tier,
    order_queue,
    parse_rule,
    plan_allocation,
    queue_sort_key,
    sort_fields,
)
from oms.domain.errors import Invalid

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def line(
    order_number: str,
    line_no: int = 1,
    *,
    qty: int = 1,
    priority: int = 0,
    tier: Tier = Tier.STANDARD,
    order_value: str = "10.00",
    placed_at: datetime = T0,
    promised_date: date | None = None,
    line_id: int | None = None,
) -> QueueLine:
    return QueueLine(
        line_id=line_id if line_id is not None else hash((order_number, line_no)),
        order_number=order_number,
        line_no=line_no,
        sku="SKU-A",
        backordered_qty=qty,
        priority=priority,
        tier_rank=tier.rank,
        order_value=Decimal(order_value),
        placed_at=placed_at,
        promised_date=promised_date,
    )


def names(lines: list[QueueLine]) -> list[str]:
    return [f"{q.order_number}/{q.line_no}" for q in lines]


def plan_of(plan: list[Allocation]) -> list[tuple[str, int]]:
    return [(a.line.order_number, a.qty) for a in plan]


# --- tiers ---------------------------------------------------------------------------------------


def test_tiers_rank_from_standard_up_to_platinum() -> None:
    assert [t.rank for t in (Tier.STANDARD, Tier.SILVER, Tier.GOLD, Tier.PLATINUM)] == [0, 1, 2, 3]


# --- parse_rule ----------------------------------------------------------------------------------


def test_parse_rule_returns_the_keys_in_the_order_given() -> None:
    assert parse_rule(["customer_tier", "placed_at"]) == (RuleKey.CUSTOMER_TIER, RuleKey.PLACED_AT)


def test_parse_rule_accepts_every_key_once() -> None:
    keys = ["promised_date", "order_value", "priority", "customer_tier", "placed_at"]
    assert parse_rule(keys) == (
        RuleKey.PROMISED_DATE,
        RuleKey.ORDER_VALUE,
        RuleKey.PRIORITY,
        RuleKey.CUSTOMER_TIER,
        RuleKey.PLACED_AT,
    )


def test_parse_rule_refuses_an_unknown_key_naming_it() -> None:
    with pytest.raises(Invalid) as caught:
        parse_rule(["priority", "loyalty"])
    assert caught.value.errors == [{"field": "keys", "value": "loyalty", "reason": "unknown key"}]


def test_parse_rule_is_case_sensitive() -> None:
    with pytest.raises(Invalid) as caught:
        parse_rule(["Priority"])
    assert caught.value.errors == [{"field": "keys", "value": "Priority", "reason": "unknown key"}]


def test_parse_rule_refuses_a_repeated_key_naming_it_once() -> None:
    with pytest.raises(Invalid) as caught:
        parse_rule(["priority", "placed_at", "priority", "priority"])
    assert caught.value.errors == [{"field": "keys", "value": "priority", "reason": "repeated key"}]


def test_parse_rule_refuses_an_empty_rule() -> None:
    with pytest.raises(Invalid) as caught:
        parse_rule([])
    assert "non-empty" in caught.value.detail


def test_parse_rule_gathers_unknown_and_repeated_keys_at_once() -> None:
    with pytest.raises(Invalid) as caught:
        parse_rule(["placed_at", "vip", "placed_at", "order_value", "order_value"])
    assert caught.value.errors == [
        {"field": "keys", "value": "vip", "reason": "unknown key"},
        {"field": "keys", "value": "order_value", "reason": "repeated key"},
        {"field": "keys", "value": "placed_at", "reason": "repeated key"},
    ]


# --- sort fields ---------------------------------------------------------------------------------


def test_each_key_has_its_fixed_direction() -> None:
    expected = {
        RuleKey.PRIORITY: SortField("priority", descending=True),
        RuleKey.CUSTOMER_TIER: SortField("tier_rank", descending=True),
        RuleKey.ORDER_VALUE: SortField("order_value", descending=True),
        RuleKey.PLACED_AT: SortField("placed_at"),
        RuleKey.PROMISED_DATE: SortField("promised_date", nulls_last=True),
    }
    assert expected == KEY_FIELDS


def test_the_default_rule_is_priority_then_placed_at() -> None:
    assert DEFAULT_RULE == (RuleKey.PRIORITY, RuleKey.PLACED_AT)


def test_sort_fields_end_with_the_tie_break() -> None:
    assert sort_fields([RuleKey.ORDER_VALUE]) == [
        SortField("order_value", descending=True),
        SortField("placed_at"),
        SortField("order_number"),
        SortField("line_no"),
    ]


def test_sort_fields_list_placed_at_once_when_the_rule_names_it() -> None:
    assert sort_fields(DEFAULT_RULE) == [SortField("priority", descending=True), *TIE_BREAK]
    assert sort_fields([RuleKey.PLACED_AT, RuleKey.PROMISED_DATE]) == [
        SortField("placed_at"),
        SortField("promised_date", nulls_last=True),
        SortField("order_number"),
        SortField("line_no"),
    ]


# --- queue order: each key -----------------------------------------------------------------------


def test_priority_sorts_high_first() -> None:
    queue = [line("SO-1", priority=0), line("SO-2", priority=5), line("SO-3", priority=1)]
    assert names(order_queue([RuleKey.PRIORITY], queue)) == ["SO-2/1", "SO-3/1", "SO-1/1"]


def test_priority_beats_age_under_the_default_rule() -> None:
    old = line("SO-1", placed_at=T0)
    boosted = line("SO-2", priority=1, placed_at=T0 + timedelta(days=3))
    assert names(order_queue(DEFAULT_RULE, [old, boosted])) == ["SO-2/1", "SO-1/1"]


def test_customer_tier_sorts_platinum_first() -> None:
    queue = [
        line("SO-1", tier=Tier.SILVER),
        line("SO-2", tier=Tier.PLATINUM),
        line("SO-3", tier=Tier.STANDARD),
        line("SO-4", tier=Tier.GOLD),
    ]
    assert names(order_queue([RuleKey.CUSTOMER_TIER], queue)) == ["SO-2/1", "SO-4/1", "SO-1/1", "SO-3/1"]


def test_order_value_sorts_high_first() -> None:
    queue = [line("SO-1", order_value="19.99"), line("SO-2", order_value="250.00"), line("SO-3", order_value="100")]
    assert names(order_queue([RuleKey.ORDER_VALUE], queue)) == ["SO-2/1", "SO-3/1", "SO-1/1"]


def test_order_value_compares_money_exactly() -> None:
    queue = [line("SO-1", order_value="100.00"), line("SO-2", order_value="100.01")]
    assert names(order_queue([RuleKey.ORDER_VALUE], queue)) == ["SO-2/1", "SO-1/1"]


def test_placed_at_sorts_oldest_first() -> None:
    queue = [
        line("SO-1", placed_at=T0 + timedelta(hours=2)),
        line("SO-2", placed_at=T0),
        line("SO-3", placed_at=T0 + timedelta(minutes=1)),
    ]
    assert names(order_queue([RuleKey.PLACED_AT], queue)) == ["SO-2/1", "SO-3/1", "SO-1/1"]


def test_promised_date_sorts_earliest_first_and_never_promised_last() -> None:
    queue = [
        line("SO-1", promised_date=None),
        line("SO-2", promised_date=date(2026, 4, 10)),
        line("SO-3", promised_date=date(2026, 3, 20)),
    ]
    assert names(order_queue([RuleKey.PROMISED_DATE], queue)) == ["SO-3/1", "SO-2/1", "SO-1/1"]


def test_lines_never_promised_fall_back_to_the_tie_break() -> None:
    queue = [
        line("SO-1", promised_date=None, placed_at=T0 + timedelta(days=1)),
        line("SO-2", promised_date=None, placed_at=T0),
        line("SO-3", promised_date=date(2030, 1, 1), placed_at=T0 + timedelta(days=9)),
    ]
    assert names(order_queue([RuleKey.PROMISED_DATE], queue)) == ["SO-3/1", "SO-2/1", "SO-1/1"]


def test_a_later_key_decides_only_between_lines_tied_on_earlier_keys() -> None:
    queue = [
        line("SO-1", tier=Tier.GOLD, order_value="50"),
        line("SO-2", tier=Tier.STANDARD, order_value="900"),
        line("SO-3", tier=Tier.GOLD, order_value="80"),
    ]
    assert names(order_queue([RuleKey.CUSTOMER_TIER, RuleKey.ORDER_VALUE], queue)) == ["SO-3/1", "SO-1/1", "SO-2/1"]


# --- queue order: the tie-break ------------------------------------------------------------------


def test_ties_are_broken_by_placed_at_first() -> None:
    queue = [line("SO-1", priority=2, placed_at=T0 + timedelta(seconds=1)), line("SO-2", priority=2, placed_at=T0)]
    assert names(order_queue([RuleKey.PRIORITY], queue)) == ["SO-2/1", "SO-1/1"]


def test_ties_on_placed_at_are_broken_by_order_number() -> None:
    queue = [line("SO-B"), line("SO-A"), line("SO-C")]
    assert names(order_queue([RuleKey.ORDER_VALUE], queue)) == ["SO-A/1", "SO-B/1", "SO-C/1"]


def test_ties_within_one_order_are_broken_by_line_number() -> None:
    queue = [line("SO-1", 3), line("SO-1", 1), line("SO-1", 2)]
    assert names(order_queue([RuleKey.PRIORITY], queue)) == ["SO-1/1", "SO-1/2", "SO-1/3"]


def test_queue_order_does_not_depend_on_input_order() -> None:
    queue = [line("SO-2", 1), line("SO-1", 2), line("SO-1", 1), line("SO-3", 1, priority=1)]
    expected = ["SO-3/1", "SO-1/1", "SO-1/2", "SO-2/1"]
    assert names(order_queue(DEFAULT_RULE, queue)) == expected
    assert names(order_queue(DEFAULT_RULE, list(reversed(queue)))) == expected


def test_queue_sort_key_orders_like_order_queue() -> None:
    queue = [line("SO-1", priority=1), line("SO-2", priority=3)]
    key = queue_sort_key([RuleKey.PRIORITY])
    assert key(queue[1]) < key(queue[0])


# --- plan_allocation -----------------------------------------------------------------------------


def test_a_head_line_bigger_than_the_units_is_filled_in_part() -> None:
    queue = [line("SO-1", qty=5), line("SO-2", qty=2)]
    assert plan_of(plan_allocation(3, queue)) == [("SO-1", 3)]


def test_units_fill_the_head_then_part_of_the_next_line() -> None:
    queue = [line("SO-1", qty=5), line("SO-2", qty=4), line("SO-3", qty=1)]
    assert plan_of(plan_allocation(7, queue)) == [("SO-1", 5), ("SO-2", 2)]


def test_allocation_stops_when_units_run_out_exactly() -> None:
    queue = [line("SO-1", qty=5), line("SO-2", qty=3)]
    assert plan_of(plan_allocation(5, queue)) == [("SO-1", 5)]


def test_units_beyond_the_queue_are_left_over() -> None:
    queue = [line("SO-1", qty=5), line("SO-2", qty=3)]
    plan = plan_allocation(20, queue)
    assert plan_of(plan) == [("SO-1", 5), ("SO-2", 3)]
    assert sum(a.qty for a in plan) == 8


def test_no_units_allocate_nothing() -> None:
    assert plan_allocation(0, [line("SO-1", qty=5)]) == []


def test_an_empty_queue_gets_nothing() -> None:
    assert plan_allocation(10, []) == []


def test_a_small_later_line_never_jumps_a_big_head_line() -> None:
    queue = [line("SO-1", qty=5), line("SO-2", qty=1)]
    assert plan_of(plan_allocation(2, queue)) == [("SO-1", 2)]


def test_a_line_with_nothing_waiting_gets_no_allocation_entry() -> None:
    queue = [line("SO-1", qty=0), line("SO-2", qty=3)]
    assert plan_of(plan_allocation(2, queue)) == [("SO-2", 2)]


def test_allocations_carry_the_queue_line_they_fill() -> None:
    head = line("SO-1", 2, qty=4)
    assert plan_allocation(1, [head]) == [Allocation(head, 1)]


# --- property: rule order is kept and no stock is left idle --------------------------------------

DATES = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 1, 10))


@st.composite
def queue_lines(draw: Any) -> list[QueueLine]:
    ids = draw(
        st.lists(
            st.tuples(st.sampled_from(["SO-1", "SO-2", "SO-10", "SO-9"]), st.integers(1, 3)),
            unique=True,
            max_size=12,
        )
    )
    return [
        QueueLine(
            line_id=i,
            order_number=order_number,
            line_no=line_no,
            sku="SKU-A",
            backordered_qty=draw(st.integers(0, 20)),
            priority=draw(st.integers(-1, 2)),
            tier_rank=draw(st.sampled_from(list(Tier))).rank,
            order_value=draw(st.sampled_from([Decimal("0"), Decimal("9.99"), Decimal("10.00"), Decimal("250")])),
            placed_at=T0 + timedelta(minutes=draw(st.integers(0, 3))),
            promised_date=draw(st.none() | DATES),
        )
        for i, (order_number, line_no) in enumerate(ids)
    ]


RULES = st.lists(st.sampled_from(list(RuleKey)), unique=True, min_size=1)

# Written apart from KEY_FIELDS so the property checks the documented directions, not the code's own table.
REFERENCE: dict[RuleKey, Any] = {
    RuleKey.PRIORITY: lambda q: -q.priority,
    RuleKey.CUSTOMER_TIER: lambda q: -q.tier_rank,
    RuleKey.ORDER_VALUE: lambda q: -q.order_value,
    RuleKey.PLACED_AT: lambda q: q.placed_at,
    RuleKey.PROMISED_DATE: lambda q: (q.promised_date is None, q.promised_date or date.min),
}


def reference_key(rule: list[RuleKey], q: QueueLine) -> tuple[Any, ...]:
    return (*(REFERENCE[k](q) for k in rule), q.placed_at, q.order_number, q.line_no)


@given(lines=queue_lines(), rule=RULES, available=st.integers(0, 150), seed=st.randoms())
def test_allocation_follows_rule_order_and_leaves_no_stock_idle(
    lines: list[QueueLine], rule: list[RuleKey], available: int, seed: Any
) -> None:
    queue = order_queue(rule, lines)
    shuffled = list(lines)
    seed.shuffle(shuffled)
    assert order_queue(rule, shuffled) == queue  # a total order: input order never matters
    assert queue == sorted(lines, key=lambda q: reference_key(rule, q))

    given_qty = {a.line.line_id: a.qty for a in plan_allocation(available, queue)}
    for pos, q in enumerate(queue):
        got = given_qty.get(q.line_id, 0)
        assert 0 <= got <= q.backordered_qty
        if got > 0:
            earlier = queue[:pos]
            assert all(given_qty.get(e.line_id, 0) == e.backordered_qty for e in earlier)
    assert sum(given_qty.values()) == min(available, sum(q.backordered_qty for q in lines))
