"""ETAs move with every event that can move them; a later ETA queues a notice; the first promise stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oms.domain.eta import late_supply_date
from oms.orders import jobs

from .conftest import customer, make_worker, outbox_rows, place, po, product

TODAY = datetime.now(UTC).date()


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def eta(api, order_number: str) -> str | None:
    return api.get(f"/orders/{order_number}").json()["lines"][0]["eta"]


def explained(api, order_number: str) -> dict:
    r = api.get(f"/orders/{order_number}/lines/1/explain")
    assert r.status_code == 200, r.text
    return r.json()


def later_notices(api) -> list[tuple[str, str | None, str | None]]:
    return [
        (r.order_number, line["from"], line["to"])
        for r in outbox_rows(api.store, event_type="eta_later")
        for line in r.payload["lines"]
    ]


@pytest.fixture
def two_waiting(api):
    """SO-1 then SO-2, 2 units each, one PO of 2 units on day 10, lead time 30 days."""
    product(api, "A", lead=30)
    customer(api, "ANN", "standard")
    customer(api, "GIL", "gold")
    po(api, "PO-1", [("A", 2, day(10))])
    place(api, "SO-1", [("A", 2)], cid="ANN", placed_at="2026-01-01T10:00:00Z")
    place(api, "SO-2", [("A", 2)], cid="GIL", placed_at="2026-01-01T11:00:00Z")
    assert (eta(api, "SO-1"), eta(api, "SO-2")) == (day(10), day(30))
    return api


def test_a_receipt_moves_the_rest_of_the_queue_onto_the_po(two_waiting):
    api = two_waiting
    r = api.post("/receipts", {"grn_number": "G-1", "lines": [{"sku": "A", "qty": 2}]})  # unplanned
    assert r.json()["allocations"] == [{"order_number": "SO-1", "line_no": 1, "sku": "A", "qty": 2}]
    assert (eta(api, "SO-1"), eta(api, "SO-2")) == (None, day(10))
    assert explained(api, "SO-2")["eta_basis"] == {"kind": "po", "po_number": "PO-1"}
    assert later_notices(api) == []


def test_a_new_po_dates_the_uncovered_line(two_waiting):
    api = two_waiting
    po(api, "PO-2", [("A", 5, day(20))])
    assert (eta(api, "SO-1"), eta(api, "SO-2")) == (day(10), day(20))
    assert later_notices(api) == []


def test_a_po_moved_later_moves_the_eta_later_keeps_the_promise_and_queues_a_notice(two_waiting):
    api = two_waiting
    r = api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "A", "expected_date": day(15)}]})
    assert r.status_code == 200, r.text
    assert eta(api, "SO-1") == day(15)
    assert explained(api, "SO-1")["promised_date"] == day(10)
    assert later_notices(api) == [("SO-1", day(10), day(15))]


def test_a_po_cut_in_quantity_falls_back_to_the_lead_time(two_waiting):
    api = two_waiting
    api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "A", "qty": 1}]})
    assert eta(api, "SO-1") == day(30)
    assert later_notices(api) == [("SO-1", day(10), day(30))]


def test_a_cancelled_po_falls_back_to_the_lead_time(two_waiting):
    api = two_waiting
    assert api.post("/purchase-orders/PO-1/cancel").status_code == 200
    assert (eta(api, "SO-1"), eta(api, "SO-2")) == (day(30), day(30))
    assert explained(api, "SO-1")["eta_basis"] == {"kind": "lead_time", "lead_time_days": 30}
    assert later_notices(api) == [("SO-1", day(10), day(30))]


def test_a_cancellation_ahead_brings_the_next_line_forward(two_waiting):
    api = two_waiting
    assert api.post("/orders/SO-1/cancel", {"reason": "changed mind"}).status_code == 200
    assert eta(api, "SO-2") == day(10)
    assert later_notices(api) == []


def test_a_priority_boost_jumps_the_queue_and_the_line_behind_is_told(two_waiting):
    api = two_waiting
    assert api.post("/orders/SO-2/priority", {"priority": 5}).status_code == 200
    assert (eta(api, "SO-1"), eta(api, "SO-2")) == (day(30), day(10))
    assert later_notices(api) == [("SO-1", day(10), day(30))]


def test_a_rule_change_reorders_the_queue_and_its_etas(two_waiting):
    api = two_waiting
    assert api.put("/settings/allocation-rule", {"keys": ["customer_tier", "placed_at"]}).status_code == 200
    assert (eta(api, "SO-1"), eta(api, "SO-2")) == (day(30), day(10))  # GIL is gold
    assert later_notices(api) == [("SO-1", day(10), day(30))]
    rule = explained(api, "SO-2")["rule"]
    assert [(k["key"], k["value"]) for k in rule] == [("customer_tier", "gold"), ("placed_at", "2026-01-01T11:00:00Z")]


def test_a_tier_change_under_a_tier_rule_reorders_the_queue(two_waiting):
    api = two_waiting
    api.put("/settings/allocation-rule", {"keys": ["customer_tier", "placed_at"]})
    r = api.put("/customers/ANN", {"name": "Ann", "email": "ann@example.com", "tier": "platinum"})
    assert r.status_code == 200, r.text
    assert (eta(api, "SO-1"), eta(api, "SO-2")) == (day(10), day(30))


def test_a_new_higher_tier_order_jumps_the_queue_and_pushes_the_waiting_line_later(api):
    product(api, "A", lead=30)
    customer(api, "ANN", "standard")
    customer(api, "PAT", "platinum")
    api.put("/settings/allocation-rule", {"keys": ["customer_tier", "placed_at"]})
    po(api, "PO-1", [("A", 2, day(10))])
    place(api, "SO-1", [("A", 2)], cid="ANN")
    assert eta(api, "SO-1") == day(10)
    place(api, "SO-2", [("A", 2)], cid="PAT")
    assert (eta(api, "SO-1"), eta(api, "SO-2")) == (day(30), day(10))
    assert explained(api, "SO-1")["queue_position"] == 2
    assert explained(api, "SO-1")["promised_date"] == day(10)
    assert later_notices(api) == [("SO-1", day(10), day(30))]


def test_a_late_po_counts_from_today_plus_grace(api, monkeypatch):
    monkeypatch.setenv("OMS_LATE_PO_GRACE_DAYS", "7")
    product(api, "A", lead=30)
    customer(api)
    po(api, "PO-LATE", [("A", 5, day(-3))])
    place(api, "SO-1", [("A", 2)])
    assert eta(api, "SO-1") == day(4)  # 3 days late: given 7 days from its expected date
    why = explained(api, "SO-1")
    assert why["incoming"][0] == {
        "po_number": "PO-LATE",
        "expected_date": day(-3),
        "counted_on": day(4),
        "late": True,
        "qty": 5,
        "running_qty": 5,
        "covers_this_line": True,
    }


def test_late_supply_dates_move_one_grace_period_at_a_time():
    expected = TODAY - timedelta(days=1)
    assert late_supply_date(expected, TODAY, 7) == expected + timedelta(days=7)
    assert late_supply_date(expected, TODAY + timedelta(days=5), 7) == expected + timedelta(days=7)
    assert late_supply_date(expected, TODAY + timedelta(days=6), 7) == expected + timedelta(days=14)
    assert late_supply_date(expected, TODAY + timedelta(days=20), 0) == TODAY + timedelta(days=20)
    assert late_supply_date(TODAY, TODAY, 7) == TODAY  # due today is not late


def test_the_daily_job_redates_lines_whose_po_became_late_once(api, monkeypatch):
    monkeypatch.setenv("OMS_LATE_PO_GRACE_DAYS", "7")
    product(api, "A", lead=60)
    customer(api)
    po(api, "PO-1", [("A", 5, day(2))])
    place(api, "SO-1", [("A", 2)])
    assert eta(api, "SO-1") == day(2)
    five_days_on = datetime.now(UTC) + timedelta(days=5)
    assert jobs.redate_late_po_skus(api.store, five_days_on) == 1
    assert eta(api, "SO-1") == day(9)  # late by 3 days: due + 7
    assert later_notices(api) == [("SO-1", day(2), day(9))]
    jobs.redate_late_po_skus(api.store, five_days_on)  # the same day again: nothing moves, nobody told twice
    assert eta(api, "SO-1") == day(9)
    assert len(later_notices(api)) == 1


def test_the_grace_can_be_a_setting(api):
    from oms.store.reads import put_setting

    api.store.write(lambda uow: put_setting(uow, "late_po_grace_days", {"days": 3}))
    product(api, "A", lead=30)
    customer(api)
    po(api, "PO-LATE", [("A", 5, day(-1))])
    place(api, "SO-1", [("A", 2)])
    assert eta(api, "SO-1") == day(2)


def test_an_eta_later_notice_reaches_the_customer_once(two_waiting, smtp):
    api = two_waiting
    api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "A", "expected_date": day(15)}]})
    make_worker(api.store).drain()
    assert [m["Subject"] for m in smtp.by_subject("new expected date")] == ["Order SO-1: a new expected date"]
