"""Reading a posted form within bounds: the one place the dashboard and the customer page parse a form.

The body itself is capped before any route runs (oms.api.guard: MAX_FORM_BYTES outside the API), and
whatever checks a token (the session's CSRF token, the customer link) runs before this. Here the
parse is bounded too: at most MAX_FIELDS fields, none larger than MAX_FIELD_BYTES, and no files.
"""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from oms.api.schemas import MAX_LINES
from oms.web.errors import WebError

# The largest real form is a purchase order of MAX_LINES lines, three fields a line; the cap leaves room.
MAX_FIELDS = 4 * MAX_LINES
MAX_FIELD_BYTES = 32 * 1024  # a reason or a name is at most 500 characters; a field this size is no typing


async def read_form(request: Request) -> FormData:
    """The request's form, parsed once (later calls get the same), or a 413/400 page saying what is wrong."""
    try:
        return await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    except HTTPException as exc:  # Starlette's parsers refuse with a 400 carrying their reason
        reason = str(exc.detail)
        if reason.startswith("Too many files"):
            raise WebError(
                422, "Invalid form", "Every field of this form must be text, not a file. Nothing was changed."
            ) from exc
        if reason.startswith("Too many") or "exceeded maximum size" in reason:
            raise WebError(
                413,
                "Form too large",
                f"This form is larger than a form of this site can be: at most {MAX_FIELDS} fields of "
                f"{MAX_FIELD_BYTES // 1024} KiB each, and no files ({reason}). Nothing was changed.",
            ) from exc
        raise WebError(400, "Unreadable form", f"The form could not be read: {reason} Nothing was changed.") from exc
