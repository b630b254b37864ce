"""Problem details (RFC 9457): the one shape of every 4xx and 5xx answer."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROBLEM = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
}


def problem_body(
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    type_: str = "about:blank",
    request_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    if request_id:
        body["request_id"] = request_id
    return body


def problem_bytes(*args: Any, **kw: Any) -> bytes:
    return json.dumps(problem_body(*args, **kw)).encode()


class ProblemItem(BaseModel):
    """One offending field or SKU, with what was wrong and, where known, what would be accepted."""

    model_config = ConfigDict(extra="allow")

    field: str | None = Field(None, description="The offending field, e.g. `lines.0.qty` or `Idempotency-Key`.")
    sku: str | None = Field(None, description="The offending SKU, where a SKU is at fault.")
    reason: str | None = None


class Problem(BaseModel):
    """An error (RFC 9457). `errors` names each offending field or SKU."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "type": "/problems/validation",
                "title": "Invalid request",
                "status": 422,
                "detail": "The request has invalid fields: lines.0.qty.",
                "errors": [{"field": "lines.0.qty", "reason": "Input should be greater than or equal to 1"}],
                "request_id": "5f0c6d1e2a7b4c3d9e8f7a6b5c4d3e2f",
            }
        },
    )

    type: str = Field(description="A URI reference naming the kind of problem; `about:blank` for plain HTTP ones.")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    errors: list[ProblemItem] | None = None
    request_id: str | None = Field(None, description="Quote it when reporting a problem; the logs carry it too.")
