"""Timing, results and stores shared by the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from oms.store.db import Store, make_engine

console = Console()
ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
PROFILES = ROOT / "profiles"
PG_BASE = os.environ.get("OMS_BENCH_PG", "postgresql://postgres@127.0.0.1:54329")
SQLITE_DIR = Path(os.environ.get("OMS_BENCH_SQLITE_DIR", "/tmp/oms-bench"))


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def quick() -> bool:
    return os.environ.get("OMS_BENCH_QUICK", "") not in ("", "0")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def pct(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


@dataclass
class Result:
    operation: str
    store: str
    lines: int
    samples: list[float]
    unit: str = "s"  # what one sample times
    work: float = 1.0  # units of work per sample, for the rate
    work_unit: str = "ops"
    floor: list[float] = field(default_factory=list)
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "operation": self.operation,
            "store": self.store,
            "lines": self.lines,
            "runs": len(self.samples),
            "median_s": round(self.median, 6),
            "p50_ms": round(pct(self.samples, 50) * 1000, 3),
            "p95_ms": round(pct(self.samples, 95) * 1000, 3),
            "rate": round(self.work / self.median, 1) if self.median else None,
            "rate_unit": f"{self.work_unit}/s",
        }
        if self.floor:
            fm = statistics.median(self.floor)
            out |= {
                "floor_median_s": round(fm, 6),
                "floor_p95_ms": round(pct(self.floor, 95) * 1000, 3),
                "ratio": round(self.median / fm, 2) if fm else None,
            }
        out |= {"target": self.target, "met": self.met, "note": self.note} | self.extra
        return out

    def show(self) -> None:
        d = self.as_dict()
        ratio = f"  ratio {d['ratio']}x floor" if "ratio" in d else ""
        met = "" if self.met is None else ("  [green]met[/]" if self.met else "  [red]missed[/]")
        console.print(
            f"[bold]{self.operation}[/] | {self.store} | {self.lines:,} lines | median {d['median_s'] * 1000:.1f} ms "
            f"p95 {d['p95_ms']:.1f} ms | {d['rate']:,} {d['rate_unit']}{ratio}  ({d['runs']} runs){met}"
            + (f"  {self.note}" if self.note else "")
        )


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
        "load_avg_at_start": os.getloadavg(),
    }


def write_results(store_kind: str, results: list[dict[str, Any]], meta: dict[str, Any], tag: str | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    # OMS_BENCH_TAG names a partial run (some phases), so it does not overwrite the full run's file;
    # a phase with a file of its own (writepath) passes its name.
    tag = os.environ.get("OMS_BENCH_TAG", "") if tag is None else tag
    path = RESULTS / f"{datetime.now(UTC).date().isoformat()}-{store_kind}{'-' + tag if tag else ''}.json"
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str) + "\n")
    return path


def fresh_store(kind: str, name: str) -> tuple[Store, str]:
    """An empty store: a new PostgreSQL database, or a new SQLite file."""
    if kind == "sqlite":
        SQLITE_DIR.mkdir(parents=True, exist_ok=True)
        path = SQLITE_DIR / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {name}")
        url = f"{PG_BASE}/{name}"
    return Store(make_engine(url)), url


def existing_store(kind: str, name: str) -> tuple[Store, str]:
    """The store an earlier run generated under this name."""
    url = f"sqlite:///{SQLITE_DIR / name}.db" if kind == "sqlite" else f"{PG_BASE}/{name}"
    return Store(make_engine(url)), url


def vacuum(store: Store, *tables: str) -> None:
    """Clear the dead rows a rolled-back run leaves (PostgreSQL), untimed, so runs stay comparable."""
    if store.dialect != "postgresql":
        return
    with store.engine.connect() as conn:
        c = conn.execution_options(isolation_level="AUTOCOMMIT")
        c.exec_driver_sql(f"VACUUM ANALYZE {', '.join(tables)}")
