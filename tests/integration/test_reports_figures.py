"""Every report figure against a history written at fixed times, worked out by hand, on both stores.

The history (T0 = 2026-03-01 08:00 UTC; the reports are read at NOW = 2026-03-31 12:00):

  SKU A 10.00 (lead 10 d), B 4.00 (no lead time), C 2.50 (lead 20 d); C1 gold, C2 standard.
  02-01 09:00 O7 web C1  C x8   -> 8 wait (promised 02-21 = today + 20 d)
  03-01 08:00 stock A +5, B +10; PO-1 Acme A 4 exp 03-05; PO-2 Beta A 10 exp 03-10; PO-3 Acme C 5 exp 03-25
  03-01 09:00 O1 web C1  A x3, B x2 -> all at once
  03-01 10:00 O2 pos C2  A x4       -> 2 at once, 2 wait (promised 03-05: PO-1 covers them)
  03-01 11:00 O3 web C1  A x5       -> 5 wait (promised 03-10: PO-2 covers 7 > 4)
  03-01 12:00 O4 web C2  B x6       -> all at once (never dispatched)
  03-02 13:00 O1 dispatched                      -> O1 lines: 28 h
  03-03 10:00 O2's first shipment dispatched
  03-04 10:00 GRN-1 on PO-1: A 4 -> O2 +2 (wait 72 h), O3 +2            (PO-1 on time)
  03-05 10:00 O2's second shipment dispatched    -> O2: 96 h, on its promise day
  03-06 08:00 O3's first shipment dispatched
  03-12 09:00 GRN-2 on PO-2 (received_at 06:00): A 10 -> O3 +3 (wait 262 h), 7 left (PO-2 2 d late)
  03-13 11:00 O3's second shipment dispatched    -> O3: 288 h, 3 d after its promise
  03-15 09:00 O7 cancel 5 "auto-cancel: waited more than 30 days"   (aged_out)
  03-16 09:00 O7 cancel 1 "stock count error"                       (operations)
  03-20 12:00 O5 web C2  B x9       -> 2 at once, 7 wait (no lead time: no promise)
  03-21 09:00 O5 cancel 3 "Customer changed mind"                   (customer)
  03-30 10:00 O6 pos C1  A x9       -> 7 at once, 2 wait (promised 04-09)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from oms.catalog import use_cases as catalog
from oms.domain.allocation import Tier
from oms.domain.fulfillment import reason_code_of
from oms.fulfillment import use_cases as fulfillment
from oms.orders import use_cases as orders
from oms.replenishment import use_cases as replenishment
from oms.reports.backorders import pending_backorders
from oms.reports.cancellations import cancellations
from oms.reports.filters import Filters
from oms.reports.lead_times import lead_times
from oms.reports.names import BREAKDOWN_LIMIT, REPORTS
from oms.reports.queries import run
from oms.reports.service_levels import fill_rate, promise_accuracy, supplier_on_time
from oms.reports.summary import metric_figures, summary
from oms.reports.tables import as_table
from oms.store.db import Store, make_engine
from oms.store.tables import metadata, shipments
from oms.store.uow import UnitOfWork as Ctx
from tests.conftest import STORES

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def build_history(store: Store, t0: datetime = T0) -> None:
    """Write the history in the module docstring, every step at t0 + its offset."""

    def at(days: float, hours: float = 0) -> datetime:
        return t0 + timedelta(days=days, hours=hours)

    def day(n: int) -> date:
        return t0.date() + timedelta(days=n)

    def do(when: datetime, step: Callable[[Ctx], Any]) -> Any:
        return store.write(step, actor="test", now=when)

    def place(when: datetime, number: str, channel: str, customer: str, lines: list[tuple[str, int]]) -> None:
        cmd = orders.PlaceOrder(number, channel, customer, [orders.NewLine(s, q) for s, q in lines])
        do(when, lambda ctx: orders.place_order(ctx, cmd))

    def dispatch(when: datetime, order_number: str, nth: int) -> None:
        ids = store.read(
            lambda c: list(
                c.scalars(
                    select(shipments.c.id).where(shipments.c.order_number == order_number).order_by(shipments.c.id)
                )
            )
        )
        for step in range(3):
            carrier, tracking = ("DHL", f"T-{ids[nth]}") if step == 2 else (None, None)
            do(when, lambda ctx, c=carrier, t=tracking: fulfillment.advance_shipment(ctx, ids[nth], c, t))

    def cancel(when: datetime, number: str, qty: int, reason: str) -> None:
        do(when, lambda ctx: orders.cancel_order(ctx, number, reason, [(1, qty)]))

    def receive(when: datetime, grn: str, po: str, qty: int, received_at: datetime | None = None) -> None:
        lines = [replenishment.ReceiptLine("A", qty)]
        do(when, lambda ctx: replenishment.receive_goods(ctx, grn, lines, po, received_at))

    start = at(-28)
    for sku, price, lead in (("A", "10.00", 10), ("B", "4.00", None), ("C", "2.50", 20)):
        do(
            start,
            lambda ctx, s=sku, p=price, n=lead: catalog.put_product(ctx, catalog.ProductSpec(s, s, Decimal(p), n)),
        )
    for cid, tier in (("C1", Tier.GOLD), ("C2", Tier.STANDARD)):
        do(start, lambda ctx, c=cid, t=tier: catalog.put_customer(ctx, catalog.CustomerSpec(c, c, f"{c}@x.test", t)))
    place(at(-28, 1), "O7", "web", "C1", [("C", 8)])
    do(at(0), lambda ctx: catalog.adjust_stock(ctx, "A", 5, "count"))
    do(at(0), lambda ctx: catalog.adjust_stock(ctx, "B", 10, "count"))
    for po, supplier, sku, qty, expected in (
        ("PO-1", "Acme", "A", 4, day(4)),
        ("PO-2", "Beta", "A", 10, day(9)),
        ("PO-3", "Acme", "C", 5, day(24)),
    ):
        line = replenishment.PoLine(sku, qty, expected)
        do(at(0), lambda ctx, p=po, s=supplier, ln=line: replenishment.create_po(ctx, p, s, [ln]))
    place(at(0, 1), "O1", "web", "C1", [("A", 3), ("B", 2)])
    place(at(0, 2), "O2", "pos", "C2", [("A", 4)])
    place(at(0, 3), "O3", "web", "C1", [("A", 5)])
    place(at(0, 4), "O4", "web", "C2", [("B", 6)])
    dispatch(at(1, 5), "O1", 0)
    dispatch(at(2, 2), "O2", 0)
    receive(at(3, 2), "GRN-1", "PO-1", 4)
    dispatch(at(4, 2), "O2", 1)
    dispatch(at(5), "O3", 0)
    receive(at(11, 1), "GRN-2", "PO-2", 10, received_at=at(10, 22))
    dispatch(at(12, 3), "O3", 1)
    cancel(at(14, 1), "O7", 5, "auto-cancel: waited more than 30 days")
    cancel(at(15, 1), "O7", 1, "stock count error")
    place(at(19, 4), "O5", "web", "C2", [("B", 9)])
    cancel(at(20, 1), "O5", 3, "Customer changed mind")
    place(at(29, 2), "O6", "pos", "C1", [("A", 9)])


@pytest.fixture(scope="module", params=STORES)
def history(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The history, written once per store for this module's read-only tests (writing it takes seconds)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("history") / "oms.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        s = Store(make_engine(f"sqlite:///{path}"))
    else:
        s = Store(make_engine(request.getfixturevalue("pg_engine_url")))
        with s.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} RESTART IDENTITY CASCADE"))
    build_history(s)
    yield s
    s.engine.dispose()


def read(store: Store, fn: Callable[..., Any], *args: Any) -> Any:
    return store.read(lambda c: fn(c, *args))


ALL = Filters()
MARCH_WEB = Filters(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), "web")
EMPTY_BUCKET = {"lines": 0, "units": 0, "value": "0.00"}


# ---- the summary ---------------------------------------------------------------------------------


def test_summary_over_all_time_matches_the_hand_computed_figures(history):
    assert read(history, summary, ALL, NOW) == {
        "pending_backorder_lines": 3,
        "pending_backorder_units": 8,
        "pending_backorder_value": "41.00",
        "by_age_bucket": {
            "0-2": {"lines": 1, "units": 2, "value": "20.00"},
            "3-7": EMPTY_BUCKET,
            "8-14": {"lines": 1, "units": 4, "value": "16.00"},
            "15-30": EMPTY_BUCKET,
            ">30": {"lines": 1, "units": 2, "value": "5.00"},
        },
        # placed -> dispatched: 28, 28, 96, 288 h; waits: 72, 262 h
        "lead_time_hours": {"p50": 62.0, "p90": 230.4},
        "backorder_wait_hours": {"p50": 167.0, "p90": 243.0},
        "cancelled_units_by_reason": {"customer": 3, "aged_out": 5, "operations": 1},
        "fill_rate_at_placement": round(22 / 46, 4),
    }


def test_summary_for_march_on_the_web_channel_leaves_out_other_channels_and_earlier_orders(history):
    assert read(history, summary, MARCH_WEB, NOW) == {
        "pending_backorder_lines": 1,
        "pending_backorder_units": 4,
        "pending_backorder_value": "16.00",
        "by_age_bucket": {
            "0-2": EMPTY_BUCKET,
            "3-7": EMPTY_BUCKET,
            "8-14": {"lines": 1, "units": 4, "value": "16.00"},
            "15-30": EMPTY_BUCKET,
            ">30": EMPTY_BUCKET,
        },
        "lead_time_hours": {"p50": 28.0, "p90": 236.0},  # O1 A, O1 B, O3: 28, 28, 288
        "backorder_wait_hours": {"p50": 262.0, "p90": 262.0},
        "cancelled_units_by_reason": {"customer": 3, "aged_out": 5, "operations": 1},
        "fill_rate_at_placement": 0.52,  # O1 5/5, O3 0/5, O4 6/6, O5 2/9
    }


def test_a_period_that_ends_before_the_first_dispatch_has_no_lead_times(history):
    f = Filters(end=datetime(2026, 3, 2, 12, tzinfo=UTC))
    out = read(history, summary, f, NOW)
    assert out["lead_time_hours"] == {"p50": None, "p90": None}
    assert out["backorder_wait_hours"] == {"p50": None, "p90": None}
    assert out["cancelled_units_by_reason"] == {"customer": 0, "aged_out": 0, "operations": 0}


# ---- pending back orders ---------------------------------------------------------------------------


def _ages(a: int = 0, b: int = 0, c: int = 0, d: int = 0, e: int = 0) -> dict[str, int]:
    return {"0-2": a, "3-7": b, "8-14": c, "15-30": d, ">30": e}


def test_pending_back_orders_by_sku(history):
    out = read(history, pending_backorders, ALL, NOW, "sku")
    assert out["items"] == [
        {"sku": "B", "lines": 1, "units": 4, "value": "16.00", "oldest_age_days": 11, "units_by_age": _ages(c=4)},
        {"sku": "A", "lines": 1, "units": 2, "value": "20.00", "oldest_age_days": 1, "units_by_age": _ages(a=2)},
        {"sku": "C", "lines": 1, "units": 2, "value": "5.00", "oldest_age_days": 58, "units_by_age": _ages(e=2)},
    ]
    assert out["total"] == {
        "lines": 3,
        "units": 8,
        "value": "41.00",
        "oldest_age_days": 58,
        "units_by_age": _ages(a=2, c=4, e=2),
    }


def test_a_breakdown_cut_to_its_first_groups_still_counts_and_sums_them_all(history):
    for filters in (ALL, Filters(start=ALL.start or datetime(2000, 1, 1, tzinfo=UTC))):  # rollups, lines
        whole = read(history, pending_backorders, filters, NOW, "sku")
        first = read(history, pending_backorders, filters, NOW, "sku", 1)
        assert (whole["groups"], whole["limit"], len(whole["items"])) == (3, BREAKDOWN_LIMIT, 3)
        assert (first["groups"], first["limit"]) == (3, 1)
        assert first["items"] == whole["items"][:1] and first["items"][0]["sku"] == "B"
        assert first["total"] == whole["total"] and first["total"]["units"] == 8
        two = read(history, pending_backorders, filters, NOW, "customer", 1)
        assert [(i["customer"], i["units"]) for i in two["items"]] == [("C1", 4)]  # ties: the lower key first
        assert two["groups"] == 2


def test_pending_back_orders_by_customer_channel_and_tier(history):
    by = {g: read(history, pending_backorders, ALL, NOW, g)["items"] for g in ("customer", "channel", "tier")}
    assert [(i["customer"], i["lines"], i["units"], i["value"], i["oldest_age_days"]) for i in by["customer"]] == [
        ("C1", 2, 4, "25.00", 58),
        ("C2", 1, 4, "16.00", 11),
    ]
    assert [(i["channel"], i["lines"], i["units"], i["value"], i["units_by_age"]) for i in by["channel"]] == [
        ("web", 2, 6, "21.00", _ages(c=4, e=2)),
        ("pos", 1, 2, "20.00", _ages(a=2)),
    ]
    assert [(i["tier"], i["units"], i["value"]) for i in by["tier"]] == [("gold", 4, "25.00"), ("standard", 4, "16.00")]


# ---- lead times ------------------------------------------------------------------------------------


def test_lead_times_split_by_whether_the_line_waited(history):
    out = read(history, lead_times, ALL)
    rows = {(i["measure"], i["segment"]): (i["count"], i["p50"], i["p90"], i["max"]) for i in out["items"]}
    assert rows == {
        ("placed_to_dispatched", "all"): (4, 62.0, 230.4, 288.0),
        ("placed_to_dispatched", "backordered"): (2, 192.0, 268.8, 288.0),
        ("placed_to_dispatched", "not_backordered"): (2, 28.0, 28.0, 28.0),
        ("backorder_wait", "backordered"): (2, 167.0, 243.0, 262.0),
        # GRN-1's two allocations came at once; GRN-2's was booked 3 h after the goods arrived
        ("receipt_to_allocation", "all"): (3, 0.0, 2.4, 3.0),
    }


def test_lead_times_on_the_pos_channel_count_only_its_lines(history):
    out = read(history, lead_times, Filters(channel="pos"))
    rows = {(i["measure"], i["segment"]): (i["count"], i["p50"], i["max"]) for i in out["items"]}
    assert rows[("placed_to_dispatched", "all")] == (1, 96.0, 96.0)
    assert rows[("backorder_wait", "backordered")] == (1, 72.0, 72.0)
    assert rows[("receipt_to_allocation", "all")] == (1, 0.0, 0.0)


# ---- cancellations ---------------------------------------------------------------------------------


def test_cancellations_by_reason_class_and_share_of_back_ordered_units(history):
    out = read(history, cancellations, ALL)
    # units that ever waited: O2 2, O3 5, O5 7, O6 2, O7 8 = 24
    assert out["items"] == [
        {
            "reason": "customer",
            "cancellations": 1,
            "units": 3,
            "backordered_units": 3,
            "share_of_backordered_units": 0.125,
        },
        {
            "reason": "aged_out",
            "cancellations": 1,
            "units": 5,
            "backordered_units": 5,
            "share_of_backordered_units": round(5 / 24, 4),
        },
        {
            "reason": "operations",
            "cancellations": 1,
            "units": 1,
            "backordered_units": 1,
            "share_of_backordered_units": round(1 / 24, 4),
        },
    ]
    assert out["total"] == {
        "cancellations": 3,
        "units": 9,
        "backordered_units": 9,
        "units_backordered": 24,
        "share_of_backordered_units": 0.375,
    }


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("Customer changed mind", "customer"),
        ("buyer asked", "customer"),
        ("auto-cancel: waited more than 30 days", "aged_out"),
        ("Aged out of the queue", "aged_out"),
        ("stock count error", "operations"),
        ("", "operations"),
        (None, "operations"),
    ],
)
def test_a_reason_sent_without_a_code_gets_one_from_its_text(reason, expected):
    assert reason_code_of(reason) == expected


# ---- fill rate -------------------------------------------------------------------------------------


def _fill(rows: list[dict[str, Any]], key: str) -> dict[str, tuple[int, int, float | None]]:
    return {r[key]: (r["units_ordered"], r["units_allocated_at_placement"], r["fill_rate"]) for r in rows}


def test_fill_rate_at_placement_by_sku_channel_day_and_week(history):
    out = {g: read(history, fill_rate, ALL, g) for g in ("sku", "channel", "day", "week")}
    assert _fill(out["sku"]["items"], "sku") == {"A": (21, 12, 0.5714), "B": (17, 10, 0.5882), "C": (8, 0, 0.0)}
    assert _fill(out["channel"]["items"], "channel") == {"pos": (13, 9, 0.6923), "web": (33, 13, 0.3939)}
    assert _fill(out["day"]["items"], "day") == {
        "2026-02-01": (8, 0, 0.0),
        "2026-03-01": (20, 13, 0.65),
        "2026-03-20": (9, 2, 0.2222),
        "2026-03-30": (9, 7, 0.7778),
    }
    # weeks start on Monday: 02-01 and 03-01 are Sundays, 03-30 a Monday
    assert _fill(out["week"]["items"], "week") == {
        "2026-01-26": (8, 0, 0.0),
        "2026-02-23": (20, 13, 0.65),
        "2026-03-16": (9, 2, 0.2222),
        "2026-03-30": (9, 7, 0.7778),
    }
    assert out["sku"]["total"] == {
        "lines": 8,
        "lines_filled_at_placement": 3,
        "units_ordered": 46,
        "units_allocated_at_placement": 22,
        "fill_rate": 0.4783,
    }


# ---- promises --------------------------------------------------------------------------------------


def test_promise_accuracy_judges_dispatched_lines_and_open_lines_past_their_promise(history):
    out = read(history, promise_accuracy, ALL, TODAY, "sku")
    # O2 on its promise day; O3 3 days late; O7 open 38 days past 02-21; O6 not yet due; O5 never promised
    assert out["items"] == [
        {
            "sku": "A",
            "lines_judged": 2,
            "on_time": 1,
            "late": 1,
            "late_still_open": 0,
            "on_time_rate": 0.5,
            "mean_slip_days": 3.0,
            "max_slip_days": 3,
        },
        {
            "sku": "C",
            "lines_judged": 1,
            "on_time": 0,
            "late": 1,
            "late_still_open": 1,
            "on_time_rate": 0.0,
            "mean_slip_days": 38.0,
            "max_slip_days": 38,
        },
    ]
    assert out["total"] == {
        "lines_judged": 3,
        "on_time": 1,
        "late": 2,
        "late_still_open": 1,
        "on_time_rate": 0.3333,
        "mean_slip_days": 20.5,
        "max_slip_days": 38,
    }


def test_promise_accuracy_by_channel_over_promises_due_in_march(history):
    f = Filters(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    out = read(history, promise_accuracy, f, TODAY, "channel")
    assert [(i["channel"], i["lines_judged"], i["on_time"], i["mean_slip_days"]) for i in out["items"]] == [
        ("pos", 1, 1, None),
        ("web", 1, 0, 3.0),
    ]


def test_supplier_on_time_rate_from_expected_and_received_dates(history):
    out = read(history, supplier_on_time, ALL, TODAY)
    # Acme: PO-1 complete a day early, PO-3 still open 6 days past 03-25; Beta: PO-2 complete 2 days late
    assert out["items"] == [
        {
            "supplier": "Acme",
            "po_lines_judged": 2,
            "on_time": 1,
            "late": 1,
            "late_still_open": 1,
            "on_time_rate": 0.5,
            "mean_days_late": 6.0,
        },
        {
            "supplier": "Beta",
            "po_lines_judged": 1,
            "on_time": 0,
            "late": 1,
            "late_still_open": 0,
            "on_time_rate": 0.0,
            "mean_days_late": 2.0,
        },
    ]
    assert out["total"]["on_time_rate"] == 0.3333
    assert out["total"]["mean_days_late"] == 4.0


# ---- metrics ---------------------------------------------------------------------------------------


def test_metric_figures_count_allocations_receipts_and_waiting_units(history):
    m = read(history, metric_figures, NOW)
    assert m["pending_units_by_age"] == _ages(a=2, c=4, e=2)
    assert m["allocations"] == {"placement": (6, 22), "receipt": (3, 7)}
    assert (m["receipts"], m["received_units"]) == (2, 14)
    # SKUs waiting: A 2, B 4, C 2 units
    assert m["sku_pending_le"] == [(1, 0), (5, 3), (10, 3), (50, 3), (100, 3), (500, 3), (1000, 3)]
    assert (m["sku_pending_count"], m["sku_pending_sum"]) == (3, 8)


# ---- tables ----------------------------------------------------------------------------------------


def test_every_report_renders_as_a_table_whose_rows_are_its_items(history):
    for name in REPORTS:
        data = history.read(run(name, ALL, NOW))
        columns, rows = as_table(name, data)
        if name == "summary":
            assert ["pending_backorder_value", "41.00"] in rows
            assert ["by_age_bucket.>30.units", 2] in rows
        else:
            assert len(rows) == len(data["items"])
            assert all(len(r) == len(columns) for r in rows)
