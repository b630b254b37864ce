"""The OpenAPI document: FastAPI's, completed with what the Guard and the handlers add.

Every success answer is its named model (oms.api.models) with an example. Every /api/v1 operation
gets the bearer scheme, each problem status it can answer (as RFC 9457 problem details, the
`Problem` schema), the headers it sends (X-Request-Id, ETag, Retry-After, Idempotent-Replayed) and
the Idempotency-Key header on state-changing POSTs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from oms.api import idempotency as idem
from oms.api import models as m
from oms.api.guard import is_read_only_post
from oms.api.problems import PROBLEM, TITLES, Problem
from oms.api.schemas import MAX_LINES, MAX_QTY

if TYPE_CHECKING:
    from oms.api.guard import GuardSettings

API = "/api/v1"
SCHEME = "bearer"
REF = "#/components/schemas/"
PROBLEM_REF = {"$ref": REF + "Problem"}
BODY_METHODS = {"post", "put", "patch"}

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

_ORDER = m.ORDER_EXAMPLE
_PO = m.PO_EXAMPLE
_SHIPMENT = m.SHIPMENT_EXAMPLE
_PAGE = {"next_cursor": None}
# Example answers beyond the models' own (which every operation answering a model with an example shows):
# pages of them, and what an operation changes in one.
EXAMPLES: dict[tuple[str, str], Any] = {
    ("get", "/products"): {"items": [m.PRODUCT_EXAMPLE], **_PAGE},
    ("put", "/settings/allocation-rule"): {"keys": ["customer_tier", "placed_at"]},
    ("get", "/orders"): {"items": [_ORDER], **_PAGE},
    ("post", "/orders/{order_number}/cancel"): {
        **_ORDER,
        "status": "cancelled",
        "lines": [
            {**line, "allocated_qty": 0, "backordered_qty": 0, "cancelled_qty": line["qty"], "eta": None}
            for line in _ORDER["lines"]
        ],
    },
    ("post", "/orders/{order_number}/priority"): {**_ORDER, "priority": 10},
    ("get", "/purchase-orders"): {"items": [_PO], **_PAGE},
    ("patch", "/purchase-orders/{po_number}"): {**_PO, "version": 2},
    ("post", "/purchase-orders/{po_number}/cancel"): {**_PO, "status": "cancelled", "version": 2},
    ("get", "/shipments"): {"items": [_SHIPMENT], **_PAGE},
    ("post", "/shipments/{shipment_id}/advance"): {**_SHIPMENT, "status": "pack"},
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


def _examples_whole(schemas: dict[str, Any]) -> None:
    """The answer models' examples as written: FastAPI drops every null from the document it builds
    (exclude_none), the examples' nulls too, and an example without its null fields is not one."""
    for name, schema in schemas.items():
        model = getattr(m, name, None)
        if isinstance(model, type) and issubclass(model, BaseModel) and "examples" in schema:
            extra = model.model_config.get("json_schema_extra")
            if isinstance(extra, dict):
                schema["examples"] = extra["examples"]


def _model_alone(answer: dict[str, Any], schemas: dict[str, Any], example: Any) -> None:
    """A success answer's JSON as its model alone, with an example: `example`, else the model's own.

    A route declares its model in `responses` (oms.api.models.answers) and keeps returning a dict,
    which FastAPI serializes fast as dict[str, Any]; FastAPI merges that type's schema (a free-form
    object) into the reference to the model, and the reference alone is what client generators need.
    """
    media = answer.get("content", {}).get("application/json")
    if media is None or "$ref" not in media.get("schema", {}):
        return
    ref = media["schema"]["$ref"]
    media["schema"] = {"$ref": ref}
    own = schemas.get(ref.removeprefix(REF), {}).get("examples")
    if example is not None or own:
        media["example"] = example if example is not None else own[0]


def complete(schema: dict[str, Any], settings: GuardSettings) -> dict[str, Any]:
    """Add auth, problems, headers and examples to FastAPI's generated document."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template=REF + "{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    _examples_whole(schemas)
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
            success = [code for code in responses if code.startswith("2")]
            for code in success:
                _model_alone(responses[code], schemas, EXAMPLES.get((method, path.removeprefix(API))))
            if not path.startswith(API + "/"):
                for answer in responses.values():
                    answer.setdefault("headers", {})["X-Request-Id"] = REQUEST_ID
                continue
            rel = path[len(API) :]
            op["security"] = [{SCHEME: []}]
            responses.pop("422", None)
            for code in success:
                headers = responses[code].setdefault("headers", {})
                headers["X-Request-Id"] = REQUEST_ID
                if (method, rel) in VERSIONED:
                    headers["ETag"] = ETAG
                if method == "post" and not is_read_only_post(path):
                    headers["Idempotent-Replayed"] = REPLAYED
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
