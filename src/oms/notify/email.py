"""Customer emails: rendered from Jinja2 templates (plain text and HTML), sent over SMTP or to a sink.

OMS_SMTP_URL (smtp://host:port, smtp://user:password@host:port, or smtps://...) names the server.
Without it, messages are written as .eml files under OMS_MAIL_DIR (./mail), so a newcomer running
`make run` can open what customers would get.
"""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

SUBJECTS = {
    "order_confirmation": "Order {order_number} confirmed",
    "backorder_allocated": "Good news: items of order {order_number} are on their way to you",
    "eta_later": "Order {order_number}: a new expected date",
    "dispatched": "Order {order_number} has been dispatched",
    "cancelled": "Order {order_number}: items cancelled",
}
TIMEOUT_SECONDS = 15.0

env = Environment(
    loader=PackageLoader("oms.notify", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def sender() -> str:
    return os.environ.get("OMS_MAIL_FROM", "orders@oms.localhost")


def render(msg_id: str, kind: str, to: str, payload: dict[str, Any], link: str | None, sent_at: Any) -> EmailMessage:
    """One message with a plain-text part and an HTML alternative; Message-ID follows the outbox id."""
    ctx = payload | {"link": link}
    msg = EmailMessage()
    msg["Subject"] = SUBJECTS[kind].format(order_number=payload["order_number"])
    msg["From"] = sender()
    msg["To"] = to
    msg["Date"] = format_datetime(sent_at)
    msg["Message-ID"] = make_msgid(idstring=msg_id, domain="oms.localhost")
    msg["X-OMS-Message-Id"] = msg_id
    msg.set_content(env.get_template(f"email/{kind}.txt").render(ctx))
    msg.add_alternative(env.get_template(f"email/{kind}.html").render(ctx), subtype="html")
    return msg


def send(msg: EmailMessage, msg_id: str) -> None:
    """Hand the message to the SMTP server, or write it to the sink; raises on failure."""
    url = os.environ.get("OMS_SMTP_URL", "").strip()
    if not url:
        folder = Path(os.environ.get("OMS_MAIL_DIR", "mail"))
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{msg_id}.tmp"
        tmp.write_bytes(bytes(msg))
        tmp.replace(folder / f"{msg_id}.eml")  # the same id again overwrites: a retry is not a second mail
        return
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    smtp_cls = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with smtp_cls(host, port or (465 if parts.scheme == "smtps" else 25), timeout=TIMEOUT_SECONDS) as smtp:
        if parts.scheme == "smtp+starttls":
            smtp.starttls()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(msg)
