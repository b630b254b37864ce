"""A report's filters: the period and the channel, read from the API's, the page's or the CLI's text.

Periods: `Filters.start` is inclusive and `Filters.end` exclusive, both UTC. Each report says which
time its period bounds (placement, dispatch, allocation, cancellation, promised or expected date).

Figures over lines by when they were placed come from the rollups (migration 0009, kept by
triggers) when the period is whole UTC days (placement facts: `aligned`) or hours (waiting lines:
`whole_hours`), which every date filter is; a period bounded mid-day is counted from the lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement

from oms.domain import bounds
from oms.domain.errors import Invalid


@dataclass(frozen=True)
class Filters:
    """A report's period [start, end) in UTC and channel; None means unbounded / every channel."""

    start: datetime | None = None
    end: datetime | None = None
    channel: str | None = None

    def period(self, col: Any) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.start is not None:
            out.append(col >= self.start)
        if self.end is not None:
            out.append(col < self.end)
        return out

    def date_period(self, col: Any) -> list[ColumnElement[bool]]:
        """The period for a DATE column: the days the period touches."""
        out: list[ColumnElement[bool]] = []
        if self.start is not None:
            out.append(col >= self.start.astimezone(UTC).date())
        if self.end is not None:
            out.append(col <= (self.end.astimezone(UTC) - timedelta(microseconds=1)).date())
        return out

    def on_channel(self, col: Any) -> list[ColumnElement[bool]]:
        return [col == self.channel] if self.channel else []


def parse_bound(value: str | None, field: str, *, end: bool) -> datetime | None:
    """A period bound: a date means its midnight (UTC); as an end it means the next midnight."""
    if value is None or value == "":
        return None
    t: datetime | None
    is_date = len(value) == 10 and value.isascii()
    try:
        if is_date:
            t = datetime.combine(date.fromisoformat(value), time(), UTC)
        else:
            t = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise Invalid(
            f"'{field}' must be a date (2026-11-01) or an RFC 3339 time with a zone (2026-11-01T08:00:00Z).",
            [{"field": field, "value": value, "reason": "not a date or RFC 3339 time"}],
        )
    problem = bounds.time_problem(t)
    if problem is not None:
        raise Invalid(
            f"'{field}' {problem}; leave it out for a period open at that end.",
            [{"field": field, "value": value, "reason": problem}],
        )
    if is_date and end:
        t += timedelta(days=1)  # a date as an end takes in its whole day (at most 3000-01-01)
    return t.astimezone(UTC)


def filters_from(from_: str | None, to: str | None, channel: str | None) -> Filters:
    """Filters from the API's or the CLI's `from`, `to` and `channel` (a date `to` takes in its day)."""
    start = parse_bound(from_, "from", end=False)
    stop = parse_bound(to, "to", end=True)
    if start is not None and stop is not None and stop <= start:
        raise Invalid("'to' must come after 'from'.", [{"field": "to", "value": to, "reason": "not after from"}])
    return Filters(start, stop, channel or None)


def _midnight(t: datetime | None) -> bool:
    if t is None:
        return True
    u = t.astimezone(UTC)
    return (u.hour, u.minute, u.second, u.microsecond) == (0, 0, 0, 0)


def aligned(f: Filters) -> bool:
    """Whether the period is whole UTC days, so the day rollups answer it exactly."""
    return _midnight(f.start) and _midnight(f.end)


def day_span(f: Filters, col: Any) -> list[ColumnElement[bool]]:
    """An aligned period as a condition on a UTC-day column."""
    out: list[ColumnElement[bool]] = []
    if f.start is not None:
        out.append(col >= f.start.astimezone(UTC).date())
    if f.end is not None:
        out.append(col < f.end.astimezone(UTC).date())
    return out


def whole_hours(f: Filters) -> bool:
    """Whether the period is whole UTC hours, so the pending rollup answers it exactly."""
    return all(t is None or t.astimezone(UTC) == hour_of(t) for t in (f.start, f.end))


def hour_of(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
