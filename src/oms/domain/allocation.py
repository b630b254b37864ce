"""The allocation rule and the walk of a SKU's queue (PRODUCT.md rules 2, 4, 5).

A rule is data: each key maps to one sort field with a fixed direction. The store turns the same
fields into ORDER BY clauses, so the queue the dashboard shows is the order the engine allocates in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from oms.domain.errors import Invalid


class RuleKey(StrEnum):
    PRIORITY = "priority"  # manual boost, high first
    CUSTOMER_TIER = "customer_tier"  # platinum first
    ORDER_VALUE = "order_value"  # high first
    PLACED_AT = "placed_at"  # old first (FIFO)
    PROMISED_DATE = "promised_date"  # earliest first promised ETA first; never promised last


class Tier(StrEnum):
    STANDARD = "standard"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"

    @property
    def rank(self) -> int:
        return list(Tier).index(self)


@dataclass(frozen=True)
class SortField:
    """One column of the queue order. `attr` names a QueueLine attribute and a queue column."""

    attr: str
    descending: bool = False
    nulls_last: bool = False


KEY_FIELDS: dict[RuleKey, SortField] = {
    RuleKey.PRIORITY: SortField("priority", descending=True),
    RuleKey.CUSTOMER_TIER: SortField("tier_rank", descending=True),
    RuleKey.ORDER_VALUE: SortField("order_value", descending=True),
    RuleKey.PLACED_AT: SortField("placed_at"),
    RuleKey.PROMISED_DATE: SortField("promised_date", nulls_last=True),
}
TIE_BREAK = (SortField("placed_at"), SortField("order_number"), SortField("line_no"))
DEFAULT_RULE: tuple[RuleKey, ...] = (RuleKey.PRIORITY, RuleKey.PLACED_AT)


def parse_rule(keys: Sequence[str]) -> tuple[RuleKey, ...]:
    """Validate a rule given as key names: known keys, each once, at least one."""
    known = [k.value for k in RuleKey]
    bad = list(dict.fromkeys(k for k in keys if k not in known))
    dupes = sorted({k for k in keys if list(keys).count(k) > 1 and k in known})
    if not keys or bad or dupes:
        errors = [{"field": "keys", "value": k, "reason": "unknown key"} for k in bad]
        errors += [{"field": "keys", "value": k, "reason": "repeated key"} for k in dupes]
        raise Invalid(f"An allocation rule is a non-empty list of distinct keys from {known}.", errors)
    return tuple(RuleKey(k) for k in keys)


def sort_fields(rule: Sequence[RuleKey]) -> list[SortField]:
    """The rule's fields followed by the tie-break, each column once: a total order."""
    fields: list[SortField] = []
    for f in [KEY_FIELDS[k] for k in rule] + list(TIE_BREAK):
        if all(f.attr != g.attr for g in fields):
            fields.append(f)
    return fields


@dataclass(frozen=True)
class QueueLine:
    """A pending back-ordered line as the queue sees it."""

    line_id: int
    order_number: str
    line_no: int
    sku: str
    backordered_qty: int
    priority: int
    tier_rank: int
    order_value: Decimal
    placed_at: datetime
    promised_date: date | None


def _field_key(f: SortField, value: Any) -> tuple[Any, ...]:
    if f.nulls_last:
        return (value is None, value)
    if f.descending:  # only numeric columns sort descending
        return (-value,)
    return (value,)


class Waiting(Protocol):
    """A waiting line as the walk sees it (QueueLine, or a use case's own copy of a line)."""

    @property
    def backordered_qty(self) -> int: ...


W = TypeVar("W", bound=Waiting)


def queue_sort_key(rule: Sequence[RuleKey]) -> Callable[[Any], tuple[Any, ...]]:
    """A Python sort key equal to the store's ORDER BY for this rule (on any object with the sort fields)."""
    fields = sort_fields(rule)

    def key(line: Any) -> tuple[Any, ...]:
        out: tuple[Any, ...] = ()
        for f in fields:
            out += _field_key(f, getattr(line, f.attr))
        return out

    return key


def order_queue(rule: Sequence[RuleKey], lines: Iterable[QueueLine]) -> list[QueueLine]:
    return sorted(lines, key=queue_sort_key(rule))


@dataclass(frozen=True)
class Allocation(Generic[W]):
    line: W
    qty: int


def plan_allocation(available: int, queue: Iterable[W]) -> list[Allocation[W]]:
    """Give `available` units to the queue, already in rule order, until they run out.

    The head of the queue is served first and a line may be filled in part; nothing is skipped,
    so no later line gets units while an earlier one still waits.
    """
    plan: list[Allocation[W]] = []
    left = available
    for line in queue:
        if left <= 0:
            break
        qty = min(left, line.backordered_qty)
        if qty > 0:
            plan.append(Allocation(line, qty))
            left -= qty
    return plan
