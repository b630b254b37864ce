"""The report endpoints and GET /metrics over HTTP: figures, filters, CSV that agrees with JSON, access."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from oms.domain.access import Role
from oms.domain.fulfillment import CancelReason, reason_code_of
from oms.orders import jobs
from oms.reports.tables import cell, flatten
from tests.integration.test_reports_figures import build_history

MARCH_WEB = {"from": "2026-03-01", "to": "2026-03-31", "channel": "web"}
LISTINGS = [("backorders", {"group_by": g}) for g in ("sku", "customer", "channel", "tier")] + [
    ("lead-times", {}),
    ("cancellations", {}),
    *[("fill-rate", {"group_by": g}) for g in ("sku", "channel", "day", "week")],
    *[("promise-accuracy", {"group_by": g}) for g in ("sku", "channel")],
    ("supplier-on-time", {}),
]


@pytest.fixture
def history_api(api):
    build_history(api.store)
    return api


def get_json(api, path: str, **params: Any) -> Any:
    r = api.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def get_csv(api, path: str, **params: Any) -> list[dict[str, str]]:
    r = api.get(path, params={**params, "format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


def test_the_summary_for_march_on_the_web_channel(history_api):
    out = get_json(history_api, "/reports/summary", **MARCH_WEB)
    assert out["pending_backorder_lines"] == 1
    assert out["pending_backorder_units"] == 4
    assert out["pending_backorder_value"] == "16.00"
    assert out["by_age_bucket"][">30"] == {"lines": 1, "units": 4, "value": "16.00"}  # O5 was placed in March
    assert out["lead_time_hours"] == {"p50": 28.0, "p90": 236.0}
    assert out["backorder_wait_hours"] == {"p50": 262.0, "p90": 262.0}
    assert out["cancelled_units_by_reason"] == {"customer": 3, "aged_out": 5, "operations": 1}
    assert out["fill_rate_at_placement"] == 0.52


def test_every_field_of_the_contract_is_in_the_summary(history_api):
    out = get_json(history_api, "/reports/summary")
    assert set(out) == {
        "pending_backorder_lines",
        "pending_backorder_units",
        "pending_backorder_value",
        "by_age_bucket",
        "lead_time_hours",
        "backorder_wait_hours",
        "cancelled_units_by_reason",
        "fill_rate_at_placement",
    }
    assert (out["pending_backorder_lines"], out["pending_backorder_units"], out["pending_backorder_value"]) == (
        3,
        8,
        "41.00",
    )
    assert list(out["by_age_bucket"]) == ["0-2", "3-7", "8-14", "15-30", ">30"]


def test_an_rfc3339_start_bounds_the_dispatches_counted(history_api):
    out = get_json(history_api, "/reports/lead-times", **{"from": "2026-03-12T00:00:00Z"})
    first = out["items"][0]
    assert (first["measure"], first["segment"], first["count"], first["p50"]) == (
        "placed_to_dispatched",
        "all",
        1,
        288.0,
    )


@pytest.mark.parametrize(("name", "params"), LISTINGS)
def test_csv_and_json_give_the_same_rows(history_api, name, params):
    data = get_json(history_api, f"/reports/{name}", **params)
    rows = get_csv(history_api, f"/reports/{name}", **params)
    assert len(rows) == len(data["items"]) > 0
    for item, row in zip(data["items"], rows, strict=True):
        flat = flatten(item)
        assert list(row) == list(flat)
        assert row == {k: cell(v) for k, v in flat.items()}


def test_the_summary_csv_lists_each_figure_once(history_api):
    data = get_json(history_api, "/reports/summary", **MARCH_WEB)
    rows = get_csv(history_api, "/reports/summary", **MARCH_WEB)
    assert {r["metric"]: r["value"] for r in rows} == {k: cell(v) for k, v in flatten(data).items()}
    assert {"metric": "lead_time_hours.p90", "value": "236.0"} in rows


def test_an_empty_store_answers_every_report_with_empty_figures(api):
    for name, params in [("summary", {}), *LISTINGS]:
        r = api.get(f"/reports/{name}", params=params)
        assert r.status_code == 200, r.text
        lines = api.get(f"/reports/{name}", params={**params, "format": "csv"}).text.splitlines()
        if name in ("backorders", "fill-rate", "promise-accuracy", "supplier-on-time"):
            assert r.json()["items"] == []
            assert len(lines) == 1  # the header alone
    summary = api.get("/reports/summary").json()
    assert summary["pending_backorder_value"] == "0.00"
    assert summary["lead_time_hours"] == {"p50": None, "p90": None}
    assert summary["fill_rate_at_placement"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-03-01T10:00:00"}, "from"),  # no time zone
        ({"from": "2026-03-10", "to": "2026-03-01"}, "to"),
    ],
)
def test_bad_periods_are_refused_naming_the_field(api, params, field):
    r = api.get("/reports/summary", params=params)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_a_breakdown_shows_its_first_groups_by_units_waiting(history_api):
    out = get_json(history_api, "/reports/backorders", group_by="sku", limit=2)
    assert [i["sku"] for i in out["items"]] == ["B", "A"]
    assert (out["groups"], out["limit"], out["total"]["units"]) == (3, 2, 8)
    rows = get_csv(history_api, "/reports/backorders", group_by="sku", limit=2)
    assert [r["sku"] for r in rows] == ["B", "A"]
    for bad in ("0", "100001", "ten"):
        r = history_api.get("/reports/backorders", params={"limit": bad})
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in r.json()["errors"]] == ["limit"]


def test_an_unknown_grouping_or_format_is_refused(api):
    assert api.get("/reports/backorders", params={"group_by": "colour"}).status_code == 422
    assert api.get("/reports/fill-rate", params={"group_by": "month"}).status_code == 422
    assert api.get("/reports/summary", params={"format": "xml"}).status_code == 422


def test_reports_need_a_key_and_are_closed_to_channel_keys(api):
    assert api.client.get("/api/v1/reports/summary").status_code == 401
    assert api.as_role(Role.CHANNEL, channel="web").get("/reports/summary").status_code == 403
    assert api.as_role(Role.PURCHASING).get("/reports/supplier-on-time").status_code == 200
    assert api.as_role(Role.OPS).get("/reports/backorders").status_code == 200


def test_the_aged_out_job_text_reads_as_aged_out_too():
    assert reason_code_of(jobs.AGED_OUT_REASON) == CancelReason.AGED_OUT


# ---- /metrics -------------------------------------------------------------------------------------


def samples(text: str) -> dict[str, float]:
    """Each sample's value by its name and labels, labels in the order written here (the exposition's
    own order of labels carries no meaning: `le` may come first)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[_canonical(name)] = float(value)
    return out


