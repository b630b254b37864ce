"""Keyset pages: an opaque cursor holding the last row's sort values, never OFFSET, never a COUNT,
so page 200 costs what page 1 costs."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    select,
    union_all,
)

from oms.domain import bounds
from oms.domain.allocation import SortField
from oms.domain.errors import Invalid
from oms.store.queue import after, after_levels, order_by
from oms.store.types import Money as MoneyType
from oms.store.types import UTCDateTime


def _fingerprint(fields: Sequence[SortField]) -> str:
    """Which ordering a cursor belongs to: a cursor from another ordering is refused, not misread."""
    return ",".join(f"{f.attr}{'-' if f.descending else '+'}" for f in fields)


def _python_type(table: Any, attr: str) -> type:
    col_type = table.c[attr].type
    if isinstance(col_type, MoneyType):
        return Decimal
    if isinstance(col_type, UTCDateTime):
        return datetime
    found: type = col_type.python_type
    return found


def encode_cursor(values: Sequence[Any], fields: Sequence[SortField]) -> str:
    def enc(v: Any) -> Any:
        if isinstance(v, datetime):
            return {"t": v.isoformat()}
        if isinstance(v, date):
            return {"d": v.isoformat()}
        if isinstance(v, Decimal):
            return {"m": str(v)}
        return v

    raw = [_fingerprint(fields), [enc(v) for v in values]]
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, table: Any, fields: Sequence[SortField]) -> list[Any]:
    """The sort values a cursor carries, each checked against its column's type."""

    def dec(v: Any) -> Any:
        if isinstance(v, dict):
            if "t" in v:
                return datetime.fromisoformat(v["t"])
            if "d" in v:
                return date.fromisoformat(v["d"])
            if "m" in v:
                return Decimal(v["m"])
        return v

    try:
        fingerprint, raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if fingerprint != _fingerprint(fields) or not isinstance(raw, list) or len(raw) != len(fields):
            raise ValueError("cursor of another ordering")
        values = [dec(v) for v in raw]
        for f, v in zip(fields, values, strict=True):
            expected = _python_type(table, f.attr)
            if v is None and f.nulls_last:
                continue
            if type(v) is not expected:
                raise ValueError(f"{f.attr} is not a {expected.__name__}")
            problem = _cursor_value_problem(v)
            if problem is not None:
                raise ValueError(f"{f.attr} {problem}")
        return values
    except (ValueError, TypeError, KeyError, ArithmeticError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid(
            "The cursor is not one this listing gave out for this ordering (the allocation rule may have "
            "changed). Pass next_cursor from the previous page unchanged, or start again without a cursor.",
            [{"field": "cursor", "reason": "invalid cursor"}],
        ) from exc


def _cursor_value_problem(v: Any) -> str | None:
    """A cursor's value checked as the API's schemas check what they take (oms.domain.bounds)."""
    if isinstance(v, datetime):
        return bounds.time_problem(v)
    if isinstance(v, date):
        return bounds.date_problem(v)
    if isinstance(v, Decimal):
        return bounds.money_problem(v)
    if isinstance(v, int):
        return bounds.integer_problem(v)
    if isinstance(v, str) and "\x00" in v:  # PostgreSQL refuses NUL in text
        return "contains a NUL character"
    return None


def page(
    conn: Connection,
    q: Select[Any],
    table: Any,
    fields: list[SortField],
    limit: int,
    cursor: str | None,
    ranges: bool = False,
) -> tuple[list[Any], str | None]:
    """One page in `fields` order after the cursor's row.

    `ranges`: read the rows after the cursor as disjoint index ranges, each with its own ORDER BY and
    LIMIT, merged (queue.after_levels), for an order with several fields that an index serves.
    """
    ob = order_by(table, fields)
    if cursor and ranges and len(fields) > 1:
        levels = after_levels(table, fields, decode_cursor(cursor, table, fields))
        parts = [q.where(level).order_by(*ob).limit(limit + 1).subquery() for level in levels]
        if not parts:
            return [], None
        merged = parts[0] if len(parts) == 1 else union_all(*[select(p) for p in parts]).subquery()
        q = select(merged)
        ob = order_by(merged, fields)
    elif cursor:
        q = q.where(after(table, fields, decode_cursor(cursor, table, fields)))
    rows: list[Any] = list(conn.execute(q.order_by(*ob).limit(limit + 1)))
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        nxt = encode_cursor([getattr(last, f.attr) for f in fields], fields)
    return rows, nxt
