"""Routes for notifications (the outbox), webhooks, line explanations and the customer's order page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import Field, field_validator
from starlette.concurrency import run_in_threadpool

from oms.api import models as m
from oms.api.app import require, store_of
from oms.api.schemas import CODE_PATTERN, MAX_LINES, TEXT_PATTERN, Body, Code
from oms.domain.access import Action, Principal
from oms.domain.errors import DomainError
from oms.notifications import links, outbox, webhooks
from oms.notifications.email import env
from oms.orders import customer_link
from oms.orders.explain import explain
from oms.web.errors import WebError
from oms.web.forms import read_form

api = APIRouter()
public = APIRouter()
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=2000)]
Filter = Annotated[str | None, Query(max_length=64, pattern=CODE_PATTERN)]
SubId = Annotated[int, Path(ge=1, le=2**53)]


class WebhookIn(Body):
    # No control characters or spaces in a URL and none but tab/newlines in text: PostgreSQL refuses NUL.
    url: Annotated[str, Field(min_length=8, max_length=500, pattern=r"^[^\x00-\x20\x7f]*$")]
    event_types: Annotated[list[Annotated[str, Field(min_length=1, max_length=40)]], Field(min_length=1, max_length=50)]
    description: Annotated[str, Field(max_length=200, pattern=TEXT_PATTERN)] | None = None

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v


# ---- notifications ------------------------------------------------------------------------------


@api.get("/notifications", tags=["notifications"], responses=m.answers(m.NotificationPage))
def list_notifications(
    request: Request,
    channel: Filter = None,
    order_number: Filter = None,
    status: Literal["pending", "delivered", "dead"] | None = None,
    kind: Literal["email", "webhook"] | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    who: Principal = Depends(require(Action.READ)),
) -> dict[str, Any]:
    """Outbox records, oldest first: `status=dead` lists the dead letters.

    A webhook's `to` is its target URL for admin keys and `subscription:<id>` for every other key."""
    scope = who.channel_scope
    if scope is not None and channel not in (None, scope):
        return {"items": [], "next_cursor": None}
    return store_of(request).read(
        lambda c: outbox.list_notifications(
            c,
            channel=scope or channel,
            order_number=order_number,
            status=status,
            kind=kind,
            limit=limit,
            cursor=cursor,
            show_urls=who.may(Action.SETTINGS),  # those who manage the subscriptions (admins)
        )
    )


@api.post("/notifications/{message_id}/retry", tags=["notifications"], responses=m.answers(m.Notification))
def retry_notification(
    message_id: Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")],
    request: Request,
    who: Principal = Depends(require(Action.SETTINGS)),
) -> dict[str, Any]:
    """Send a dead notification again (same id, attempts start over)."""
    return store_of(request).write(lambda uow: outbox.retry_notification(uow, message_id), actor=who.name)


# ---- webhooks -----------------------------------------------------------------------------------


@api.post("/webhooks", status_code=201, tags=["webhooks"], responses=m.answers(m.WebhookCreated, 201))
def create_webhook(
    body: WebhookIn, request: Request, who: Principal = Depends(require(Action.SETTINGS))
) -> dict[str, Any]:
    """Subscribe a URL to event types ("*" = all). The signing secret is shown only in this answer.

    The URL must name a public address: loopback, private, link-local, multicast, metadata and other
    inner addresses are refused with 422, in any spelling (`0x7f000001`, `[::ffff:10.0.0.1]`, ...);
    a host name is checked again after DNS at every delivery. Redirects are not followed.
    `OMS_WEBHOOK_ALLOW_PRIVATE=1` on the server permits loopback and private receivers.

    Each delivery is signed as Standard Webhooks: headers webhook-id (the stable message id),
    webhook-timestamp (Unix seconds) and webhook-signature = "v1," + base64(HMAC-SHA256(key,
    f"{id}.{timestamp}.{body}")), where key is the base64-decoded part of the secret after "whsec_".
    """
    secret = webhooks.new_secret()
    return store_of(request).write(
        lambda uow: outbox.create_subscription(uow, body.url, body.event_types, secret, body.description),
        actor=who.name,
    )


@api.get("/webhooks", tags=["webhooks"], responses=m.answers(m.WebhookList))
def list_webhooks(request: Request, who: Principal = Depends(require(Action.SETTINGS))) -> dict[str, Any]:
    return store_of(request).read(outbox.list_subscriptions)


@api.get("/webhooks/{sub_id}", tags=["webhooks"], responses=m.answers(m.Webhook))
def get_webhook(sub_id: SubId, request: Request, who: Principal = Depends(require(Action.SETTINGS))) -> dict[str, Any]:
    return store_of(request).read(lambda c: outbox.get_subscription(c, sub_id))


