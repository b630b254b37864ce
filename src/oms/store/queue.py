"""The queue order in SQL: the domain's sort fields turned into ORDER BY and keyset predicates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Table, and_, false, or_
from sqlalchemy.sql.elements import UnaryExpression

from oms.domain.allocation import SortField


def order_by(table: FromClause, fields: Sequence[SortField], reverse: bool = False) -> list[UnaryExpression[Any]]:
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


def after_levels(table: Table, fields: Sequence[SortField], values: Sequence[Any]) -> list[ColumnElement[bool]]:
    """`after` split into disjoint index ranges, listed in the order their rows come in the queue.

    The first differs from `values` only on the last field, the last is strictly after on the first
    field. A keyset page reads each range through the index with its own LIMIT and merges them: the
    single OR chain bounds no index range, so on PostgreSQL page 200 scanned the 10,000 rows before it.
    """
    levels: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for f, value in zip(fields, values, strict=True):
        if f.nulls_last and value is None:  # nothing sorts after NULL on this field
            equal.append(table.c[f.attr].is_(None))
            continue
        strict, eq = _step(table.c[f.attr], f, value, later=True)
        levels.append(and_(*equal, strict))
        equal.append(eq)
    return levels[::-1]


def level_pair_guard(
    me: FromClause, prev: FromClause, fields: Sequence[SortField], i: int, j: int
) -> list[ColumnElement[bool]]:
    """When the range "before `me`, level i" can meet "after `prev`, level j" (prev before me).

    Conditions on the two rows alone: equal on the fields before min(i, j), and `me` strictly after
    `prev` on that field when i != j. For each pair only the 2n - 1 meetings that the gap between the
    rows is made of pass, so the database skips the others before reading the index (a range like
    "priority > 0 AND priority = 0" would otherwise be scanned and filtered by SQLite).
    """
    k = min(i, j)
    out: list[ColumnElement[bool]] = [me.c[f.attr].is_not_distinct_from(prev.c[f.attr]) for f in fields[:k]]
    if i != j:
        f = fields[k]
        out.append(_step(me.c[f.attr], f, prev.c[f.attr], later=True)[0])
    return out
