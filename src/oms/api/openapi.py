"""The OpenAPI document: FastAPI's, completed with what the Guard and the handlers add.

Every /api/v1 operation gets the bearer scheme, each problem status it can answer (as RFC 9457
problem details), the headers it sends (X-Request-Id, ETag, Retry-After, Idempotent-Replayed),
the Idempotency-Key header on state-changing POSTs, and an example success body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from oms.api import idempotency as idem
from oms.api.guard import is_read_only_post
from oms.api.problems import PROBLEM, TITLES, Problem
from oms.api.schemas import MAX_LINES, MAX_QTY

if TYPE_CHECKING:
    from oms.api.guard import GuardSettings

API = "/api/v1"
SCHEME = "bearer"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
BODY_METHODS = {"post", "put", "patch"}

# Operations whose answer may be 200 (a replay of the same natural key) as well as 201, or the reverse.
BOTH_200_AND_201 = {
    ("put", "/products/{sku}"),
    ("put", "/customers/{customer_id}"),
    ("post", "/orders"),
    ("post", "/receipts"),
}
# Operations that read or write a versioned resource: ETag on the answer, If-Match on the update.
VERSIONED = {
    ("get", "/products/{sku}"),
    ("put", "/products/{sku}"),
    ("get", "/settings/default-backorder-policy"),
    ("put", "/settings/default-backorder-policy"),
    ("get", "/settings/allocation-rule"),
    ("put", "/settings/allocation-rule"),
    ("get", "/purchase-orders/{po_number}"),
    ("patch", "/purchase-orders/{po_number}"),
}
# 404 beyond the path-parameter routes: a body naming something that must exist.
NOT_FOUND_BY_BODY = {("post", "/inventory/adjustments")}
# Updates with no conflict of their own (beyond a stale If-Match, which is 412).
NO_CONFLICT = {("put", "/products/{sku}"), ("put", "/customers/{customer_id}"), ("put", "/settings/allocation-rule")}
NO_CONFLICT |= {("put", "/settings/default-backorder-policy"), ("post", "/promise")}

_ORDER = {
    "order_number": "SO-1001",
    "channel": "web",
    "customer_id": "ALICE",
    "status": "backordered",
    "ship_policy": "partial",
    "placed_at": "2026-11-20T09:30:00Z",
    "priority": 0,
    "order_value": "745.00",
    "lines": [
        {
            "line_no": 1,
            "sku": "TENT-2P",
            "qty": 5,
            "unit_price": "149.00",
            "allocated_qty": 2,
            "backordered_qty": 3,
            "shipped_qty": 0,
            "cancelled_qty": 0,
            "eta": "2026-12-15",
        }
    ],
}
_POLICY: dict[str, Any] = {
    "mode": "always",
    "max_backorder_qty": None,
    "max_qty_per_line": None,
    "channels": [],
    "preorder_ends_at": None,
    "release_date": None,
    "auto_cancel_after_days": None,
}
_PRODUCT = {
    "sku": "TENT-2P",
    "name": "Two-person tent",
    "unit_price": "149.00",
    "lead_time_days": 21,
    "backorder_policy": _POLICY,
    "effective_backorder_policy": _POLICY,
    "stock": {"on_hand": 2, "allocated": 2, "available": 0, "backordered": 3, "incoming": 10},
    "version": 3,
}
_PO = {
    "po_number": "PO-77",
    "supplier": "Acme",
    "status": "open",
    "created_at": "2026-11-21T08:00:00Z",
    "overdue": False,
    "lines": [
        {"line_no": 1, "sku": "TENT-2P", "qty": 10, "received_qty": 0, "open_qty": 10, "expected_date": "2026-12-15"}
    ],
    "version": 1,
}
_SHIPMENT = {
    "id": 42,
    "channel": "web",
    "order_number": "SO-1001",
    "status": "pick",
    "lines": [{"line_no": 1, "sku": "TENT-2P", "qty": 2}],
    "carrier": None,
    "tracking_number": None,
}
_CUSTOMER = {"customer_id": "ALICE", "name": "Alice", "email": "alice@example.com", "tier": "gold"}
EXAMPLES: dict[tuple[str, str], Any] = {
    ("get", "/products/{sku}"): _PRODUCT,
    ("put", "/products/{sku}"): _PRODUCT,
    ("get", "/products"): {"items": [_PRODUCT], "next_cursor": None},
    ("get", "/customers/{customer_id}"): _CUSTOMER,
    ("put", "/customers/{customer_id}"): _CUSTOMER,
    ("get", "/settings/default-backorder-policy"): _POLICY,
    ("put", "/settings/default-backorder-policy"): _POLICY,
    ("get", "/settings/allocation-rule"): {"keys": ["priority", "placed_at"]},
    ("put", "/settings/allocation-rule"): {"keys": ["customer_tier", "placed_at"]},
    ("post", "/inventory/adjustments"): {
        "sku": "TENT-2P",
        "qty_delta": 2,
        "on_hand": 4,
        "allocations": [{"order_number": "SO-1001", "line_no": 1, "sku": "TENT-2P", "qty": 2}],
    },
    ("post", "/orders"): _ORDER,
    ("get", "/orders"): {"items": [_ORDER], "next_cursor": None},
    ("get", "/orders/{order_number}"): _ORDER,
    ("post", "/orders/{order_number}/cancel"): {**_ORDER, "status": "cancelled"},
    ("post", "/orders/{order_number}/priority"): {**_ORDER, "priority": 10},
    ("get", "/orders/{order_number}/events"): {
        "items": [
            {"at": "2026-11-20T09:30:00Z", "type": "order_placed", "actor": "web-shop", "data": {"lines": 1}},
        ]
    },
    ("get", "/backorders"): {
        "items": [
            {
                "order_number": "SO-1001",
                "channel": "web",
                "line_no": 1,
                "sku": "TENT-2P",
                "customer_id": "ALICE",
                "customer_tier": "gold",
                "placed_at": "2026-11-20T09:30:00Z",
                "qty": 5,
                "backordered_qty": 3,
                "queue_position": 1,
                "eta": "2026-12-15",
                "age_days": 6,
            }
        ],
        "next_cursor": None,
    },
    ("post", "/purchase-orders"): _PO,
    ("get", "/purchase-orders"): {"items": [_PO], "next_cursor": None},
    ("get", "/purchase-orders/{po_number}"): _PO,
    ("patch", "/purchase-orders/{po_number}"): {**_PO, "version": 2},
    ("post", "/purchase-orders/{po_number}/cancel"): {**_PO, "status": "cancelled", "version": 2},
    ("post", "/receipts"): {
        "grn_number": "GRN-5",
        "allocations": [{"order_number": "SO-1001", "line_no": 1, "sku": "TENT-2P", "qty": 3}],
        "unallocated": [{"sku": "TENT-2P", "qty": 7}],
    },
    ("post", "/promise"): {
        "lines": [{"sku": "TENT-2P", "qty": 5, "available_now": 0, "backorderable": True, "eta": "2026-12-15"}]
    },
    ("get", "/reports/shortfall"): {
        "items": [{"sku": "TENT-2P", "backordered": 13, "incoming": 10, "shortfall": 3, "suggested_order_qty": 3}]
    },
    ("get", "/shipments"): {"items": [_SHIPMENT], "next_cursor": None},
    ("get", "/shipments/{shipment_id}"): _SHIPMENT,
    ("post", "/shipments/{shipment_id}/advance"): {**_SHIPMENT, "status": "pack"},
    ("post", "/shipments/release-due"): {"orders_settled": 0},
}


def description(settings: GuardSettings) -> str:
    per_minute = settings.limiter.per_minute
    rate = f"{per_minute} requests a minute per key" if per_minute else "off in this deployment"
    return f"""Order management with back orders at its heart: orders, the back-order queue,
