"""Security headers on every answer outside the API: the dashboard, the customer's page, the API docs.

- `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`: no other site may frame a page (a framed
  "Cancel" button under a decoy is clickjacking).
- The Content-Security-Policy allows scripts, styles, images and fetches from this origin only, no
  inline script or style, no plugins, no <base>, forms posted only here. The templates hold no inline
  script or style (data for charts travels in <script type="application/json">, which never runs).
- `X-Content-Type-Options: nosniff`; `Referrer-Policy: same-origin` unless the page set its own.
The API's JSON answers are left alone: they are not documents a browser renders.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_API = "/api/"


class SecurityHeaders:
    """ASGI middleware adding HEADERS (where the answer has not set them) to every answer outside /api/."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_API):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)
