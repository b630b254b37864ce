"""The overview: what waits, how long, what is late, where shipments are."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from oms.domain.access import Action
from oms.services.common import utcnow

from . import queries
from .auth import require_user
from .render import read, render
from .users import User

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, user: User = Depends(require_user(Action.READ))) -> HTMLResponse:
    now = utcnow()
    figures = read(request, lambda c: queries.overview(c, now))
    return render(request, "overview.html", figures=figures)