replenishment and allocation, fulfillment.

**Auth.** `Authorization: Bearer <key>` (keys: `oms keys create`). Missing or unknown key: 401.
A role outside its rights: 403. A channel key sees only its own channel: another channel's order,
events or shipment answer 404.

**Errors** are `application/problem+json` (RFC 9457) with `type`, `title`, `status`, `detail`,
`errors` naming each offending field or SKU, and the `request_id` also sent as `X-Request-Id`.

**Idempotency.** Send `Idempotency-Key` on a POST that changes state: the first response is kept
for 24 hours per key and caller and replayed with `Idempotent-Replayed: true`. The same key with
another body: 422. A retry while the first request still runs: 409 with `Retry-After`.

**Optimistic concurrency.** Products, settings and purchase orders carry an `ETag`; send it back
in `If-Match` on PUT/PATCH and a stale one answers 412. Without `If-Match` updates are unconditional.

**Limits.** Request body at most {settings.max_body_bytes} bytes (413); JSON only (415; malformed
JSON 400). At most {MAX_LINES} lines per order, PO, receipt or promise; quantities 1 to {MAX_QTY};
codes (SKU, order, PO, customer numbers) 1 to 64 characters; names 1 to 200; reasons 1 to 500;
page size `limit` 1 to 500. Rate limit: {rate}; beyond it 429 with `Retry-After` seconds."""


def _problem(status: int, detail: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": f"{TITLES.get(status, 'Error')}: {detail}",
        "content": {PROBLEM: {"schema": PROBLEM_REF}},
    }
    if headers:
        out["headers"] = headers
    return out


def _header(description: str, required: bool = True, **schema: Any) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": "string", **schema}}


REQUEST_ID = _header("The request's id; quote it when reporting a problem.")
RETRY_AFTER = {
    "description": "Seconds to wait before retrying.",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
ETAG = _header('The version of the resource, e.g. `"3"`; send it in If-Match to update.', pattern='^"[0-9]+"$')
REPLAYED = _header(
    "`true` when this is the stored response to an earlier request with the same Idempotency-Key.", False
)


def _problems(method: str, path: str) -> dict[int, dict[str, Any]]:
    op = (method, path)
    out = {
        401: _problem(401, "missing, unknown or revoked API key."),
        403: _problem(403, "the key's role may not do this."),
        422: _problem(422, "invalid fields, or fields naming unknown things; `errors` names each."),
        429: _problem(429, "the key's rate limit is spent.", {"Retry-After": RETRY_AFTER}),
        500: _problem(500, "a fault on our side; the body carries the request_id."),
    }
    if method in BODY_METHODS:
        out[400] = _problem(400, "the body is not well-formed JSON.")
        out[413] = _problem(413, "the body is too large.")
        out[415] = _problem(415, "the body is not JSON.")
    if "{" in path or op in NOT_FOUND_BY_BODY:
        out[404] = _problem(404, "no such resource (or not visible to this key).")
    if method in BODY_METHODS and op not in NO_CONFLICT:
        out[409] = _problem(409, "the request conflicts with the resource's state, or an idempotent twin is running.")
    if method == "post" and not is_read_only_post(f"{API}{path}"):
        out.setdefault(409, _problem(409, "a request with this Idempotency-Key is still running."))
    if op in VERSIONED and method != "get":
        out[412] = _problem(412, "If-Match names a version that is no longer current.")
    return out


IDEMPOTENCY_PARAM = {
    "name": idem.HEADER,
    "in": "header",
    "required": False,
    "description": "A unique key per intended effect (e.g. a UUID). Retries with the same key and body replay "
    "the first response; the same key with another body is 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": idem.KEY_PATTERN},
}


def complete(schema: dict[str, Any], settings: GuardSettings) -> dict[str, Any]:
    """Add auth, problems, headers and examples to FastAPI's generated document."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = {
        SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `oms keys create --role ROLE --name NAME [--channel CH]`.",
        }
    }
    schema["info"]["description"] = description(settings)
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            responses: dict[str, Any] = op.setdefault("responses", {})
            if not path.startswith(API + "/"):
                for answer in responses.values():
                    answer.setdefault("headers", {})["X-Request-Id"] = REQUEST_ID
                continue
            rel = path[len(API) :]
            op["security"] = [{SCHEME: []}]
            responses.pop("422", None)
            success = [code for code in responses if code.startswith("2")]
            if (method, rel) in BOTH_200_AND_201:
                template = responses[success[0]]
                for code in ("200", "201"):
                    responses.setdefault(code, {**template, "description": "Created" if code == "201" else "OK"})
                success = ["200", "201"]
            example = EXAMPLES.get((method, rel))
            for code in success:
                answer = responses[code]
                headers = answer.setdefault("headers", {})
                headers["X-Request-Id"] = REQUEST_ID
                if (method, rel) in VERSIONED:
                    headers["ETag"] = ETAG
                if method == "post" and not is_read_only_post(path):
                    headers["Idempotent-Replayed"] = REPLAYED
                if example is not None:
                    for media in answer.get("content", {}).values():
                        media["example"] = example
            for status, answer in sorted(_problems(method, rel).items()):
                answer.setdefault("headers", {})["X-Request-Id"] = REQUEST_ID
                responses[str(status)] = answer
            if method == "post" and not is_read_only_post(path):
                params = op.setdefault("parameters", [])
                if not any(p.get("name") == idem.HEADER for p in params):
                    params.append(IDEMPOTENCY_PARAM)
    return schema


def install_openapi(app: FastAPI, settings: GuardSettings) -> None:
    """Serve the completed document at /openapi.json (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            base = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = complete(base, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
