"""Estimated dates for back-ordered lines (PRODUCT.md rule 9)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Supply:
    """Open incoming units on one purchase-order line."""

    expected_date: date
    qty: int
    po_number: str


@dataclass(frozen=True)
class Eta:
    eta: date | None
    basis: str  # "po:<number>", "lead_time" or "unknown"


def walk_etas(demands: Sequence[int], supplies: Sequence[Supply], today: date, lead_time_days: int | None) -> list[Eta]:
    """ETAs for queue lines given in rule order with their back-ordered units.

    The running demand is matched against open PO lines by expected date: a line's ETA is the date
    of the first PO line whose running incoming covers the line's running demand; past that, today
    plus the lead time; without a lead time, unknown. A late PO's date is never in the past.
    """
    ordered = sorted(supplies, key=lambda s: (s.expected_date, s.po_number))
    fallback = (
        Eta(today + timedelta(days=lead_time_days), "lead_time") if lead_time_days is not None else Eta(None, "unknown")
    )
    out: list[Eta] = []
    i, incoming, demand = 0, 0, 0
    covering: Eta | None = None  # the ETA of PO line i - 1, built once for all the lines it covers
    for qty in demands:
        demand += qty
        while i < len(ordered) and incoming < demand:
            incoming += ordered[i].qty
            i += 1
            covering = None
        if incoming >= demand and i > 0:
            if covering is None:
                s = ordered[i - 1]
                covering = Eta(max(s.expected_date, today), f"po:{s.po_number}")
            out.append(covering)
        else:
            out.append(fallback)
    return out


def quote_eta(units_ahead: int, qty: int, supplies: Sequence[Supply], today: date, lead_time_days: int | None) -> Eta:
    """The ETA a new line of `qty` back-ordered units would get behind `units_ahead` queued units."""
    return walk_etas([units_ahead, qty], supplies, today, lead_time_days)[1]


def late_supply_date(expected: date, today: date, grace_days: int) -> date:
    """The date a late PO line's open units are now counted on.

    A PO whose expected date has passed is given `grace_days` more at a time: expected + k x grace,
    the first such date after today. So its ETAs move later once per grace period (one notice per
    period, not one a day), never into the past; with no grace the date is today.
    """
    if expected >= today:
        return expected
    if grace_days <= 0:
        return today
    periods = (today - expected).days // grace_days + 1
    return expected + timedelta(days=periods * grace_days)
