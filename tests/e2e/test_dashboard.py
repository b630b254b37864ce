"""The operations dashboard in a real browser against a real server."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import Page, expect

from oms.catalog import use_cases as catalog
from oms.fulfillment import views as shipment_views
from oms.orders import views as order_views

from .conftest import Server, shot, sign_in


def queue(page: Page) -> dict[str, str]:
    """The back-order table on screen as {order number: queue position}."""
    rows = page.locator("#queue tbody tr[data-order]")
    return {
        rows.nth(i).get_attribute("data-order") or "": rows.nth(i).locator("td.queue-pos").inner_text()
        for i in range(rows.count())
    }


def pending(server: Server, sku: str | None) -> list[str]:
    return [item["order_number"] for item in _pending(server, sku)]


def _pending(server: Server, sku: str | None) -> list[dict[str, Any]]:
    listing = server.store.read(
        lambda c: order_views.list_backorders(
            c,
            sku=sku,
            customer_id=None,
            order_number=None,
            channel=None,
            min_age_days=None,
            sort="queue",
            limit=500,
            cursor=None,
            now=datetime.now(UTC),
        )
    )
    items: list[dict[str, Any]] = listing["items"]
    return items


def test_signing_in_leads_from_the_login_page_to_the_overview(page: Page, server: Server) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("User name").fill("ada")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#err-password")).to_contain_text("wrong password")
    expect(page.get_by_label("User name")).to_have_value("ada")
    shot(page, "sign-in-refused")
    sign_in(page, "ada")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    waiting = _pending(server, None)  # the API's own listing; other tests may have changed the store
    assert len(waiting) >= 7
    expect(page.locator("#kpi-lines")).to_have_text(str(len(waiting)))
    expect(page.locator("#kpi-units")).to_have_text(str(sum(i["backordered_qty"] for i in waiting)))
    picking = server.store.read(
        lambda c: shipment_views.list_shipments(
            c, status="pick", channel=None, order_number=None, limit=100, cursor=None
        )
    )
    expect(page.locator("#ship-pick")).to_have_text(str(len(picking["items"])))
    shot(page, "overview")


def test_a_back_order_is_found_by_sku_and_by_customer(page: Page) -> None:
    sign_in(page, "otto")
    page.goto("/backorders")
    page.get_by_label("SKU", exact=True).fill("TENT-2P")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"/backorders\?.*sku=TENT-2P"))
    assert queue(page) == {"SO-T1": "1", "SO-T2": "2", "SO-T3": "3"}
    shot(page, "backorders-by-sku")

    page.goto("/backorders")
    page.get_by_label("Customer").fill("ERIN")
    page.keyboard.press("Enter")
    page.wait_for_url("**customer_id=ERIN**")
    assert queue(page) == {"SO-L1": "1"}
    row = page.locator('#queue tr[data-order="SO-L1"]')
    expect(row).to_contain_text("LAMP-1")
    expect(row).to_contain_text("retail")
    shot(page, "backorders-by-customer")


def test_cancelling_a_line_moves_the_queue_and_shows_in_the_timeline(page: Page, server: Server) -> None:
    sign_in(page, "otto")
    page.goto("/backorders?sku=BOOT-42")
    assert queue(page) == {"SO-B1": "1", "SO-B2": "2"}
    page.get_by_label("Select SO-B1 line 1").check()
    expect(page.locator(".selected-count")).to_have_text("1 selected")
    page.get_by_label("Cancel reason").fill("customer changed mind")
    page.get_by_role("button", name="Cancel waiting units").click()
    expect(page.locator(".flash.ok")).to_contain_text("Cancelled 2 waiting units on 1 lines")
    assert "sku=BOOT-42" in page.url
    assert queue(page) == {"SO-B2": "1"}
    shot(page, "cancel-queue-after")

    page.get_by_role("link", name="SO-B2").click()
    expect(page.locator("#order-lines .why-pos")).to_contain_text("Position 1")
    page.goto("/orders/SO-B1")
    expect(page.locator("#order-lines tr[data-line='1'] td.cancelled")).to_have_text("2")
    cancelled = page.locator("#timeline li.ev-cancelled")
    expect(cancelled).to_have_count(1)
    expect(cancelled).to_contain_text("customer changed mind")
    expect(cancelled).to_contain_text("by otto")
    shot(page, "cancel-timeline")
    assert pending(server, "BOOT-42") == ["SO-B2"]


def test_a_grn_is_previewed_then_confirmed_and_its_lines_leave_the_queue(page: Page, server: Server) -> None:
    sign_in(page, "pat")
    page.goto("/purchasing/receive?po=PO-S1")
    expect(page.locator("#sku-0")).to_have_value("STOVE-X")
    expect(page.locator("#qty-0")).to_have_value("10")
    page.get_by_label("GRN number").fill("GRN-S1")
    page.locator("#qty-0").fill("5")
    page.get_by_role("button", name="Preview").click()
    allocations = page.locator("#preview-allocations tbody tr")
    expect(allocations).to_have_count(2)
    expect(allocations.nth(0)).to_contain_text("SO-S1")
    expect(allocations.nth(0).locator("td").nth(3)).to_have_text("3")
    expect(allocations.nth(1)).to_contain_text("SO-S2")
    shot(page, "grn-preview")
    assert pending(server, "STOVE-X") == ["SO-S1", "SO-S2"]  # a preview books nothing

    page.get_by_role("button", name="Confirm receipt").click()
    expect(page.locator("#receipt-result")).to_contain_text("GRN GRN-S1 booked against PO-S1")
    assert pending(server, "STOVE-X") == []
    page.goto("/backorders?sku=STOVE-X")
    expect(page.locator("#queue tbody")).to_contain_text("No waiting lines match")
    shot(page, "grn-queue-after")


def test_a_shipment_moves_from_pick_to_dispatched(page: Page) -> None:
    sign_in(page, "otto")
    page.goto("/fulfillment")
    card = page.locator("#col-pick li.ship-card", has_text="SO-M1")
    expect(card).to_have_count(1)
    shot(page, "board-before")
    card.get_by_role("button", name="Pack").click()
    card = page.locator("#col-pack li.ship-card", has_text="SO-M1")
    expect(card).to_have_count(1)
    card.get_by_role("button", name="Awaiting shipment").click()
    card = page.locator("#col-awaiting_shipment li.ship-card", has_text="SO-M1")
    expect(card).to_have_count(1)

    card.get_by_role("button", name="Dispatched").click()  # no carrier yet: refused, next to the field
    expect(page.locator("#err-carrier")).to_contain_text("required")
    expect(page.locator("#col-awaiting_shipment li.ship-card", has_text="SO-M1")).to_have_count(1)
    page.get_by_label("Carrier").fill("DHL")
    page.get_by_label("Tracking number").fill("TRK-123")
    page.locator("#col-awaiting_shipment li.ship-card", has_text="SO-M1").get_by_role(
        "button", name="Dispatched"
    ).click()
    done = page.locator("#col-dispatched li.ship-card", has_text="SO-M1")
    expect(done).to_contain_text("DHL · TRK-123")
    for column in ("pick", "pack", "awaiting_shipment"):
        expect(page.locator(f"#col-{column} li.ship-card", has_text="SO-M1")).to_have_count(0)
    shot(page, "board-dispatched")


def test_reordering_the_allocation_rule_changes_queue_positions(page: Page, server: Server) -> None:
    try:
        _reorder_rule(page)
    finally:  # the other tests' queues assume the default rule
        server.store.write(lambda uow: catalog.set_allocation_rule(uow, ["priority", "placed_at"]), actor="test")


def _reorder_rule(page: Page) -> None:
    sign_in(page, "ada")
    page.goto("/backorders?sku=RULE-1")
    assert queue(page) == {"SO-R1": "1", "SO-R2": "2"}
    page.goto("/settings")
    page.get_by_role("checkbox", name="customer_tier").check()
    page.get_by_role("button", name="Move customer_tier up").click()
    page.get_by_role("button", name="Move customer_tier up").click()
    expect(page.locator("#proposed-rule")).to_have_text("customer_tier → priority → placed_at")
    preview = page.locator("#rule-preview")
    expect(preview.locator("tr", has_text="SO-R2")).to_contain_text("2")
    expect(preview.locator("tr", has_text="SO-R2").locator("td").nth(4)).to_contain_text("1")
    shot(page, "rule-preview")
    page.get_by_role("button", name="Save rule").click()
    expect(page.locator("#current-rule")).to_have_text("customer_tier → priority → placed_at")
    page.goto("/backorders?sku=RULE-1")
    assert queue(page) == {"SO-R2": "1", "SO-R1": "2"}
    shot(page, "rule-queue-after")


def test_a_post_without_the_csrf_token_is_refused(page: Page, server: Server) -> None:
    sign_in(page, "otto")
    # the session cookie alone (as a forged cross-site form would send it) is not enough
    r = page.request.post("/backorders/action", form={"line": "SO-L1|1", "action": "cancel", "reason": "forged"})
    assert r.status == 403
    page.goto("/backorders?sku=LAMP-1")
    page.locator('#bulk input[name="csrf_token"]').evaluate("el => el.remove()")
    page.get_by_label("Select SO-L1 line 1").check()
    page.get_by_label("Cancel reason").fill("forged")
    page.get_by_role("button", name="Cancel waiting units").click()
    expect(page.get_by_role("heading", name="Form expired or forged")).to_be_visible()
    shot(page, "csrf-refused")
    assert pending(server, "LAMP-1") == ["SO-L1"]


def test_an_ops_user_is_refused_the_purchasing_pages(page: Page) -> None:
    sign_in(page, "otto")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Purchasing")).to_have_count(0)
    response = page.goto("/purchasing")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Your role (ops) may not purchase")
    shot(page, "ops-refused-purchasing")
