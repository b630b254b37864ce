"""Settings: the allocation rule (reorder its keys, preview the effect on the queues) and the default policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from oms.catalog import rule_preview
from oms.catalog import use_cases as catalog
from oms.catalog.policy_form import MODES, parse_policy, policy_form
from oms.domain.allocation import RuleKey
from oms.domain.errors import DomainError
from oms.http import status_of
from oms.store import reads as common
from oms.web.auth import SettingsEditor
from oms.web.render import (
    FormErrors,
    PostedForm,
    as_list,
    domain_errors,
    dry_run,
    flash,
    read,
    redirect,
    render,
    write,
)

router = APIRouter()
KEY_HELP = {
    RuleKey.PRIORITY: "Manual priority, highest first",
    RuleKey.CUSTOMER_TIER: "Customer tier, platinum first",
    RuleKey.ORDER_VALUE: "Order value, highest first",
    RuleKey.PLACED_AT: "Order time, oldest first (FIFO)",
    RuleKey.PROMISED_DATE: "First promised date, earliest first",
}
PREVIEW_ROWS = 100


def _current(request: Request) -> tuple[list[str], dict[str, str]]:
    def q(c: Any) -> tuple[list[str], dict[str, str]]:
        return [k.value for k in common.allocation_rule(c)], policy_form(
            common.policy_to_json(common.default_policy(c))
        )

    return read(request, q)


def _page(
    request: Request,
    order: list[str],
    used: list[str],
    status: int = 200,
    errors: FormErrors | None = None,
    policy: dict[str, Any] | None = None,
    rule_preview: dict[str, Any] | None = None,
) -> HTMLResponse:
    current, stored_policy = _current(request)
    proposed = [k for k in order if k in used]
    return render(
        request,
        "settings.html",
        status,
        current=current,
        order=order,
        used=used,
        proposed=proposed,
        key_help={k.value: v for k, v in KEY_HELP.items()},
        preview=rule_preview,
        preview_rows=PREVIEW_ROWS,
        modes=MODES,
        form=policy or stored_policy,
        errors=errors or FormErrors(),
    )


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, user: SettingsEditor) -> HTMLResponse:
    current, _ = _current(request)
    order = current + [k.value for k in RuleKey if k.value not in current]
    return _page(request, order, current)


def _reorder(order: list[str], move: str) -> list[str]:
    """Apply an 'up:key' or 'down:key' button to the displayed order."""
    direction, _, key = move.partition(":")
    if key not in order:
        return order
    i = order.index(key)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(order):
        order[i], order[j] = order[j], order[i]
    return order


@router.post("/settings/rule", response_class=HTMLResponse)
def rule(
    request: Request,
    form: PostedForm,
    user: SettingsEditor,
) -> Response:
    known = [k.value for k in RuleKey]
    order = [k for k in dict.fromkeys(as_list(form.get("key[]"))) if k in known]
    order += [k for k in known if k not in order]
    used = [k for k in order if form.get(f"use:{k}")]
    order = _reorder(order, str(form.get("move", "")))
    proposed = [k for k in order if k in used]
    try:
        if form.get("action") == "save":
            write(request, user, lambda uow: catalog.set_allocation_rule(uow, proposed))
            flash(request, "Allocation rule saved: " + " → ".join(proposed) + ". Every queue follows it now.")
            return redirect("/settings")
        result = dry_run(request, user, lambda uow: rule_preview.preview_rule(uow, proposed))
    except DomainError as exc:
        errors = domain_errors(exc)
        errors["keys"] = errors.get("keys") or exc.detail
        return _page(request, order, used, status_of(exc), errors)
    return _page(request, order, used, rule_preview=result)


@router.post("/settings/policy", response_class=HTMLResponse)
def default_policy(
    request: Request,
    form: PostedForm,
    user: SettingsEditor,
) -> Response:
    current, _ = _current(request)
    order = current + [k.value for k in RuleKey if k.value not in current]
    policy, errors = parse_policy(form)
    if policy is None:
        errors.summary = "The default policy was not saved: " + "; ".join(f"{k}: {v}" for k, v in errors.items())
        return _page(request, order, current, 422, errors, form)
    try:
        write(request, user, lambda uow: catalog.set_default_policy(uow, policy))
    except DomainError as exc:
        return _page(request, order, current, status_of(exc), domain_errors(exc), form)
    flash(request, f"Default back-order policy saved: {policy.mode.value}.")
    return redirect("/settings")
