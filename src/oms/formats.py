"""How times, dates and amounts are written in every answer, page, email and CSV."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal


def rfc3339(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z") if t else None


def iso_date(d: date | None) -> str | None:
    return d.isoformat() if d else None


def money(d: Decimal) -> str:
    return f"{d:.2f}"
