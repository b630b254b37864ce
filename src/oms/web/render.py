"""Templates and the small helpers every page shares: rendering, flashes, errors next to fields."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import Connection

from oms.access.users import User
from oms.domain import bounds
from oms.domain.access import Action
from oms.domain.errors import DomainError, NotFound
from oms.store.db import Store
from oms.store.uow import UnitOfWork
from oms.web.auth import csrf_token, may
from oms.web.errors import WebError
from oms.web.forms import read_form

T = TypeVar("T")
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["may"] = may
templates.env.globals["Action"] = Action


def _qs(base: dict[str, Any] | None = None, **changes: Any) -> str:
    """A query string from current filters with some changed; empty values dropped."""
    merged = {**(base or {}), **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


templates.env.globals["qs"] = _qs


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def read(request: Request, query: Callable[[Connection], T]) -> T:
    """A read in one read-only transaction; an unknown thing becomes a 404 page."""
    try:
        return store_of(request).read(query)
    except NotFound as exc:
        raise WebError(404, "Not found", exc.detail) from exc


def write(request: Request, user: User, use_case: Callable[[UnitOfWork], T]) -> T:
    """One action, one transaction, through the same use cases as the API; the person is the actor."""
    return store_of(request).write(use_case, actor=user.username)


def dry_run(request: Request, user: User, use_case: Callable[[UnitOfWork], T]) -> T:
    """The real use case, rolled back: what-if previews."""
    return store_of(request).dry_run(use_case, actor=user.username)


def flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session.setdefault("flash", []).append([kind, message])
    request.session["flash"] = request.session["flash"]  # mark modified


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("errors", {})
    context.setdefault("form", {})
    context["csrf"] = csrf_token(request)
    context["flashes"] = request.session.pop("flash", [])
    context["path"] = request.url.path
    return templates.TemplateResponse(request, name, context, status_code=status)


class FormErrors(dict[str, str]):
    """Messages by field name ('reason', 'po_number', 'sku:TENT-2P', 'line:2'), plus a summary."""

    summary: str = ""


def domain_errors(exc: DomainError) -> FormErrors:
    """Put each of a refusal's items next to the field, SKU or line it names."""
    out = FormErrors()
    out.summary = exc.detail
    for item in exc.errors:
        reason = str(item.get("reason") or _describe(item))
        field = str(item.get("field", ""))
        base = field.split("[]", maxsplit=1)[0].rsplit(".", maxsplit=1)[-1] if field else ""
        keys = []
        if "sku" in item:
            keys.append(f"sku:{item['sku']}")
        if "line_no" in item:
            keys.append(f"line:{item['line_no']}")
        if field:
            keys.append(field.replace("lines[].", ""))
            keys.append(base)
        for k in keys or ["_"]:
            out[k] = f"{out[k]}; {reason}" if k in out and reason not in out[k] else reason
    return out


def _describe(item: dict[str, Any]) -> str:
    parts = [f"{k} {v}" for k, v in item.items() if k not in ("field", "sku", "line_no")]
    return ", ".join(parts) or "refused"


def validation_errors(exc: ValidationError, rows: dict[int, str] | None = None) -> FormErrors:
    """Pydantic's complaints (the API's own request schemas) by form field; `rows` maps line index to a key."""
    out = FormErrors()
    for e in exc.errors():
        loc = [str(p) for p in e["loc"]]
        msg = str(e["msg"]).removeprefix("Value error, ")
        if loc and loc[0] == "lines" and len(loc) >= 3 and loc[1].isdigit():
            key = f"{loc[2]}:{int(loc[1])}"
        elif loc and loc[0] == "lines":
            key = "lines"
        else:
            key = loc[0] if loc else "_"
        out.setdefault(key, msg)
    out.summary = "Nothing was saved; check " + ", ".join(_field_name(k) for k in sorted(out)) + "."
    return out


def form_fields(*lists: str) -> Callable[[Request], Awaitable[dict[str, Any]]]:
    """A dependency for sync handlers: the posted form as {name: text}, each field read once as text.

    Names ending in '[]' and those in `lists` (a group of checkboxes) are lists of text; any other
    name sent twice, or a file where text is expected, is refused (422) before the handler runs.
    """
    listed = frozenset(lists)

    async def form_data(request: Request) -> dict[str, Any]:
        form = await read_form(request)
        out: dict[str, Any] = {}
        problems: list[str] = []
        for key in form.keys():  # noqa: SIM118 - a multi-dict: each name once, its values by getlist
            values = form.getlist(key)
            texts = [v for v in values if isinstance(v, str)]
            if "\x00" in key or any("\x00" in v for v in texts):  # PostgreSQL refuses NUL in text
                raise WebError(422, "Invalid form", "A form field contains a NUL character; nothing was changed.")
            many = key in listed or key.endswith("[]")
            if len(texts) < len(values):
                problems.append(f"'{key}' must be text, not a file")
            elif len(values) > 1 and not many:
                problems.append(f"'{key}' was sent {len(values)} times; send it once")
            out[key] = texts if many else (texts[0] if texts else "")
        if problems:
            raise WebError(422, "Invalid form", "Nothing was changed: " + "; ".join(problems) + ".")
        return out

    return form_data


form_data = form_fields()  # a form whose every field is sent once
PostedForm = Annotated[dict[str, Any], Depends(form_data)]  # a handler's `form: PostedForm`


def as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def whole(value: Any) -> Any:
    """A typed whole number as an int, for the API's schemas to bound (they take integers strictly);
    anything else as typed, for them to refuse."""
    text = str(value).strip() if value is not None else ""
    number = bounds.parse_whole(text)
    return number if number is not None else (text or None)


def whole_in(value: Any, lo: int, hi: int) -> int | None:
    """A whole number in [lo, hi] typed into a query string or a form that no schema reads, or None."""
    number = bounds.parse_whole(str(value)) if value is not None else None
    return number if number is not None and lo <= number <= hi else None


def _field_name(key: str) -> str:
    """'qty:0' -> 'qty on line 1'; 'po_number' -> 'po number'."""
    name, _, idx = key.partition(":")
    label = name.replace("_", " ")
    return f"{label} on line {int(idx) + 1}" if idx.isdigit() else label
