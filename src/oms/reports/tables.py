"""Reports as tables: the same figures as rows, for CSV (the API's `?format=csv`, the Reports page's
downloads, `oms report --csv`) and for the CLI's Rich tables.

Standard library only (and oms.csv_cells), so nothing here needs the database.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from oms import csv_cells


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level, keys joined with '.' (by_age_bucket.0-2.units)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out |= flatten(v, name + ".")
        else:
            out[name] = v
    return out


def as_table(name: str, data: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """A report's rows: the items (flattened) for listings, metric/value pairs for the summary."""
    if name == "summary":
        return ["metric", "value"], [[k, v] for k, v in flatten(data).items()]
    items: list[dict[str, Any]] = [flatten(i) for i in data["items"]]
    columns = list(items[0]) if items else _empty_columns(name, data)
    return columns, [[i.get(c) for c in columns] for i in items]


def _empty_columns(name: str, data: Mapping[str, Any]) -> list[str]:
    """The columns of a listing with no rows: its key, then the figures its total carries."""
    first = {
        "backorders": data.get("group_by", "key"),
        "fill-rate": data.get("group_by", "key"),
        "promise-accuracy": data.get("group_by", "key"),
        "supplier-on-time": "supplier",
        "cancellations": "reason",
        "lead-times": "measure",
    }[name]
    return [first, *flatten(data.get("total", {})).keys()]


def cell(v: Any) -> str:
    return "" if v is None else str(v)


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The rows as CSV; cells a spreadsheet would run as formulas are escaped (oms.csv_cells)."""
    buf = io.StringIO()
    w = csv_cells.Writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow(row)
    return buf.getvalue()
