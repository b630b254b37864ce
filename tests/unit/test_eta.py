"""Estimated dates for back-ordered lines (PRODUCT.md rule 9), on plain values."""

from __future__ import annotations

from datetime import date

from oms.domain.eta import Eta, Supply, quote_eta, walk_etas

TODAY = date(2026, 3, 2)
MAR_10 = date(2026, 3, 10)
MAR_20 = date(2026, 3, 20)
APR_01 = date(2026, 4, 1)

THREE_POS = [Supply(MAR_10, 5, "PO-1"), Supply(MAR_20, 5, "PO-2"), Supply(APR_01, 5, "PO-3")]


def test_a_line_covered_by_the_first_po_gets_its_expected_date() -> None:
    assert walk_etas([4], [Supply(MAR_10, 10, "PO-1")], TODAY, 14) == [Eta(MAR_10, "po:PO-1")]


def test_a_line_exactly_covered_by_a_po_gets_that_po() -> None:
    assert walk_etas([5, 5], THREE_POS, TODAY, 14) == [Eta(MAR_10, "po:PO-1"), Eta(MAR_20, "po:PO-2")]


def test_several_lines_share_one_po_while_it_covers_their_running_demand() -> None:
    etas = walk_etas([2, 2, 1], [Supply(MAR_10, 5, "PO-1")], TODAY, 14)
    assert etas == [Eta(MAR_10, "po:PO-1")] * 3


def test_running_demand_walks_across_several_pos() -> None:
    # running demand 4, 9, 15 against running incoming 5, 10, 15
    etas = walk_etas([4, 5, 6], THREE_POS, TODAY, 14)
    assert etas == [Eta(MAR_10, "po:PO-1"), Eta(MAR_20, "po:PO-2"), Eta(APR_01, "po:PO-3")]


def test_one_line_spanning_several_pos_waits_for_the_last_one_it_needs() -> None:
    assert walk_etas([12], THREE_POS, TODAY, 14) == [Eta(APR_01, "po:PO-3")]


def test_pos_are_walked_by_expected_date_whatever_order_they_come_in() -> None:
    etas = walk_etas([4, 5], list(reversed(THREE_POS)), TODAY, 14)
    assert etas == [Eta(MAR_10, "po:PO-1"), Eta(MAR_20, "po:PO-2")]


def test_pos_expected_the_same_day_are_walked_by_po_number() -> None:
    supplies = [Supply(MAR_10, 5, "PO-B"), Supply(MAR_10, 5, "PO-A")]
    assert walk_etas([3, 4], supplies, TODAY, 14) == [Eta(MAR_10, "po:PO-A"), Eta(MAR_10, "po:PO-B")]


def test_demand_beyond_every_po_falls_back_to_today_plus_lead_time() -> None:
    etas = walk_etas([4, 10], [Supply(MAR_10, 5, "PO-1")], TODAY, 14)
    assert etas == [Eta(MAR_10, "po:PO-1"), Eta(date(2026, 3, 16), "lead_time")]


def test_every_line_after_the_pos_run_out_gets_the_lead_time() -> None:
    etas = walk_etas([6, 1, 1], [Supply(MAR_10, 5, "PO-1")], TODAY, 30)
    assert etas == [Eta(date(2026, 4, 1), "lead_time")] * 3


def test_without_pos_the_lead_time_gives_the_date() -> None:
    assert walk_etas([3], [], TODAY, 7) == [Eta(date(2026, 3, 9), "lead_time")]


def test_a_zero_day_lead_time_means_today_not_unknown() -> None:
    assert walk_etas([3], [], TODAY, 0) == [Eta(TODAY, "lead_time")]


def test_without_a_lead_time_an_uncovered_line_is_unknown() -> None:
    etas = walk_etas([5, 1], [Supply(MAR_10, 5, "PO-1")], TODAY, None)
    assert etas == [Eta(MAR_10, "po:PO-1"), Eta(None, "unknown")]


def test_a_late_po_is_dated_today_not_in_the_past() -> None:
    etas = walk_etas([3], [Supply(date(2026, 2, 20), 5, "PO-LATE")], TODAY, 14)
    assert etas == [Eta(TODAY, "po:PO-LATE")]


def test_a_po_due_today_keeps_its_date() -> None:
    assert walk_etas([3], [Supply(TODAY, 5, "PO-1")], TODAY, 14) == [Eta(TODAY, "po:PO-1")]


def test_an_empty_queue_has_no_etas() -> None:
    assert walk_etas([], THREE_POS, TODAY, 14) == []


def test_a_quote_with_nothing_ahead_gets_the_first_po() -> None:
    assert quote_eta(0, 3, THREE_POS, TODAY, 14) == Eta(MAR_10, "po:PO-1")


def test_a_quote_waits_behind_the_units_ahead_of_it() -> None:
    # 6 units ahead + 3 new = 9, first covered by the running incoming of PO-2 (10)
    assert quote_eta(6, 3, THREE_POS, TODAY, 14) == Eta(MAR_20, "po:PO-2")


def test_a_quote_behind_all_incoming_gets_the_lead_time() -> None:
    assert quote_eta(14, 2, THREE_POS, TODAY, 10) == Eta(date(2026, 3, 12), "lead_time")


def test_a_quote_without_pos_or_lead_time_is_unknown() -> None:
    assert quote_eta(0, 1, [], TODAY, None) == Eta(None, "unknown")
