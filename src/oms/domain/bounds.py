"""The ranges every number, amount and time the product takes lies in.

Each entry point checks what it is given against these once, where it parses it: the API's request
schemas, the dashboard's form and query parsing, the report filters and the listing cursors. Past
the edge, arithmetic on a value (a time moved to UTC, a date plus a lead time, an order's value in
cents) can then never leave what Python's dates or the store's 64-bit integers can hold.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

# Times and dates: from the Unix epoch (the store's range scans start there) to the end of 2999, far
# from both ends of what datetime holds (years 1 to 9999), so any offset or day arithmetic stays valid.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(3000, 1, 1, tzinfo=UTC)  # exclusive
EARLIEST_DATE = EARLIEST_TIME.date()
LATEST_DATE = date(2999, 12, 31)
TIME_RANGE = "between 1970-01-01T00:00:00Z and 2999-12-31T23:59:59Z"
DATE_RANGE = "between 1970-01-01 and 2999-12-31"

# Money: a price or an order's value has at most 10 digits before the point and 2 after; stored as
# cents in a 64-bit integer, sums over millions of orders still fit.
MAX_MONEY = Decimal("9999999999.99")
MAX_ORDER_VALUE = MAX_MONEY
# A SKU's stock counters (on hand, allocated, back-ordered) are INTEGER columns: a receipt, a count
# or an order that would take one past this is refused. No single request comes near it (a line
# carries at most 1,000,000 units); thousands of the largest ones for one SKU would.
MAX_SKU_UNITS = 2**31 - 1
# Whole numbers that reach the store (ids, line numbers, counts): what a signed 64-bit integer holds.
MAX_INTEGER = 2**63 - 1

# Codes (SKUs, order, PO and GRN numbers, customer ids, channels) name things in URL paths, so they
# hold only characters a path segment carries as they are: no '/', '?', '#', '%' or spaces.
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
MAX_CODE_LENGTH = 64

# Whole numbers typed into a form or a query string: ASCII digits only ("²" and "٣" are digits to
# str.isdigit, not to int), an optional minus, and no more digits than MAX_INTEGER has.
_WHOLE = re.compile(r"-?[0-9]{1,19}")


def time_problem(t: datetime) -> str | None:
    """What is wrong with a time, or None when it is one the product takes."""
    if t.tzinfo is None or t.utcoffset() is None:
        return "must carry a time zone, e.g. 2026-01-31T09:00:00Z"
    if not EARLIEST_TIME <= t < LATEST_TIME:  # compared as instants: no conversion that could overflow
        return f"must lie {TIME_RANGE}"
    return None


def date_problem(d: date) -> str | None:
    """What is wrong with a date, or None when it is one the product takes."""
    if not EARLIEST_DATE <= d <= LATEST_DATE:
        return f"must lie {DATE_RANGE}"
    return None


def money_problem(m: Decimal, limit: Decimal = MAX_MONEY) -> str | None:
    """What is wrong with an amount, or None: finite, not negative, at most `limit`, whole cents."""
    if not m.is_finite():
        return "must be a finite amount"
    if not Decimal(0) <= m <= limit:
        return f"must lie between 0 and {limit}"
    if m != m.quantize(Decimal("0.01")):
        return "must have at most 2 decimal places"
    return None


def integer_problem(n: int, lo: int = -MAX_INTEGER, hi: int = MAX_INTEGER) -> str | None:
    """What is wrong with a whole number, or None when it lies in [lo, hi]."""
    if not lo <= n <= hi:
        return f"must lie between {lo} and {hi}"
    return None


def code_problem(code: str) -> str | None:
    """What is wrong with a code, or None when it is one the product takes."""
    if not 1 <= len(code) <= MAX_CODE_LENGTH or not re.match(CODE_PATTERN, code):
        return f"must be 1 to {MAX_CODE_LENGTH} letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
    return None


def parse_whole(text: str) -> int | None:
    """A typed whole number (ASCII digits, at most 19 of them, an optional minus), or None."""
    text = text.strip()
    return int(text) if _WHOLE.fullmatch(text) else None