def _canonical(name: str) -> str:
    base, _, labels = name.partition("{")
    if not labels:
        return base
    pairs = labels.rstrip("}").split('",')
    pairs = [p if p.endswith('"') else p + '"' for p in pairs]
    le = [p for p in pairs if p.startswith("le=")]
    return base + "{" + ",".join([p for p in pairs if not p.startswith("le=")] + le) + "}"


def test_metrics_need_no_key_and_count_allocations_receipts_and_waiting_units(history_api):
    r = history_api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    m = samples(r.text)
    assert m['oms_allocations_total{source="placement"}'] == 6
    assert m['oms_allocated_units_total{source="placement"}'] == 22
    assert m['oms_allocations_total{source="receipt"}'] == 3
    assert m['oms_allocated_units_total{source="receipt"}'] == 7
    assert m['oms_allocations_total{source="cancellation"}'] == 0
    assert (m["oms_receipts_total"], m["oms_received_units_total"]) == (2, 14)
    assert m['oms_sku_backorder_pending_units_bucket{le="1"}'] == 0
    assert m['oms_sku_backorder_pending_units_bucket{le="5"}'] == 3
    assert m['oms_sku_backorder_pending_units_bucket{le="+Inf"}'] == 3
    assert m["oms_sku_backorder_pending_units_sum"] == 8
    assert sum(v for k, v in m.items() if k.startswith("oms_backorder_pending_units{")) == 8
    assert m['oms_outbox_messages{kind="email",status="pending"}'] >= 0
    assert "# TYPE oms_http_request_duration_seconds histogram" in r.text


def test_request_latency_is_observed_per_route_template(api):
    for _ in range(3):
        assert api.get("/reports/summary").status_code == 200
    assert api.get("/orders/NO-SUCH").status_code == 404
    api.client.get("/api/v1/no/such/path")
    m = samples(api.client.get("/metrics").text)
    order = 'method="GET",route="/api/v1/orders/{order_number}",status="4xx"'
    assert m[f"oms_http_request_duration_seconds_count{{{order}}}"] == 1
    labels = 'method="GET",route="/api/v1/reports/summary",status="2xx"'
    assert m[f"oms_http_request_duration_seconds_count{{{labels}}}"] == 3
    assert m[f'oms_http_request_duration_seconds_bucket{{{labels},le="+Inf"}}'] == 3
    assert m[f"oms_http_request_duration_seconds_sum{{{labels}}}"] > 0
    assert m['oms_http_request_duration_seconds_count{method="GET",route="unmatched",status="4xx"}'] == 1
