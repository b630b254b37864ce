"""The dashboard's pages and actions through TestClient, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from oms.catalog import views as catalog_views
from oms.fulfillment import views as shipment_views
from oms.orders import backorder_pages as backorders
from oms.orders import use_cases as orders
from oms.orders import views as order_views
from oms.replenishment import views as po_views
from oms.replenishment.pages import VIEWS
from oms.store.db import Store
from oms.store.uow import UnitOfWork as Ctx

from .conftest import Browser
from .seed import PO_DATE

ROW = re.compile(r'<tr data-order="([^"]+)" data-line="(\d+)"[^>]*>.*?<td class="num queue-pos">(\d+)</td>', re.S)


def queue(html: str) -> list[tuple[str, int]]:
    """(order number, queue position) of each back-order row, in page order."""
    return [(m.group(1), int(m.group(3))) for m in ROW.finditer(html)]


def pending(store: Store, sku: str) -> list[str]:
    listing = store.read(
        lambda c: order_views.list_backorders(
            c,
            sku=sku,
            customer_id=None,
            order_number=None,
            channel=None,
            min_age_days=None,
            sort="queue",
            limit=100,
            cursor=None,
            now=datetime.now(UTC),
        )
    )
    return [i["order_number"] for i in listing["items"]]


# ---- overview -----------------------------------------------------------------------------------


def test_the_overview_counts_what_waits_by_age_and_links_to_the_lists(admin: Browser) -> None:
    html = admin.get("/").text
    assert re.search(r'id="kpi-lines">10<', html)
    assert re.search(r'id="kpi-units">23<', html)
    assert re.search(r'id="kpi-value">1,854.00<', html)  # 894 + 100 + 540 + 300 + 20
    assert re.search(r'id="kpi-overdue">0<', html)
    assert re.search(r'id="ship-pick">1<', html)
    # ages 1-6 days: 7 lines; 7-9 days: 3 lines
    assert re.search(r"0-6 days</a></th>\s*<td class=\"num\">7</td>", html)
    assert re.search(r"7-13 days</a></th>\s*<td class=\"num\">3</td>", html)
    assert 'href="/backorders?min_age_days=7&amp;sort=age"' in html
    assert 'href="/purchasing?view=overdue"' in html


# ---- the back-order queue -----------------------------------------------------------------------


def test_the_queue_filters_by_sku_customer_tier_and_age_in_the_url(admin: Browser) -> None:
    assert queue(admin.get("/backorders?sku=TENT-2P").text) == [("SO-T1", 1), ("SO-T2", 2), ("SO-T3", 3)]
    assert queue(admin.get("/backorders?customer_id=ERIN").text) == [("SO-L1", 1)]
    assert sorted(queue(admin.get("/backorders?tier=gold").text)) == [("SO-S1", 1), ("SO-T1", 1)]
    assert queue(admin.get("/backorders?channel=phone").text) == [("SO-T2", 2)]
    aged = admin.get("/backorders?min_age_days=8&sort=age").text
    assert [o for o, _ in queue(aged)] == ["SO-T1", "SO-B1"]  # 9 and 8 days old, oldest first
    assert 'value="8"' in aged


def test_a_bad_filter_is_shown_next_to_its_field(admin: Browser) -> None:
    r = admin.get("/backorders?min_age_days=old&sku=TENT-2P")
    assert r.status_code == 422
    assert "A whole number of days" in r.text
    assert 'value="TENT-2P"' in r.text
    assert queue(r.text) == []


def test_the_queue_pages_by_cursor_without_losing_or_repeating_lines(admin: Browser, seeded: Store) -> None:
    def more(ctx: Ctx) -> None:
        for i in range(30):
            cmd = orders.PlaceOrder(f"SO-P{i:02d}", "web", "BOB", [orders.NewLine("LAMP-1", 1)])
            orders.place_order(ctx, cmd)

    seeded.write(more, actor="test")
    first = admin.get("/backorders?sku=LAMP-1&limit=25").text
    rows = queue(first)
    assert len(rows) == 25
    nxt = re.search(r'rel="next" href="([^"]+)"', first)
    assert nxt is not None
    second = queue(admin.get(nxt.group(1).replace("&amp;", "&")).text)
    assert len(second) == 6
    assert [p for _, p in rows + second] == list(range(1, 32))


def test_the_csv_holds_exactly_the_filtered_rows_of_every_page(admin: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backorders, "CSV_PAGE", 2)  # three TENT-2P lines: two pages
    r = admin.get("/backorders.csv?sku=TENT-2P")
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["order_number"], x["queue_position"], x["backordered_qty"]) for x in rows] == [
        ("SO-T1", "1", "2"),
        ("SO-T2", "2", "3"),
        ("SO-T3", "3", "1"),
    ]
    only = list(csv.DictReader(io.StringIO(admin.get("/backorders.csv?customer_id=ERIN").text)))
    assert [(x["order_number"], x["sku"], x["customer_tier"]) for x in only] == [("SO-L1", "LAMP-1", "standard")]


def test_cancelling_selected_lines_needs_a_reason_and_keeps_the_selection_when_refused(
    admin: Browser, seeded: Store
) -> None:
    back = "sku=BOOT-42"
    r = admin.post("/backorders/action", {"line": "SO-B1|1", "action": "cancel", "reason": "", "back": back})
    assert r.status_code == 422
    assert 'id="err-reason"' in r.text
    assert 'value="SO-B1|1" checked' in r.text
    assert pending(seeded, "BOOT-42") == ["SO-B1", "SO-B2"]

    r = admin.post("/backorders/action", {"line": "SO-B1|1", "action": "cancel", "reason": "duplicate", "back": back})
    assert r.status_code == 200
    assert "Cancelled 2 waiting units on 1 lines." in r.text
    assert queue(r.text) == [("SO-B2", 1)]
    order = seeded.read(lambda c: order_views.order_view(c, "SO-B1"))
    assert order["status"] == "cancelled"
    assert order["lines"][0]["cancelled_qty"] == 2


def test_raising_the_priority_of_selected_lines_moves_them_up(admin: Browser) -> None:
    r = admin.post(
        "/backorders/action", {"line": "SO-B2|1", "action": "priority", "priority": "5", "back": "sku=BOOT-42"}
    )
    assert queue(r.text) == [("SO-B2", 1), ("SO-B1", 2)]
    r = admin.post("/backorders/action", {"line": "SO-B2|1", "action": "priority", "priority": "9999"})
    assert r.status_code == 422
    assert 'id="err-priority"' in r.text


# ---- the order page -----------------------------------------------------------------------------


def test_the_order_page_shows_units_why_it_waits_and_the_timeline(admin: Browser) -> None:
    html = admin.get("/orders/SO-T2").text
    assert "Position <strong>2</strong> in the TENT-2P queue" in html
    assert "2 units ahead." in html
    assert "No purchase order open for it." in html
    assert 'class="ev ev-placed"' in html or "placed" in html
    stove = admin.get("/orders/SO-S2").text
    assert f"Next supply: PO-S1, 10 due {PO_DATE.isoformat()}." in stove
    assert admin.get("/orders/NOPE").status_code == 404


def test_cancelling_units_on_the_order_page_and_a_refusal_next_to_the_line(admin: Browser, seeded: Store) -> None:
    r = admin.post("/order-actions/cancel", {"order_number": "SO-T2", "qty_1": "7", "reason": "too many"})
    assert r.status_code == 409
    assert 'id="err-line-1"' in r.text
    assert 'value="7"' in r.text and 'value="too many"' in r.text
    r = admin.post("/order-actions/cancel", {"order_number": "SO-T2", "qty_1": "1", "reason": "customer request"})
    assert r.status_code == 200
    assert "Cancelled 1 units of SO-T2." in r.text
    assert "customer request" in r.text  # in the timeline
    line = seeded.read(lambda c: order_views.order_view(c, "SO-T2"))["lines"][0]
    assert (line["backordered_qty"], line["cancelled_qty"]) == (2, 1)


# ---- fulfillment --------------------------------------------------------------------------------


def _mug_shipment(store: Store) -> int:
    found = store.read(
        lambda c: shipment_views.list_shipments(
            c, status=None, channel=None, order_number="SO-M1", limit=5, cursor=None
        )
    )
    return int(found["items"][0]["id"])


def test_a_shipment_advances_step_by_step_and_dispatch_asks_for_carrier_and_tracking(
    admin: Browser, seeded: Store
) -> None:
    sid = _mug_shipment(seeded)
    for column in ("pick", "pack"):
        r = admin.post("/fulfillment/advance", {"column": column, "one": sid})
        assert r.status_code == 200
    assert seeded.read(lambda c: shipment_views.shipment_view(c, sid))["status"] == "awaiting_shipment"
    r = admin.post("/fulfillment/advance", {"column": "awaiting_shipment", "id": [sid], "carrier": "DHL"})
    assert r.status_code == 422
    assert 'id="err-tracking_number"' in r.text
    assert 'value="DHL"' in r.text
    r = admin.post(
        "/fulfillment/advance",
        {"column": "awaiting_shipment", "id": [sid], "carrier": "DHL", "tracking_number": "TRK-1"},
    )
    assert "1 shipment(s) moved to dispatched" in r.text
    shipped = seeded.read(lambda c: shipment_views.shipment_view(c, sid))
    assert (shipped["status"], shipped["carrier"], shipped["tracking_number"]) == ("dispatched", "DHL", "TRK-1")


# ---- purchasing ---------------------------------------------------------------------------------


def test_a_refused_purchase_order_keeps_what_was_typed_and_names_the_row(admin: Browser, seeded: Store) -> None:
    when = (date.today() + timedelta(days=9)).isoformat()
    form = {
        "po_number": "PO-9",
        "supplier": "Acme",
        "sku[]": ["TENT-2P", "NOPE-1"],
        "qty[]": ["6", "2"],
        "expected_date[]": [when, when],
    }
    r = admin.post("/purchasing/new", form)
    assert r.status_code == 422
    assert 'id="err-sku-1"' in r.text and "unknown sku" in r.text
    assert 'value="PO-9"' in r.text and 'value="NOPE-1"' in r.text
    r = admin.post(
        "/purchasing/new", {**form, "sku[]": ["TENT-2P", ""], "qty[]": ["6", ""], "expected_date[]": [when, ""]}
    )
    assert r.status_code == 200
    assert "Purchase order PO-9 created" in r.text
    po = seeded.read(lambda c: po_views.po_view(c, "PO-9", date.today()))
    assert [(line["sku"], line["qty"], line["expected_date"]) for line in po["lines"]] == [("TENT-2P", 6, when)]


def test_expected_dates_are_edited_in_place_and_waiting_lines_re_dated(admin: Browser, seeded: Store) -> None:
    later = PO_DATE + timedelta(days=10)
    r = admin.post(
        "/purchasing/dates",
        {"po_number": "PO-S1", "date:STOVE-X": later.isoformat(), "orig:STOVE-X": PO_DATE.isoformat(), "back": ""},
    )
    assert "expected dates saved" in r.text
    po = seeded.read(lambda c: po_views.po_view(c, "PO-S1", date.today()))
    assert po["lines"][0]["expected_date"] == later.isoformat()
    assert seeded.read(lambda c: order_views.order_view(c, "SO-S1"))["lines"][0]["eta"] == later.isoformat()


def test_each_purchasing_view_lists_the_purchase_orders_it_names(admin: Browser, seeded: Store) -> None:
    listed = {view: "PO-S1" in admin.get(f"/purchasing?view={view}").text for view in VIEWS}
    assert listed == {"open": True, "overdue": False, "received": False, "cancelled": False, "all": True}
    assert "PO-S1" in admin.get("/purchasing?view=all&sku=STOVE-X").text
    assert "PO-S1" not in admin.get("/purchasing?view=all&sku=MUG-1").text
    r = admin.get("/purchasing?view=open&cursor=not-a-cursor")  # a bad cursor starts the listing again
    assert r.status_code == 200 and "PO-S1" in r.text


def test_expected_dates_unchanged_or_malformed_change_nothing(admin: Browser, seeded: Store) -> None:
    same = {"po_number": "PO-S1", "date:STOVE-X": PO_DATE.isoformat(), "orig:STOVE-X": PO_DATE.isoformat(), "back": ""}
    assert "no date changed" in admin.post("/purchasing/dates", same).text
    r = admin.post("/purchasing/dates", {**same, "date:STOVE-X": "2027-13-45"})
    assert r.status_code == 422 and "enter dates as YYYY-MM-DD" in r.text
    r = admin.post("/purchasing/dates", {**same, "po_number": "PO-NONE", "date:STOVE-X": "2099-01-01"})
    assert r.status_code == 404
    po = seeded.read(lambda c: po_views.po_view(c, "PO-S1", date.today()))
    assert po["lines"][0]["expected_date"] == PO_DATE.isoformat()


def test_a_receipt_is_previewed_without_booking_then_confirmed(admin: Browser, seeded: Store) -> None:
    form = {"grn_number": "GRN-1", "po_number": "PO-S1", "sku[]": ["STOVE-X"], "qty[]": ["4"], "action": "preview"}
    r = admin.post("/purchasing/receive", form)
    assert r.status_code == 200
    assert 'id="receipt-preview"' in r.text
    assert re.findall(
        r"<td>(SO-S\d)</td><td class=\"num\">1</td><td>STOVE-X</td><td class=\"num\">(\d)</td>",
        r.text.replace('<a href="/orders/SO-S1">', "").replace('<a href="/orders/SO-S2">', "").replace("</a>", ""),
    ) == [("SO-S1", "3"), ("SO-S2", "1")]
    assert pending(seeded, "STOVE-X") == ["SO-S1", "SO-S2"]
    digest = re.search(r'name="previewed" value="([^"]+)"', r.text)
    assert digest is not None

    changed = admin.post(
        "/purchasing/receive", {**form, "qty[]": ["5"], "action": "confirm", "previewed": digest.group(1)}
    )
    assert "changed after its preview" in changed.text
    assert pending(seeded, "STOVE-X") == ["SO-S1", "SO-S2"]

    done = admin.post("/purchasing/receive", {**form, "action": "confirm", "previewed": digest.group(1)})
    assert "GRN GRN-1 booked against PO-S1" in done.text
    assert pending(seeded, "STOVE-X") == ["SO-S2"]
    line = seeded.read(lambda c: order_views.order_view(c, "SO-S2"))["lines"][0]
    assert (line["allocated_qty"], line["backordered_qty"]) == (1, 1)


def test_a_receipt_of_an_unknown_sku_is_refused_next_to_its_row(admin: Browser) -> None:
    r = admin.post(
        "/purchasing/receive", {"grn_number": "GRN-2", "sku[]": ["GHOST"], "qty[]": ["1"], "action": "preview"}
    )
    assert r.status_code == 422
    assert 'id="err-sku-0"' in r.text
    assert 'value="GHOST"' in r.text


def test_the_shortfall_suggests_what_to_order(admin: Browser) -> None:
    html = admin.get("/purchasing/shortfall").text
    assert re.search(
        r"TENT-2P</a></td><td class=\"num\">6</td><td class=\"num\">0</td><td class=\"num\"><strong>6</strong>", html
    )
    assert re.search(
        r"STOVE-X</a></td><td class=\"num\">5</td><td class=\"num\">10</td><td class=\"num\"><strong>0</strong>", html
    )
    assert 'href="/purchasing/new?sku=TENT-2P&amp;qty=6"' in html


# ---- settings and products ----------------------------------------------------------------------


def test_a_rule_is_previewed_then_saved_and_the_queue_follows_it(admin: Browser, seeded: Store) -> None:
    keys = ["priority", "placed_at", "customer_tier", "order_value", "promised_date"]
    form = {"key[]": keys, "use:priority": "1", "use:placed_at": "1", "use:customer_tier": "1"}
    r = admin.post("/settings/rule", {**form, "move": "up:customer_tier"})
    r = admin.post(
        "/settings/rule",
        {
            **form,
            "key[]": ["priority", "customer_tier", "placed_at", "order_value", "promised_date"],
            "move": "up:customer_tier",
        },
    )
    assert "customer_tier → priority → placed_at" in r.text
    assert re.search(r'id="lines-moved">\d+<', r.text)
    assert "SO-R2" in r.text
    assert queue(admin.get("/backorders?sku=RULE-1").text) == [("SO-R1", 1), ("SO-R2", 2)]  # preview only
    r = admin.post(
        "/settings/rule",
        {
            "key[]": ["customer_tier", "priority", "placed_at"],
            "use:customer_tier": "1",
            "use:priority": "1",
            "use:placed_at": "1",
            "action": "save",
        },
    )
    assert "Allocation rule saved: customer_tier → priority → placed_at." in r.text
    assert queue(admin.get("/backorders?sku=RULE-1").text) == [("SO-R2", 1), ("SO-R1", 2)]
    r = admin.post("/settings/rule", {"key[]": keys, "action": "save"})
    assert r.status_code == 422
    assert 'id="err-keys"' in r.text


def test_the_default_policy_form_shows_errors_and_saves(admin: Browser) -> None:
    r = admin.post("/settings/policy", {"mode": "sometimes", "max_qty_per_line": "-1"})
    assert r.status_code == 422
    assert 'id="err-mode"' in r.text and 'id="err-max_qty_per_line"' in r.text
    r = admin.post("/settings/policy", {"mode": "when_incoming", "max_qty_per_line": "5", "channels": "web, phone"})
    assert "Default back-order policy saved: when_incoming." in r.text
    assert admin.client.get("/settings").text.count('value="web, phone"') == 1


def test_a_product_gets_its_own_policy_and_can_go_back_to_the_default(admin: Browser, seeded: Store) -> None:
    r = admin.post("/product-actions/policy", {"sku": "LAMP-1", "mode": "never"})
    assert "LAMP-1: its own policy is saved." in r.text
    assert seeded.read(lambda c: catalog_views.product_view(c, "LAMP-1"))["backorder_policy"]["mode"] == "never"
    r = admin.post("/product-actions/policy", {"sku": "LAMP-1", "use_default": "1", "mode": "never"})
    assert "the default policy applies now" in r.text
    product = seeded.read(lambda c: catalog_views.product_view(c, "LAMP-1"))
    assert product["backorder_policy"] is None
    assert product["name"] == "Product LAMP-1" and product["unit_price"] == "25.00"
