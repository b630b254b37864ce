"""The dashboard's refusals, raised anywhere in oms.web and turned into pages by oms.web.mount."""

from __future__ import annotations


class LoginRequired(Exception):
    """The page needs a signed-in person; the handler sends them to /login."""


class WebError(Exception):
    """A refusal shown as an HTML page (403 role, 403 CSRF, 404 unknown thing, 413 form too large)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
