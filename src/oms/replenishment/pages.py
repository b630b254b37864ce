"""Purchasing: purchase orders (open, overdue, received) with editable dates, new POs, goods receipts
with a preview before confirming, and the shortfall with suggested order quantities."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from oms.api import schemas as s
from oms.domain.errors import DomainError
from oms.http import status_of
from oms.replenishment import preview
from oms.replenishment import use_cases as replenishment
from oms.replenishment import views as po_views
from oms.store.reads import utcnow
from oms.web.auth import Purchaser
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
    validation_errors,
    whole,
    write,
)

router = APIRouter()
VIEWS = {
    "open": ("open", None),
    "overdue": ("open", True),
    "received": ("received", None),
    "cancelled": ("cancelled", None),
    "all": (None, None),
}
BLANK_ROWS = 5


def _rows(form: dict[str, Any], fields: tuple[str, ...]) -> list[dict[str, str]]:
    """Line rows as typed (sku[], qty[], ...), padded so the form always has room for more."""
    cols = {f: as_list(form.get(f"{f}[]")) for f in fields}
    n = max([len(v) for v in cols.values()] + [0])
    rows = [{f: (cols[f][i].strip() if i < len(cols[f]) else "") for f in fields} for i in range(n)]
    rows = [r for r in rows if any(r.values())]
    return rows + [dict.fromkeys(fields, "") for _ in range(max(1, BLANK_ROWS - len(rows)))]


def _lines(rows: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[int]]:
    """The filled rows as body lines, and for each line the row it came from."""
    picked = [(i, r) for i, r in enumerate(rows) if any(r.values())]
    return [r for _, r in picked], [i for i, _ in picked]


def _row_errors(errors: FormErrors, rows: list[dict[str, str]], origin: list[int]) -> FormErrors:
    """Move 'field:line index' and 'sku:SKU' complaints onto the form's row numbers."""
    out = FormErrors()
    out.summary = errors.summary
    for key, msg in errors.items():
        name, _, idx = key.partition(":")
        if idx.isdigit() and int(idx) < len(origin):
            out[f"{name}:{origin[int(idx)]}"] = msg
        elif name == "sku" and idx:
            for i, r in enumerate(rows):
                if r.get("sku") == idx:
                    out[f"sku:{i}"] = msg
        else:
            out[key] = msg
    return out


# ---- purchase orders ----------------------------------------------------------------------------


@router.get("/purchasing", response_class=HTMLResponse)
def po_list(request: Request, user: Purchaser) -> HTMLResponse:
    return _po_page(request)


def _po_page(request: Request, status: int = 200, errors: FormErrors | None = None, form: Any = None) -> HTMLResponse:
    q = request.query_params
    view = q.get("view", "open") if q.get("view") in VIEWS else "open"
    sku = q.get("sku", "").strip()[:64]
    cursor = q.get("cursor") or None
    po_status, overdue = VIEWS[view]
    today = utcnow().date()

    def listing(c: Any, cursor: str | None) -> dict[str, Any]:
        return po_views.list_pos(
            c, status=po_status, sku=sku or None, overdue=overdue, today=today, limit=25, cursor=cursor
        )

    try:
        page = read(request, lambda c: listing(c, cursor))
    except DomainError:
        page = read(request, lambda c: listing(c, None))
    return render(
        request,
        "purchasing.html",
        status,
        view=view,
        sku=sku,
        listing=page,
        cursor=cursor,
        today=today.isoformat(),
        errors=errors or FormErrors(),
        form=form or {},
    )


@router.post("/purchasing/dates", response_class=HTMLResponse)
def change_dates(
    request: Request,
    form: PostedForm,
    user: Purchaser,
) -> Response:
    po_number = str(form.get("po_number", ""))
    changes = [
        {"sku": key.removeprefix("date:"), "expected_date": str(value)}
        for key, value in form.items()
        if key.startswith("date:") and str(value) != str(form.get("orig:" + key.removeprefix("date:"), ""))
    ]
    back = "/purchasing?" + str(form.get("back", ""))
    if not changes:
        flash(request, f"{po_number}: no date changed.", "info")
        return redirect(back)
    try:
        body = s.PurchaseOrderPatch.model_validate({"lines": changes})
        moves = [replenishment.PoLineChange(line.sku, line.expected_date, None) for line in body.lines]
        write(request, user, lambda uow: replenishment.patch_po(uow, po_number, moves))
    except ValidationError as exc:
        errors = FormErrors(
            {
                f"{po_number}:date:{changes[int(e['loc'][1])]['sku']}": str(e["msg"])
                for e in exc.errors()
                if len(e["loc"]) > 1
            }
        )
        errors.summary = f"{po_number}: enter dates as YYYY-MM-DD."
        return _po_page(request, 422, errors, form)
    except DomainError as exc:
        found = domain_errors(exc)
        errors = FormErrors({f"{po_number}:{k}": v for k, v in found.items()})
        errors.summary = found.summary
        return _po_page(request, status_of(exc), errors, form)
    flash(request, f"{po_number}: expected dates saved; waiting lines re-dated.")
    return redirect(back)


