"""The back-order policy form, shared by Settings (the default) and the product page (per SKU)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from oms.api import schemas as s
from oms.domain.policy import BackorderMode, BackorderPolicy
from oms.web.render import FormErrors, validation_errors, whole

MODES = [m.value for m in BackorderMode]
FIELDS = (
    "mode",
    "max_backorder_qty",
    "max_qty_per_line",
    "channels",
    "preorder_ends_at",
    "release_date",
    "auto_cancel_after_days",
)


def policy_form(policy: dict[str, Any] | None) -> dict[str, str]:
    """A stored policy (as the API shows it) as the form's strings."""
    if policy is None:
        return dict.fromkeys(FIELDS, "")
    ends = policy.get("preorder_ends_at") or ""
    return {
        "mode": policy["mode"],
        "max_backorder_qty": _s(policy.get("max_backorder_qty")),
        "max_qty_per_line": _s(policy.get("max_qty_per_line")),
        "channels": ", ".join(policy.get("channels") or []),
        "preorder_ends_at": ends[:16] if ends else "",
        "release_date": policy.get("release_date") or "",
        "auto_cancel_after_days": _s(policy.get("auto_cancel_after_days")),
    }


def _s(v: Any) -> str:
    return "" if v is None else str(v)


def parse_policy(form: dict[str, Any]) -> tuple[BackorderPolicy | None, FormErrors]:
    """The typed policy, checked by the API's own schema, or the complaints by field."""
    raw = {f: str(form.get(f, "")).strip() for f in FIELDS}
    ends = raw["preorder_ends_at"]
    body: dict[str, Any] = {
        "mode": raw["mode"],
        "channels": [c.strip() for c in raw["channels"].split(",") if c.strip()],
    }
    for f in ("max_backorder_qty", "max_qty_per_line", "auto_cancel_after_days"):
        if raw[f]:
            body[f] = whole(raw[f])
    if raw["release_date"]:
        body["release_date"] = raw["release_date"]
    if ends:
        body["preorder_ends_at"] = ends if ends.endswith("Z") or "+" in ends[10:] else ends + ":00Z"
    try:
        p = s.BackorderPolicyIn.model_validate(body)
    except ValidationError as exc:
        return None, validation_errors(exc)
    return p.to_policy(), FormErrors()
