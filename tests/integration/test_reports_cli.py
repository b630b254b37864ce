"""`oms report NAME`: the same rows as the API's CSV, as a table or as CSV, over the same filters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from oms.cli import app
from oms.reports.filters import Filters
from oms.reports.queries import run
from oms.reports.tables import as_table, to_csv
from oms.store.db import Store, make_engine
from oms.store.migrate import upgrade
from tests.integration.test_reports_figures import build_history

runner = CliRunner()


@pytest.fixture(scope="module")
def history_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'reports.db'}"
    upgrade(url)
    store = Store(make_engine(url))
    build_history(store)
    store.engine.dispose()
    return url


def test_report_csv_prints_the_rows_the_api_gives(history_url, monkeypatch):
    monkeypatch.setenv("OMS_DATABASE_URL", history_url)
    result = runner.invoke(app, ["report", "lead-times", "--csv", "--channel", "pos"])
    assert result.exit_code == 0, result.output
    store = Store(make_engine(history_url))
    data = store.read(run("lead-times", Filters(channel="pos"), datetime.now(UTC)))
    assert result.output == to_csv(*as_table("lead-times", data))
    assert "placed_to_dispatched,all,1,96.0,96.0,96.0" in result.output.splitlines()


def test_report_prints_a_table_with_a_total_row(history_url, monkeypatch):
    monkeypatch.setenv("OMS_DATABASE_URL", history_url)
    result = runner.invoke(app, ["report", "backorders", "--group-by", "tier"])
    assert result.exit_code == 0, result.output
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in result.output.splitlines() if "│" in line]
    assert rows[0][:4] == ["gold", "2", "4", "25.00"]
    assert rows[1][:4] == ["standard", "1", "4", "16.00"]
    assert rows[2][:4] == ["total", "3", "8", "41.00"]


def test_report_limit_shows_the_first_groups_and_the_total_of_all(history_url, monkeypatch):
    monkeypatch.setenv("OMS_DATABASE_URL", history_url)
    result = runner.invoke(app, ["report", "backorders", "--limit", "1"])
    assert result.exit_code == 0, result.output
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in result.output.splitlines() if "│" in line]
    assert [r[:3] for r in rows] == [["B", "1", "4"], ["total", "3", "8"]]


def test_report_filters_take_dates(history_url, monkeypatch):
    monkeypatch.setenv("OMS_DATABASE_URL", history_url)
    args = ["report", "fill-rate", "--group-by", "channel", "--from", "2026-03-01", "--to", "2026-03-31", "--csv"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "channel,lines,lines_filled_at_placement,units_ordered,units_allocated_at_placement,fill_rate",
        "pos,2,0,13,9,0.6923",
        "web,5,3,25,13,0.52",
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["report", "fill-rate", "--group-by", "month"],
        ["report", "summary", "--group-by", "sku"],
        ["report", "summary", "--from", "last tuesday"],
        ["report", "no-such-report"],
        ["report", "backorders", "--limit", "0"],
    ],
)
def test_report_refuses_bad_arguments(history_url, monkeypatch, args):
    monkeypatch.setenv("OMS_DATABASE_URL", history_url)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
