"""`oms bench`: load benchmark data."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

bench_app = typer.Typer(help="Benchmarks: load a large realistic store.", no_args_is_help=True)


@bench_app.command("generate")
def generate_cmd(
    lines: Annotated[int, typer.Option(help="Waiting back-order lines in all.")] = 1_000_000,
    skus: Annotated[int, typer.Option(help="Products (popularity is skewed).")] = 10_000,
    customers: Annotated[int, typer.Option(help="Customers, of every tier.")] = 100_000,
    eta_lines: Annotated[int, typer.Option(help="Waiting lines of the BENCH-ETA SKU.")] = 10_000,
    seed: int = 42,
    url: Annotated[str | None, typer.Option(help="The store (default: OMS_DATABASE_URL).")] = None,
) -> None:
    """Migrate an empty store and fill it with waiting lines, customers, products and open POs."""
    from oms.bench.generate import Spec, generate
    from oms.store.db import Store, make_engine
    from oms.store.migrate import upgrade

    console = Console(stderr=True)
    upgrade(url)
    store = Store(make_engine(url))
    started = time.perf_counter()
    try:
        counts = generate(
            store, Spec(lines=lines, skus=skus, customers=customers, eta_lines=eta_lines, seed=seed), console
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        store.engine.dispose()
    took = time.perf_counter() - started
    console.print(", ".join(f"{n:,} {t}" for t, n in counts.items()) + f" in {took:.1f} s")
