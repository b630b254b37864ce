"""Optimistic concurrency: ETag on GET, If-Match on PUT/PATCH, 412 on a stale version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def day(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def put(api: Any, path: str, body: Any, if_match: str | None = None) -> Any:
    headers = {**api.headers, **({"If-Match": if_match} if if_match is not None else {})}
    return api.client.put("/api/v1" + path, json=body, headers=headers)


def patch(api: Any, path: str, body: Any, if_match: str) -> Any:
    return api.client.patch("/api/v1" + path, json=body, headers={**api.headers, "If-Match": if_match})


def test_a_product_update_with_a_stale_etag_is_refused_and_changes_nothing(api):
    assert api.put("/products/A", {"name": "Tent", "unit_price": "10.00"}).status_code == 201
    r = api.get("/products/A")
    tag = r.headers["etag"]
    assert tag == '"1"'
    # Two editors read version 1; the first one's change lands...
    first = put(api, "/products/A", {"name": "Tent", "unit_price": "12.00"}, tag)
    assert first.status_code == 200
    assert first.headers["etag"] == '"2"'
    # ... the second one's is refused, naming the version it must re-read.
    second = put(api, "/products/A", {"name": "Tent (blue)", "unit_price": "9.00"}, tag)
    assert second.status_code == 412
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["errors"] == [
        {"field": "If-Match", "reason": "stale version", "sent": '"1"', "current_etag": '"2"'}
    ]
    now = api.get("/products/A")
    assert (now.json()["name"], now.json()["unit_price"], now.headers["etag"]) == ("Tent", "12.00", '"2"')


def test_if_match_star_needs_an_existing_product_and_no_if_match_is_unconditional(api):
    assert put(api, "/products/NEW", {"name": "N", "unit_price": "1.00"}, "*").status_code == 412
    assert put(api, "/products/NEW", {"name": "N", "unit_price": "1.00"}, '"1"').status_code == 412
    assert api.get("/products/NEW").status_code == 404
    assert put(api, "/products/NEW", {"name": "N", "unit_price": "1.00"}).status_code == 201
    assert put(api, "/products/NEW", {"name": "N", "unit_price": "2.00"}, "*").status_code == 200
    assert put(api, "/products/NEW", {"name": "N", "unit_price": "3.00"}, 'W/"2", "2"').status_code == 200
    assert api.get("/products/NEW").json()["unit_price"] == "3.00"


def test_settings_carry_etags_and_refuse_stale_updates(api):
    for path, body in (
        ("/settings/allocation-rule", {"keys": ["customer_tier", "placed_at"]}),
        ("/settings/default-backorder-policy", {"mode": "never"}),
    ):
        r = api.get(path)
        assert r.headers["etag"] == '"0"'  # never set: the built-in default
        ok = put(api, path, body, '"0"')
        assert ok.status_code == 200, ok.text
        assert ok.headers["etag"] == '"1"'
        assert api.get(path).headers["etag"] == '"1"'
        stale = put(api, path, body, '"0"')
        assert stale.status_code == 412
        assert put(api, path, body, '"1"').headers["etag"] == '"2"'
    assert api.get("/settings/allocation-rule").json() == {"keys": ["customer_tier", "placed_at"]}


def test_a_purchase_order_patch_needs_the_current_version(api):
    assert api.put("/products/A", {"name": "A", "unit_price": "1.00"}).status_code == 201
    body = {"po_number": "PO-1", "supplier": "Acme", "lines": [{"sku": "A", "qty": 5, "expected_date": day(5)}]}
    assert api.post("/purchase-orders", body).status_code == 201
    r = api.get("/purchase-orders/PO-1")
    assert r.headers["etag"] == '"1"'
    moved = patch(api, "/purchase-orders/PO-1", {"lines": [{"sku": "A", "expected_date": day(8)}]}, '"1"')
    assert moved.status_code == 200, moved.text
    assert moved.headers["etag"] == '"2"'
    stale = patch(api, "/purchase-orders/PO-1", {"lines": [{"sku": "A", "qty": 50}]}, '"1"')
    assert stale.status_code == 412
    po = api.get("/purchase-orders/PO-1").json()
    assert (po["lines"][0]["qty"], po["lines"][0]["expected_date"], po["version"]) == (5, day(8), 2)
    # An unknown PO is still a 404, whatever If-Match says.
    assert patch(api, "/purchase-orders/NOPE", {"lines": [{"sku": "A", "qty": 1}]}, '"1"').status_code == 404


def test_the_openapi_declares_etag_and_if_match(api):
    doc = api.client.get("/openapi.json").json()["paths"]
    assert "ETag" in doc["/api/v1/products/{sku}"]["get"]["responses"]["200"]["headers"]
    params = {p["name"] for p in doc["/api/v1/products/{sku}"]["put"]["parameters"]}
    assert "If-Match" in params
    assert "412" in doc["/api/v1/purchase-orders/{po_number}"]["patch"]["responses"]
    assert "412" in doc["/api/v1/settings/allocation-rule"]["put"]["responses"]
