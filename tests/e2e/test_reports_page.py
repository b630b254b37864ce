"""The Reports page in a real browser: its charts are drawn, from the same figures as the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import Page, expect

from oms.reports.filters import Filters
from oms.reports.measures import AGE_BUCKETS
from oms.reports.queries import run
from oms.reports.service_levels import fill_rate
from oms.reports.summary import summary
from oms.reports.tables import as_table, to_csv

from .conftest import Server, shot, sign_in

CHARTS = ("chart-age", "chart-fill", "chart-lead", "chart-cancel", "chart-suppliers")


def chart_data(page: Page, canvas_id: str) -> Any:
    """The numbers a drawn chart holds (Chart.js keeps them on the chart bound to the canvas)."""
    return page.evaluate(
        "id => { const c = Chart.getChart(document.getElementById(id));"
        " return c ? {labels: c.data.labels, data: c.data.datasets.map(d => d.data)} : null; }",
        canvas_id,
    )


def test_the_reports_page_draws_every_chart_from_the_report_figures(page: Page, server: Server) -> None:
    sign_in(page, "ada")
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    for canvas in CHARTS:
        expect(page.locator(f"#{canvas}")).to_have_attribute("data-drawn", "true")
    now = datetime.now(UTC)
    headline = server.store.read(lambda c: summary(c, Filters(), now))
    fill = server.store.read(lambda c: fill_rate(c, Filters(), "day"))
    ages = [label for label, _ in AGE_BUCKETS]

    age_chart = chart_data(page, "chart-age")
    assert age_chart["labels"] == [f"{a} d" for a in ages]
    assert age_chart["data"] == [[headline["by_age_bucket"][a]["units"] for a in ages]]
    assert sum(age_chart["data"][0]) == headline["pending_backorder_units"] > 0
    fill_chart = chart_data(page, "chart-fill")
    assert fill_chart["labels"] == [r["day"] for r in fill["items"]]
    assert fill_chart["data"] == [[round(r["fill_rate"] * 100, 1) for r in fill["items"]]]
    expect(page.locator("#kpi-units")).to_have_text(f"{headline['pending_backorder_units']:,}")
    shot(page, "reports")


def test_report_filters_apply_to_the_figures_and_charts(page: Page, server: Server) -> None:
    sign_in(page, "otto")
    page.goto("/reports")
    page.get_by_label("Channel").fill("no-such-channel")
    page.get_by_label("Fill rate per").select_option("week")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"/reports\?.*channel=no-such-channel.*period=week"))
    expect(page.locator("#kpi-units")).to_have_text("0")
    expect(page.locator("#chart-fill")).to_have_attribute("data-drawn", "true")
    assert chart_data(page, "chart-age")["data"] == [[0, 0, 0, 0, 0]]
    assert chart_data(page, "chart-fill")["labels"] == []
    expect(page.get_by_label("Channel")).to_have_value("no-such-channel")


def test_a_report_downloads_as_the_same_csv_the_api_gives(page: Page, server: Server) -> None:
    sign_in(page, "pat")
    page.goto("/reports?group_by=tier")
    with page.expect_download() as caught:
        page.locator("#bo-h a", has_text="CSV").click()
    body = open(caught.value.path(), encoding="utf-8").read()  # noqa: SIM115
    data = server.store.read(run("backorders", Filters(), datetime.now(UTC), "tier"))
    assert body == to_csv(*as_table("backorders", data))
    assert body.splitlines()[0].startswith("tier,lines,units,value,oldest_age_days")
