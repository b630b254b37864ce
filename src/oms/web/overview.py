"""The overview: what waits, how long, what is late, where shipments are."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from oms.store.reads import utcnow
from oms.web import queries
from oms.web.auth import Reader
from oms.web.render import read, render

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, user: Reader) -> HTMLResponse:
    now = utcnow()
    figures = read(request, lambda c: queries.overview(c, now))
    return render(request, "overview.html", figures=figures)