@api.delete("/webhooks/{sub_id}", tags=["webhooks"], responses=m.answers(m.Webhook))
def delete_webhook(
    sub_id: SubId, request: Request, who: Principal = Depends(require(Action.SETTINGS))
) -> dict[str, Any]:
    """Deactivate a subscription; its undelivered messages become dead."""
    return store_of(request).write(lambda uow: outbox.deactivate_subscription(uow, sub_id), actor=who.name)


@api.get("/webhooks/{sub_id}/deliveries", tags=["webhooks"], responses=m.answers(m.WebhookDeliveryPage))
def list_webhook_deliveries(
    sub_id: SubId,
    request: Request,
    limit: Limit = 100,
    cursor: Cursor = None,
    who: Principal = Depends(require(Action.SETTINGS)),
) -> dict[str, Any]:
    """Every delivery attempt, newest first: status code, error, duration."""
    return store_of(request).read(lambda c: outbox.list_deliveries(c, sub_id, limit, cursor))


# ---- explain ------------------------------------------------------------------------------------


@api.get("/orders/{order_number}/lines/{line_no}/explain", tags=["orders"], responses=m.answers(m.LineExplanation))
def explain_order_line(
    order_number: Code,
    line_no: Annotated[int, Path(ge=1, le=100_000)],
    request: Request,
    who: Principal = Depends(require(Action.READ)),
) -> dict[str, Any]:
    """Why the line waits: queue position, units ahead, incoming supply by date, the ETA's basis, the rule."""
    today = datetime.now(UTC).date()
    return store_of(request).read(lambda c: explain(c, order_number, line_no, today, who.channel_scope))


# ---- the customer's page ------------------------------------------------------------------------


def _order_of(request: Request, token: str) -> str | None:
    return links.read_token(links.store_secret(store_of(request)), token)


def _page(request: Request, order_number: str, message: str | None = None, status: int = 200) -> HTMLResponse:
    order = store_of(request).read(lambda c: customer_link.customer_view(c, order_number))
    waiting = any(line["backordered_qty"] for line in order["lines"])
    html = env.get_template("customer_page.html").render(order=order, waiting=waiting, message=message)
    return HTMLResponse(
        html, status_code=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


NOT_FOUND = HTMLResponse("<!doctype html><title>Not found</title><p>Not found.</p>", status_code=404)


@public.get("/c/{token}", include_in_schema=False)
def customer_page(token: Annotated[str, Path(max_length=500)], request: Request) -> Response:
    order_number = _order_of(request, token)
    if order_number is None:
        return NOT_FOUND
    return _page(request, order_number)


@public.post("/c/{token}", include_in_schema=False)
async def customer_choice(token: Annotated[str, Path(max_length=500)], request: Request) -> Response:
    """The customer's choice. The link is checked before the form is read, and the read is bounded."""
    order_number = await run_in_threadpool(_order_of, request, token)
    if order_number is None:
        return NOT_FOUND
    try:
        form = await read_form(request)
    except WebError as exc:
        return HTMLResponse(f"<!doctype html><title>{exc.title}</title><p>{exc.detail}</p>", status_code=exc.status)
    action, line_no = form.get("action"), str(form.get("line_no") or "")
    a_line = line_no.isascii() and line_no.isdigit() and len(line_no) <= 6 and 1 <= int(line_no) <= MAX_LINES
    if action not in ("cancel", "wait") or not (line_no == "" or a_line):
        return await run_in_threadpool(_page, request, order_number, "Choose one of the buttons below.", 422)
    line = int(line_no) if line_no else None
    return await run_in_threadpool(_choose, request, order_number, action == "cancel", line)


def _choose(request: Request, order_number: str, cancel: bool, line_no: int | None) -> Response:
    store = store_of(request)
    if not cancel:
        store.write(lambda uow: customer_link.keep_waiting(uow, order_number), actor="customer")
        return _page(request, order_number, "Thank you: your order keeps its place in the queue.")
    try:
        store.write(lambda uow: customer_link.cancel_waiting(uow, order_number, line_no), actor="customer")
    except DomainError as exc:
        return _page(request, order_number, exc.detail, status=409)
    return _page(request, order_number, "Done: the waiting items are cancelled. You will get a confirmation email.")


def include(app: FastAPI) -> None:
    """Mount these routes: the API ones under /api/v1, the customer page at the root."""
    app.include_router(api, prefix="/api/v1")
    app.include_router(public)
