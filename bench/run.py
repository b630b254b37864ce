"""Run the benchmark suite: `make bench`, or `python -m bench.run` with a PostgreSQL at OMS_BENCH_PG.

Sizes (environment): OMS_BENCH_LINES (1,000,000), OMS_BENCH_SKUS (10,000), OMS_BENCH_CUSTOMERS
(100,000), OMS_BENCH_GRN_SKUS (SKUs in the receipt batch), OMS_BENCH_RUNS (5), OMS_BENCH_STORES
(sqlite,postgresql), OMS_BENCH_QUICK=1 for a small run in a minute or two. OMS_BENCH_PHASES picks
phases (a comma list of allocation,eta,pages,reports,http,intake,writepath); OMS_BENCH_TAG suffixes a
partial run's results file. Every store is also measured at a tenth of the size, for the server's memory
at two queue sizes. The writepath phase (bench/write_path.py) runs on a small fresh store of its own, so
`OMS_BENCH_PHASES=writepath` generates no large store; its results go to <date>-<store>-writepath.json.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from oms.bench.generate import Spec, generate
from oms.store.migrate import upgrade

from . import in_store, over_http, write_path
from .common import RESULTS, Result, console, env_int, existing_store, fresh_store, machine, quick, write_results

PHASES = "allocation,eta,pages,reports,http,intake," + write_path.PHASE


def wanted_phases() -> set[str]:
    return {p.strip() for p in os.environ.get("OMS_BENCH_PHASES", PHASES).split(",") if p.strip()}


def sizes() -> tuple[int, int, int]:
    if quick():
        return (
            env_int("OMS_BENCH_LINES", 50_000),
            env_int("OMS_BENCH_SKUS", 1_000),
            env_int("OMS_BENCH_CUSTOMERS", 5_000),
        )
    return (
        env_int("OMS_BENCH_LINES", 1_000_000),
        env_int("OMS_BENCH_SKUS", 10_000),
        env_int("OMS_BENCH_CUSTOMERS", 100_000),
    )


def one_size(kind: str, lines: int, skus: int, customers: int, full: bool) -> tuple[list[Result], dict[str, Any]]:
    """Generate a store of this size and run the suite on it (`full`: everything; else HTTP and memory)."""
    runs = env_int("OMS_BENCH_RUNS", 3 if quick() else 5)
    reps = 10 if quick() else env_int("OMS_BENCH_REPS", 20)
    grn = env_int("OMS_BENCH_GRN_SKUS", 100 if quick() else 400)
    seconds = 4.0 if quick() else 12.0
    clients = env_int("OMS_BENCH_CLIENTS", 4)
    name = "oms_bench" if full else "oms_bench_small"
    info: dict[str, Any] = {}
    if os.environ.get("OMS_BENCH_REUSE"):  # the stores of an earlier run, brought up to the current schema
        store, url = existing_store(kind, name)
        upgrade(url)
    else:
        store, url = fresh_store(kind, name)
        upgrade(url)
        eta_lines = min(10_000, lines // 10)
        took, counts = in_store.timed(
            lambda: generate(store, Spec(lines=lines, skus=skus, customers=customers, eta_lines=eta_lines), console)
        )
        console.print(
            f"[bold]{kind}[/]: generated {lines:,} waiting lines in {took:.1f} s ({lines / took:,.0f} lines/s)"
        )
        info |= {"generate_s": round(took, 1), "rows": counts}
    results: list[Result] = []
    errors: list[str] = []
    token = over_http.admin_token(store)
    wanted = wanted_phases()

    def phase(name: str, fn: Any) -> Any:
        # One failing phase (a schema changed under the run, a server that did not start) must not
        # lose the figures of the others.
        if name not in wanted:
            return None
        try:
            return fn()
        except Exception as exc:
            console.print(f"[red]{name} failed[/]: {type(exc).__name__}: {str(exc)[:300]}")
            errors.append(f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
            return None

    if full:
        results += phase("allocation", lambda: in_store.receipt_allocation(store, kind, lines, runs, grn)) or []
        results += phase("eta", lambda: [in_store.eta_recompute(store, kind, lines, max(runs, 5))]) or []
        explain = RESULTS / f"{datetime.now(UTC).date()}-{kind}-explain.txt"
        results += phase("pages", lambda: in_store.queue_pages(store, kind, lines, reps, explain)) or []
        info["explain"] = str(explain.relative_to(RESULTS.parent.parent))
        results += phase("reports", lambda: in_store.reports_bench(store, kind, lines, max(3, runs))) or []
    got = phase("http", lambda: over_http.http_reads_and_receipts(store, url, kind, lines, token, reps, grn))
    if got:
        results += got[0]
        info["peak_rss_mb"] = got[1]
    if full:
        results += phase("intake", lambda: over_http.intake(store, url, kind, lines, seconds, clients, token)) or []
    info["errors"] = errors
    store.engine.dispose()
    return results, info


def main() -> None:
    stores = [s.strip() for s in os.environ.get("OMS_BENCH_STORES", "sqlite,postgresql").split(",") if s.strip()]
    lines, skus, customers = sizes()
    started = time.monotonic()
    wanted = wanted_phases()
    if write_path.PHASE in wanted:  # a small fresh store of its own per store kind, before any generation
        write_path.run_stores(stores)
    if not wanted - {write_path.PHASE}:
        console.print(f"benchmarks done in {time.monotonic() - started:.0f} s")
        return
    for kind in stores:
        meta: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(),
            "machine": machine(),
            "store": kind,
            "size": {"lines": lines, "skus": skus, "customers": customers},
            "quick": quick(),
        }
        small, small_info = one_size(kind, lines // 10, max(100, skus // 10), max(1000, customers // 10), full=False)
        big, big_info = one_size(kind, lines, skus, customers, full=True)
        meta["memory"] = {
            "peak_rss_mb": {str(lines // 10): small_info.get("peak_rss_mb"), str(lines): big_info.get("peak_rss_mb")},
            "growth": round(big_info["peak_rss_mb"] / small_info["peak_rss_mb"], 2)
            if big_info.get("peak_rss_mb") and small_info.get("peak_rss_mb")
            else None,
            "target": "flat as the queue grows 10x",
        }
        meta["generate"] = {"small": small_info, "big": big_info}
        path = write_results(kind, [r.as_dict() for r in small + big], meta)
        console.print(f"[bold]{kind}[/]: peak server RSS {meta['memory']['peak_rss_mb']} MB; results in {path}")
    console.print(f"benchmarks done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
