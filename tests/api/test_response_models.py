"""Every answer is exactly its model in /openapi.json: each key the model names is there, no key it
does not name, every value of its type (formats, patterns and enums included); and so is every
example the document shows. Schemathesis (test_openapi_fuzz) checks the answers it provokes against
the same document, but lets keys the model does not name pass: here the models are a closed world.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from oms.notifications.builder import build_notifications
from oms.store.tables import outbox, webhook_deliveries

from ..builders import adjust, order_body, place, po_body, put_customer, put_product

API = "/api/v1"
TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def violations(value: Any, schema: dict[str, Any], schemas: dict[str, Any], at: str = "$") -> list[str]:
    """Where `value` strays from `schema`, reading an object's properties as the only keys it may have."""
    if "$ref" in schema:
        return violations(value, schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, at)
    if "anyOf" in schema:
        options = [violations(value, option, schemas, at) for option in schema["anyOf"]]
        return [] if [] in options else [f"{at}: matches no option: {options}"]
    kind = schema.get("type")
    if kind is not None and (not isinstance(value, TYPES[kind]) or (kind != "boolean" and isinstance(value, bool))):
        return [f"{at}: {value!r} is not {kind}"]
    out: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{at}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        out.append(f"{at}: {value!r} below {schema['minimum']}")
    if kind == "object":
        properties, more = schema.get("properties", {}), schema.get("additionalProperties")
        out += [f"{at}: no {key}" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key in properties:
                out += violations(item, properties[key], schemas, f"{at}.{key}")
            elif isinstance(more, dict):
                out += violations(item, more, schemas, f"{at}.{key}")
            elif more is not True:
                out.append(f"{at}: {key} is not in the model")
    elif kind == "array":
        for i, item in enumerate(value):
            out += violations(item, schema.get("items", {}), schemas, f"{at}[{i}]")
    elif kind == "string":
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{at}: {value!r} does not match {schema['pattern']}")
        if schema.get("format") == "date-time" and not _utc_time(value):
            out.append(f"{at}: {value!r} is not an RFC 3339 time in UTC")
        if schema.get("format") == "date" and not _date(value):
            out.append(f"{at}: {value!r} is not YYYY-MM-DD")
    return out


def _utc_time(text: str) -> bool:
    try:
        return text.endswith("Z") and datetime.fromisoformat(text).utcoffset() == timedelta(0)
    except ValueError:
        return False


def _date(text: str) -> bool:
    try:
        return len(text) == 10 and date.fromisoformat(text) is not None
    except ValueError:
        return False


def _day(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def _calls(api: Any) -> list[tuple[str, str, str, Any, dict[str, Any] | None]]:
    """(method, path template, path, body, query): a call to every operation, in an order that works on `_shop`.

    Explained lines: SO-1 waits for PO-1, SO-3's first line does not wait, SO-2's TENT waits beyond
    PO-1 (the lead time) and its LAMP has neither a PO nor a lead time."""
    order = order_body("SO-2", [("TENT", 4), ("LAMP", 1)], customer_id="ALICE")
    receipt = {"grn_number": "GRN-1", "po_number": "PO-1", "lines": [{"sku": "TENT", "qty": 3}]}
    calls: list[tuple[str, str, str, Any, dict[str, Any] | None]] = [
        ("put", "/products/{sku}", "/products/TENT", {"name": "Tent", "unit_price": "149.00"}, None),
        ("put", "/products/{sku}", "/products/MUG", {"name": "Mug", "unit_price": "4.50"}, None),
        ("get", "/products/{sku}", "/products/TENT", None, None),
        ("get", "/products", "/products", None, {"limit": 1}),
        ("put", "/customers/{customer_id}", "/customers/BOB", {"name": "Bob", "email": "bob@example.com"}, None),
        ("put", "/customers/{customer_id}", "/customers/BOB", {"name": "Bob", "email": "b@example.com"}, None),
        ("get", "/customers/{customer_id}", "/customers/ALICE", None, None),
        ("get", "/settings/default-backorder-policy", "/settings/default-backorder-policy", None, None),
        ("put", "/settings/default-backorder-policy", "/settings/default-backorder-policy", {"mode": "always"}, None),
        ("get", "/settings/allocation-rule", "/settings/allocation-rule", None, None),
        ("put", "/settings/allocation-rule", "/settings/allocation-rule", {"keys": ["priority", "placed_at"]}, None),
        (
            "post",
            "/settings/allocation-rule/preview",
            "/settings/allocation-rule/preview",
            {"keys": ["customer_tier", "placed_at"]},
            None,
        ),
        (
            "post",
            "/inventory/adjustments",
            "/inventory/adjustments",
            {"sku": "LAMP", "qty_delta": 1, "reason": "n"},
            None,
        ),
        ("post", "/orders", "/orders", order, None),
        ("post", "/orders", "/orders", order, None),  # the same again: 200
        ("get", "/orders", "/orders", None, {"limit": 2}),
        ("get", "/orders/{order_number}", "/orders/SO-1", None, None),
        ("post", "/orders/{order_number}/priority", "/orders/SO-1/priority", {"priority": 5}, None),
        ("get", "/orders/{order_number}/events", "/orders/SO-1/events", None, None),
        ("get", "/orders/{order_number}/lines/{line_no}/explain", "/orders/SO-1/lines/1/explain", None, None),
        ("get", "/orders/{order_number}/lines/{line_no}/explain", "/orders/SO-3/lines/1/explain", None, None),
        ("get", "/orders/{order_number}/lines/{line_no}/explain", "/orders/SO-2/lines/1/explain", None, None),
        ("get", "/orders/{order_number}/lines/{line_no}/explain", "/orders/SO-2/lines/2/explain", None, None),
        ("get", "/backorders", "/backorders", None, None),
        ("get", "/backorders", "/backorders", None, {"sort": "age", "limit": 1}),
        ("post", "/purchase-orders", "/purchase-orders", po_body("PO-2", [("LAMP", 2, _day(30))]), None),
        ("get", "/purchase-orders", "/purchase-orders", None, {"limit": 1}),
        ("get", "/purchase-orders/{po_number}", "/purchase-orders/PO-1", None, None),
        (
            "patch",
            "/purchase-orders/{po_number}",
            "/purchase-orders/PO-1",
            {"lines": [{"sku": "TENT", "expected_date": _day(6)}]},
            None,
        ),
        ("post", "/purchase-orders/{po_number}/cancel", "/purchase-orders/PO-2/cancel", None, None),
        ("post", "/promise", "/promise", {"channel": "web", "lines": [{"sku": "TENT", "qty": 9}]}, None),
        ("get", "/reports/shortfall", "/reports/shortfall", None, None),
        ("post", "/receipts/preview", "/receipts/preview", receipt, None),
        ("post", "/receipts", "/receipts", receipt, None),
        ("post", "/receipts", "/receipts", receipt, None),  # the same GRN again: 200
        ("post", "/receipts", "/receipts", {"grn_number": "GRN-2", "lines": [{"sku": "LAMP", "qty": 1}]}, None),
        ("post", "/orders/{order_number}/cancel", "/orders/SO-3/cancel", {"reason": "changed mind"}, None),
        ("get", "/shipments", "/shipments", None, None),
        ("get", "/shipments/{shipment_id}", "/shipments/1", None, None),
        ("post", "/shipments/{shipment_id}/advance", "/shipments/1/advance", {}, None),
        ("post", "/shipments/release-due", "/shipments/release-due", None, None),
        ("get", "/notifications", "/notifications", None, None),
        ("post", "/notifications/{message_id}/retry", "/notifications/{dead}/retry", None, None),
        ("post", "/webhooks", "/webhooks", {"url": "https://hooks.example.com/oms", "event_types": ["*"]}, None),
        ("get", "/webhooks", "/webhooks", None, None),
        ("get", "/webhooks/{sub_id}", "/webhooks/1", None, None),
        ("get", "/webhooks/{sub_id}/deliveries", "/webhooks/1/deliveries", None, None),
        ("delete", "/webhooks/{sub_id}", "/webhooks/1", None, None),
        ("get", "/reports/summary", "/reports/summary", None, None),
        ("get", "/reports/lead-times", "/reports/lead-times", None, None),
        ("get", "/reports/cancellations", "/reports/cancellations", None, None),
        ("get", "/reports/supplier-on-time", "/reports/supplier-on-time", None, None),
    ]
    for group in ("sku", "customer", "channel", "tier"):
        calls.append(("get", "/reports/backorders", "/reports/backorders", None, {"group_by": group}))
    for group in ("sku", "channel", "day", "week"):
        calls.append(("get", "/reports/fill-rate", "/reports/fill-rate", None, {"group_by": group}))
    for group in ("sku", "channel"):
        calls.append(("get", "/reports/promise-accuracy", "/reports/promise-accuracy", None, {"group_by": group}))
    return calls


def _shop(api: Any) -> None:
    """Stock, waiting lines with and without supply, a PO, customers of two tiers."""
    put_product(api, "TENT", on_hand=2, price="149.00", lead_time_days=21)
    put_product(api, "LAMP", price="20.00", policy={"mode": "always", "channels": ["web"], "max_backorder_qty": 50})
    put_product(api, "BOOT", on_hand=1, price="80.00")
    put_customer(api, "ALICE", tier="gold")
    r = api.post("/purchase-orders", po_body("PO-1", [("TENT", 5, _day(9))]))
    assert r.status_code == 201, r.text
    place(api, "SO-1", [("TENT", 3)], customer_id="ALICE")
    place(api, "SO-3", [("BOOT", 1), ("LAMP", 2)], customer_id="ALICE")
    place(api, "SO-4", [("TENT", 2)], customer_id="ALICE")  # SO-2's TENT then waits beyond PO-1: the lead time
    adjust(api, "BOOT", 1)


def _dead_letter(api: Any) -> str:
    """A notification gone dead (built from the events so far), and a delivery in the webhook's log."""
    build_notifications(api.store)

    def kill(uow: Any) -> str:
        message_id: str = uow.conn.execute(select(outbox.c.id).order_by(outbox.c.id).limit(1)).scalar_one()
        uow.conn.execute(update(outbox).where(outbox.c.id == message_id).values(status="dead", last_error="HTTP 500"))
        return message_id

    return str(api.store.write(kill))


def _logged_delivery(api: Any, sub_id: int) -> None:
    row = {
        "subscription_id": sub_id,
        "message_id": "msg_1",
        "event_type": "order_placed",
        "attempt": 1,
        "at": datetime.now(UTC),
        "status_code": 500,
        "ok": 0,
        "error": "HTTP 500",
        "duration_ms": 12,
    }
    api.store.write(lambda uow: uow.conn.execute(insert(webhook_deliveries).values(**row)))


def test_every_answer_is_exactly_its_model(api):
    doc = api.client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    _shop(api)
    answered: dict[tuple[str, str], set[int]] = {}
    problems: list[str] = []
    for method, template, path, body, query in _calls(api):
        if "{dead}" in path:
            path = path.replace("{dead}", _dead_letter(api))
        if template == "/webhooks/{sub_id}/deliveries":
            _logged_delivery(api, 1)
        r = api.client.request(method, API + path, json=body, params=query, headers=api.headers)
        assert r.status_code < 300, (method, path, r.text)
        declared = doc["paths"][API + template][method]["responses"][str(r.status_code)]
        schema = declared["content"]["application/json"]["schema"]
        problems += violations(r.json(), schema, schemas, f"{method.upper()} {path} {r.status_code}")
        answered.setdefault((method, template), set()).add(r.status_code)
    health = doc["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    problems += violations(api.client.get("/healthz").json(), health, schemas, "GET /healthz")
    assert problems == []
    operations = {(m, p.removeprefix(API)) for p, ops in doc["paths"].items() if p.startswith(API) for m in ops}
    assert set(answered) == operations  # every operation of the document was answered and checked
    for both in (
        ("post", "/orders"),
        ("post", "/receipts"),
        ("put", "/products/{sku}"),
        ("put", "/customers/{customer_id}"),
    ):
        assert answered[both] == {200, 201}, both


def test_every_example_in_the_document_is_exactly_its_model(api):
    doc = api.client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    problems: list[str] = []
    shown = 0
    for name, schema in schemas.items():
        for i, example in enumerate(schema.get("examples", [])):
            problems += violations(example, schema, schemas, f"{name} example {i}")
            shown += 1
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for code, answer in op["responses"].items():
                for media in answer.get("content", {}).values():
                    if "example" in media:
                        where = f"{method.upper()} {path} {code}"
                        problems += violations(media["example"], media["schema"], schemas, where)
                        shown += 1
    assert problems == []
    assert shown >= 40
    for model in ("Order", "Product", "Receipt", "BackorderLinePage", "PurchaseOrder", "Shipment", "Customer"):
        assert schemas[model]["examples"], model
