"""The catalogue's use cases: stock counts, a customer's tier, the default policy (PRODUCT.md rules 3, 5, 12)."""

from __future__ import annotations

import pytest

from oms.catalog import use_cases as catalog
from oms.domain.allocation import RuleKey, Tier
from oms.domain.errors import Conflict
from oms.domain.policy import BackorderMode, BackorderPolicy

from ..builders import Shop


def test_units_found_in_a_count_go_to_the_queue(shop: Shop) -> None:
    shop.product("A")
    shop.order("O-1", [("A", 2)])
    shop.adjust("A", 1)
    line = shop.load("O-1").lines[0]
    assert (line.allocated_qty, line.backordered_qty) == (1, 1)


def test_a_count_may_not_take_on_hand_below_what_is_allocated(shop: Shop) -> None:
    shop.product("A", on_hand=3)
    shop.order("O-1", [("A", 2)])
    with pytest.raises(Conflict):
        shop.adjust("A", -2)
    saved = shop.product("A")
    assert (saved.product.on_hand, saved.product.allocated) == (3, 2)


def test_a_tier_change_moves_the_customers_waiting_lines_in_a_tier_ranked_queue(shop: Shop) -> None:
    shop.product("A")
    shop.customer("C2")
    shop.rule(RuleKey.CUSTOMER_TIER, RuleKey.PLACED_AT)
    shop.order("O-1", [("A", 1)])
    shop.tick(minutes=1)
    shop.order("O-2", [("A", 1)], customer="C2")
    shop.customer("C2", Tier.PLATINUM)
    shop.receive("GRN-1", [("A", 1)])
    assert [shop.load(n).lines[0].allocated_qty for n in ("O-1", "O-2")] == [0, 1]


def test_the_default_policy_governs_products_without_their_own(shop: Shop) -> None:
    shop.product("A")
    shop.product("B", policy=BackorderPolicy(BackorderMode.ALWAYS))
    shop.run(lambda uow: catalog.set_default_policy(uow, BackorderPolicy(BackorderMode.NEVER)))
    with pytest.raises(Conflict):
        shop.order("O-1", [("A", 1)])
    assert shop.order("O-2", [("B", 1)]).lines[0].backordered_qty == 1
