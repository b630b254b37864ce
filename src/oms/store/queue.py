"""The queue order in SQL: the domain's sort fields turned into ORDER BY and keyset predicates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, false, or_
from sqlalchemy.sql.elements import UnaryExpression

from oms.domain.allocation import SortField


def order_by(table: Table, fields: Sequence[SortField], reverse: bool = False) -> list[UnaryExpression[Any]]:
    """ORDER BY clauses equal to the domain's queue_sort_key for these fields."""
    out: list[UnaryExpression[Any]] = []
    for f in fields:
        col = table.c[f.attr]
        desc = f.descending != reverse
        expr = col.desc() if desc else col.asc()
        if f.nulls_last:
            expr = expr.nulls_first() if reverse else expr.nulls_last()
        out.append(expr)
    return out


def _step(col: Any, f: SortField, value: Any, later: bool) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """(strictly later-or-earlier, equal) predicates for one field; NULL sorts last where allowed.

    `value` is a Python value (keyset paging) or another row's column (counting who is ahead).
    """
    if isinstance(value, ColumnElement):
        if not f.nulls_last:
            forward = later != f.descending
            return (col > value if forward else col < value), col == value
        eq = or_(col == value, and_(col.is_(None), value.is_(None)))
        if later:
            return or_(col > value, and_(col.is_(None), value.is_not(None))), eq
        return or_(col < value, and_(col.is_not(None), value.is_(None))), eq
    eq = col.is_(None) if value is None else col == value
    if f.nulls_last:
        if value is None:
            return (false() if later else col.is_not(None)), eq
        return (or_(col > value, col.is_(None)) if later else col < value), eq
    forward = later != f.descending
    return (col > value if forward else col < value), eq


def _keyset(table: Table, fields: Sequence[SortField], values: Sequence[Any], later: bool) -> ColumnElement[bool]:
    clause: ColumnElement[bool] = false()
    for f, value in reversed(list(zip(fields, values, strict=True))):
        strict, eq = _step(table.c[f.attr], f, value, later)
        clause = or_(strict, and_(eq, clause))
    return clause


def after(table: Table, fields: Sequence[SortField], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in the order of `fields` (keyset paging, who is behind)."""
    return _keyset(table, fields, values, later=True)


def before(table: Table, fields: Sequence[SortField], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly before `values` in the order of `fields` (who is ahead)."""
    return _keyset(table, fields, values, later=False)


def before_levels(table: Table, fields: Sequence[SortField], values: Sequence[Any]) -> list[ColumnElement[bool]]:
    """`before` split into disjoint predicates: equal on the first i fields and strictly before on field i.

    Each one is an index range (an equality prefix and one bound), so counting the rows ahead of a
    line costs its position, not the length of its queue as the single OR chain does.
    """
    levels: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for f, value in zip(fields, values, strict=True):
        strict, eq = _step(table.c[f.attr], f, value, later=False)
        levels.append(and_(*equal, strict))
        equal.append(eq)
    return levels
