"""`oms report NAME`: any report as a Rich table, or as the same CSV the API gives (`--csv`)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.measure import Measurement

from oms.domain.errors import Invalid
from oms.reports import names as report_names

if TYPE_CHECKING:
    from rich.table import Table

# The choices come from report_names, not from the reports' modules (they import SQLAlchemy).
ReportName = StrEnum("ReportName", {n.replace("-", "_"): n for n in report_names.REPORTS})  # type: ignore[misc]


def report_command(
    name: Annotated[ReportName, typer.Argument(help="Which report.", show_choices=True)],
    group_by: Annotated[
        str | None,
        typer.Option(
            help="backorders: sku|customer|channel|tier; fill-rate: sku|channel|day|week; "
            "promise-accuracy: sku|channel."
        ),
    ] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Start: YYYY-MM-DD or an RFC 3339 time.")] = None,
    to: Annotated[str | None, typer.Option(help="End: YYYY-MM-DD (that whole day) or an RFC 3339 time.")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel's orders.")] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=100_000, help="backorders: how many groups, most units waiting first.")
    ] = report_names.BREAKDOWN_LIMIT,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
) -> None:
    """Print a report: summary, backorders, lead-times, cancellations, fill-rate, promise-accuracy, supplier-on-time."""
    from oms.reports.filters import filters_from
    from oms.reports.queries import run
    from oms.reports.tables import as_table, to_csv
    from oms.store.db import Store, make_engine

    report = str(name.value)
    choices = report_names.GROUP_CHOICES.get(report, ())
    if group_by is not None and group_by not in choices:
        accepted = ", ".join(choices) if choices else "none (this report has no grouping)"
        raise typer.BadParameter(f"'{group_by}' is not a grouping of {report}; accepted: {accepted}")
    try:
        f = filters_from(from_, to, channel)
    except Invalid as exc:
        raise typer.BadParameter(exc.detail) from exc
    data = Store(make_engine()).read(run(report, f, datetime.now(UTC), group_by, limit))
    columns, rows = as_table(report, data)
    if csv:
        typer.echo(to_csv(columns, rows), nl=False)
        return
    table = rich_table(report, data, columns, rows)
    console = Console()
    natural = Measurement.get(console, console.options.update(width=1000), table).maximum
    Console(width=min(max(console.width, natural), 1000)).print(table)  # wide enough that no figure is cropped


def rich_table(report: str, data: dict[str, Any], columns: list[str], rows: list[list[Any]]) -> Table:
    """The report's rows, with its total (when it has one) as a last, bold row."""
    from rich.table import Table

    from oms.reports.tables import cell, flatten

    cells = [[cell(v) for v in row] for row in rows]
    total = data.get("total")
    if isinstance(total, dict) and rows:
        flat = flatten(total)
        cells.append(["total"] + [cell(flat.get(c)) for c in columns[1:]])
    table = Table(title=report)
    for i, c in enumerate(columns):  # headers fold, figures keep their width: a value is never cut
        widest = max((len(r[i]) for r in cells), default=1)
        table.add_column(c.replace("units_by_age.", "age "), overflow="fold", min_width=min(widest, 40))
    for n, row in enumerate(cells):
        table.add_row(*row, style="bold" if isinstance(total, dict) and n == len(rows) else None)
    return table
