"""Customer emails: rendered from Jinja2 templates (plain text and HTML), sent over SMTP or to a sink.

OMS_SMTP_URL (smtp://host:port, smtp://user:password@host:port, or smtps://...) names the server.
Without it, messages are written as .eml files under OMS_MAIL_DIR (./mail), so a newcomer running
`make run` can open what customers would get.
"""

from __future__ import annotations

import smtplib
from email.charset import QP, Charset
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import unquote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from oms.settings import settings

SUBJECTS = {
    "order_confirmation": "Order {order_number} confirmed",
    "backorder_allocated": "Good news: items of order {order_number} are on their way to you",
    "eta_later": "Order {order_number}: a new expected date",
    "dispatched": "Order {order_number} has been dispatched",
    "cancelled": "Order {order_number}: items cancelled",
}
TIMEOUT_SECONDS = 15.0
# UTF-8 bodies as quoted-printable, not base64: a .eml opened in an editor stays readable.
READABLE_UTF8 = Charset("utf-8")
READABLE_UTF8.body_encoding = QP

env = Environment(
    loader=PackageLoader("oms.notifications", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def sender() -> str:
    return settings().mail_from


def render(msg_id: str, kind: str, to: str, payload: dict[str, Any], link: str | None, sent_at: Any) -> Message:
    """One message with a plain-text part and an HTML alternative; Message-ID follows the outbox id.

    Built with the MIME classes and the compat32 policy: the newer EmailMessage API parses and
    folds every header through its registry, which made up two thirds of an email's cost.
    """
    ctx = payload | {"link": link}
    msg = MIMEMultipart("alternative")
    msg["Subject"] = SUBJECTS[kind].format(order_number=payload["order_number"])
    msg["From"] = sender()
    msg["To"] = to
    msg["Date"] = format_datetime(sent_at)
    msg["Message-ID"] = make_msgid(idstring=msg_id, domain="oms.localhost")
    msg["X-OMS-Message-Id"] = msg_id
    msg.attach(_part(env.get_template(f"email/{kind}.txt").render(ctx), "plain"))
    msg.attach(_part(env.get_template(f"email/{kind}.html").render(ctx), "html"))
    return msg


def _part(text: str, subtype: str) -> MIMEText:
    part = MIMEText("", subtype, "utf-8")
    del part["Content-Transfer-Encoding"]  # set for base64 by the constructor; quoted-printable instead
    part.set_payload(text, READABLE_UTF8)
    return part


def send(msg: Message, msg_id: str) -> None:
    """Hand the message to the SMTP server, or write it to the sink; raises on failure."""
    url = (settings().smtp_url or "").strip()
    if not url:
        folder = settings().mail_dir
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{msg_id}.tmp"
        tmp.write_bytes(msg.as_bytes())
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