@router.get("/purchasing/new", response_class=HTMLResponse)
def new_po(request: Request, user: Purchaser) -> HTMLResponse:
    q = request.query_params
    prefill = {"sku[]": q.get("sku", ""), "qty[]": q.get("qty", ""), "expected_date[]": ""}
    return render(request, "po_new.html", form={}, rows=_rows(prefill, ("sku", "qty", "expected_date")))


@router.post("/purchasing/new", response_class=HTMLResponse)
def create_po(
    request: Request,
    form: PostedForm,
    user: Purchaser,
) -> Response:
    rows = _rows(form, ("sku", "qty", "expected_date"))
    lines, origin = _lines(rows)
    po_number = str(form.get("po_number", "")).strip()
    try:
        body = s.PurchaseOrderIn.model_validate(
            {
                "po_number": po_number,
                "supplier": str(form.get("supplier", "")).strip(),
                "lines": [{k: (whole(v) if k == "qty" else v or None) for k, v in line.items()} for line in lines],
            }
        )
        po_lines = [replenishment.PoLine(line.sku, line.qty, line.expected_date) for line in body.lines]
        write(request, user, lambda uow: replenishment.create_po(uow, body.po_number, body.supplier, po_lines))
    except ValidationError as exc:
        errors = _row_errors(validation_errors(exc), rows, origin)
        return render(request, "po_new.html", 422, form=form, rows=rows, errors=errors)
    except DomainError as exc:
        errors = _row_errors(domain_errors(exc), rows, origin)
        return render(request, "po_new.html", status_of(exc), form=form, rows=rows, errors=errors)
    flash(request, f"Purchase order {po_number} created; waiting lines of its SKUs re-dated.")
    return redirect(
        "/purchasing?view=open&sku=" + quote(lines[0]["sku"]) if len(lines) == 1 else "/purchasing?view=open"
    )


# ---- goods receipts -----------------------------------------------------------------------------


@router.get("/purchasing/receive", response_class=HTMLResponse)
def receive_form(request: Request, user: Purchaser) -> HTMLResponse:
    po_number = request.query_params.get("po", "").strip()
    form: dict[str, Any] = {"po_number": po_number, "sku[]": [], "qty[]": []}
    if po_number:
        po = read(request, lambda c: po_views.po_view(c, po_number, utcnow().date()))
        for line in po["lines"]:
            if line["open_qty"] > 0:
                form["sku[]"].append(line["sku"])
                form["qty[]"].append(str(line["open_qty"]))
    return render(request, "receive.html", form=form, rows=_rows(form, ("sku", "qty")))


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]


@router.post("/purchasing/receive", response_class=HTMLResponse)
def receive(
    request: Request,
    form: PostedForm,
    user: Purchaser,
) -> Response:
    """Preview first (the real receive_goods, rolled back); confirm books exactly what was previewed."""
    rows = _rows(form, ("sku", "qty"))
    lines, origin = _lines(rows)
    po_number = str(form.get("po_number", "")).strip()
    try:
        body = s.ReceiptIn.model_validate(
            {
                "grn_number": str(form.get("grn_number", "")).strip(),
                **({"po_number": po_number} if po_number else {}),
                "lines": [{k: (whole(v) if k == "qty" else v or None) for k, v in line.items()} for line in lines],
            }
        )
    except ValidationError as exc:
        errors = _row_errors(validation_errors(exc), rows, origin)
        return render(request, "receive.html", 422, form=form, rows=rows, errors=errors)
    dumped = body.model_dump(mode="json", exclude_unset=True)
    digest = _digest(dumped)
    receipt_lines = [replenishment.ReceiptLine(line.sku, line.qty) for line in body.lines]
    confirm = form.get("action") == "confirm" and form.get("previewed") == digest
    try:
        if confirm:
            result = write(
                request,
                user,
                lambda uow: replenishment.receive_goods(
                    uow, body.grn_number, receipt_lines, body.po_number, None, dumped
                ),
            ).result
            units = sum(a["qty"] for a in result["allocations"])
            flash(
                request,
                f"GRN {body.grn_number} booked: {units} units allocated to {len(result['allocations'])} waiting lines.",
            )
            return render(request, "receive_done.html", result=result)
        result = dry_run(
            request,
            user,
            lambda uow: preview.preview_receipt(uow, body.grn_number, receipt_lines, body.po_number, dumped),
        )
    except DomainError as exc:
        errors = _row_errors(domain_errors(exc), rows, origin)
        return render(request, "receive.html", status_of(exc), form=form, rows=rows, errors=errors)
    note = (
        "The receipt changed after its preview: check this new preview, then confirm."
        if form.get("action") == "confirm"
        else ""
    )
    return render(request, "receive.html", form=form, rows=rows, preview=result, digest=digest, note=note)


# ---- shortfall ----------------------------------------------------------------------------------


@router.get("/purchasing/shortfall", response_class=HTMLResponse)
def shortfall(request: Request, user: Purchaser) -> HTMLResponse:
    data = read(request, po_views.shortfall)
    return render(request, "shortfall.html", items=data["items"])
