"""A receipt fills the SKU's queue at once, in the order the business's rule gives (PRODUCT.md rules 4-7)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from oms.domain.allocation import RuleKey, Tier
from oms.domain.errors import Conflict
from oms.replenishment import use_cases as replenishment

from ..builders import Shop


def waiting(shop: Shop, *numbers: str) -> list[int]:
    """The back-ordered units of each order's first line."""
    return [shop.load(n).lines[0].backordered_qty for n in numbers]


def test_first_come_first_served_fills_the_oldest_line_first(shop: Shop) -> None:
    shop.product("A")
    for n in ("O-1", "O-2", "O-3"):
        shop.order(n, [("A", 2)])
        shop.tick(minutes=1)
    shop.receive("GRN-1", [("A", 3)])
    assert waiting(shop, "O-1", "O-2", "O-3") == [0, 1, 2]
    assert shop.load("O-2").lines[0].allocated_qty == 1


def test_a_higher_tier_goes_first_when_the_rule_says_so(shop: Shop) -> None:
    shop.product("A")
    shop.customer("GOLD", Tier.GOLD)
    shop.rule(RuleKey.CUSTOMER_TIER, RuleKey.PLACED_AT)
    shop.order("O-1", [("A", 1)])
    shop.tick(minutes=1)
    shop.order("O-2", [("A", 1)], customer="GOLD")
    shop.receive("GRN-1", [("A", 1)])
    assert waiting(shop, "O-1", "O-2") == [1, 0]


def test_the_larger_order_goes_first_under_the_order_value_rule(shop: Shop) -> None:
    shop.product("A", price="5.00")
    shop.product("B", on_hand=10, price="100.00")
    shop.rule(RuleKey.ORDER_VALUE, RuleKey.PLACED_AT)
    shop.order("O-1", [("A", 1)])
    shop.tick(minutes=1)
    shop.order("O-2", [("A", 1), ("B", 1)])
    shop.receive("GRN-1", [("A", 1)])
    assert waiting(shop, "O-1", "O-2") == [1, 0]


def test_a_manual_priority_jumps_the_queue(shop: Shop) -> None:
    shop.product("A")
    shop.order("O-1", [("A", 1)])
    shop.tick(minutes=1)
    shop.order("O-2", [("A", 1)])
    shop.prioritise("O-2", 5)
    shop.receive("GRN-1", [("A", 1)])
    assert waiting(shop, "O-1", "O-2") == [1, 0]


def test_what_no_one_waits_for_goes_on_the_shelf(shop: Shop) -> None:
    shop.product("A")
    shop.order("O-1", [("A", 2)])
    shop.receive("GRN-1", [("A", 5)])
    product = shop.product("A")  # read back through the catalogue's own use case
    assert (product.product.on_hand, product.product.allocated, product.product.backordered) == (5, 2, 0)


def test_the_same_grn_again_changes_nothing_and_a_different_one_under_its_number_is_refused(shop: Shop) -> None:
    shop.product("A")
    shop.order("O-1", [("A", 4)])
    first = shop.receive("GRN-1", [("A", 2)])
    again = shop.receive("GRN-1", [("A", 2)])
    assert again.result == first.result and not again.created
    assert waiting(shop, "O-1") == [2]
    with pytest.raises(Conflict):
        shop.receive("GRN-1", [("A", 3)])


def test_a_receipt_against_a_purchase_order_counts_against_its_line(shop: Shop) -> None:
    shop.product("A", lead_time_days=10)
    shop.purchase_order("PO-1", [("A", 5, shop.now.date() + timedelta(days=3))])
    shop.order("O-1", [("A", 2)])
    assert shop.load("O-1").lines[0].promised_date == shop.now.date() + timedelta(days=3)
    first = shop.receive("GRN-1", [("A", 4)], po="PO-1")
    assert first.result["po_lines"] == [{"sku": "A", "received": 4, "against_po": 4, "over": 0, "unplanned": 0}]
    assert waiting(shop, "O-1") == [0]
    more = shop.receive("GRN-2", [("A", 3)], po="PO-1")  # one unit was still due; two come over
    assert more.result["po_lines"] == [{"sku": "A", "received": 3, "against_po": 1, "over": 2, "unplanned": 0}]


def test_a_cancelled_purchase_order_takes_no_receipt(shop: Shop) -> None:
    shop.product("A")
    shop.purchase_order("PO-1", [("A", 5, shop.now.date())])
    shop.run(lambda uow: replenishment.cancel_po(uow, "PO-1"))
    with pytest.raises(Conflict):
        shop.receive("GRN-1", [("A", 1)], po="PO-1")
