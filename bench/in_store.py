"""Benchmarks that call the services and views directly: allocation, receipts, ETAs, queue pages, reports."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pyinstrument import Profiler
from sqlalchemy import Connection, event, select, text, update

from oms.bench.floor import allocations_of, order_sql, receive_floor
from oms.bench.generate import ETA_SKU
from oms.domain.allocation import sort_fields
from oms.domain.eta import Supply, walk_etas
from oms.engine import recompute_etas
from oms.orders.views import list_backorders
from oms.replenishment.use_cases import ReceiptLine, receive_goods
from oms.store.db import Store
from oms.store.reads import allocation_rule
from oms.store.tables import po_lines, products
from oms.store.uow import UnitOfWork

from .common import PROFILES, Result, console, env_int, pct, quick, timed, vacuum


def grn_batch(store: Store, n_skus: int, seed: int = 1) -> dict[str, int]:
    """n SKUs with waiting lines, each receiving half of its waiting units."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(products.c.sku, products.c.backordered)
            .where(products.c.backordered > 1, products.c.sku.like("SKU-%"))
            .order_by(products.c.sku)
        ).all()
    rnd = random.Random(seed)
    return {s: b // 2 for s, b in rnd.sample(rows, min(n_skus, len(rows)))}


def _in_rollback(store: Store, fn: Any) -> tuple[float, Any]:
    with store.engine.connect() as conn:
        tx = conn.begin()
        try:
            return timed(lambda: fn(conn))
        finally:
            tx.rollback()


def receipt_allocation(store: Store, kind: str, lines: int, runs: int, n_skus: int) -> list[Result]:
    """A GRN batch through receive_goods vs the floor, each run rolled back; then single-SKU receipts."""
    batch = grn_batch(store, n_skus)
    units = sum(batch.values())
    with store.engine.connect() as conn:
        fields = sort_fields(allocation_rule(conn))
    now = datetime.now(UTC)
    receipt = [ReceiptLine(s, q) for s, q in sorted(batch.items())]
    service_t: list[float] = []
    floor_t: list[float] = []
    same: bool | None = None
    allocated_rows = 0

    def service(conn: Connection) -> list[tuple[int, int]]:
        receive_goods(UnitOfWork(conn, store.config, actor="bench", now=now), "GRN-BENCH", receipt)
        return allocations_of(conn, "GRN-BENCH")

    def floor(conn: Connection) -> list[tuple[int, int]]:
        receive_floor(conn, batch, "GRN-BENCH", now, fields)
        return allocations_of(conn, "GRN-BENCH")

    for i in range(runs):
        order = [("service", service), ("floor", floor)]
        if i % 2:
            order.reverse()
        got: dict[str, list[tuple[int, int]]] = {}
        for name, fn in order:
            took, out = _in_rollback(store, fn)
            (service_t if name == "service" else floor_t).append(took)
            got[name] = out
            vacuum(store, "order_lines", "products", "allocations", "stock_movements")
        if same is None:
            same = got["service"] == got["floor"]
            allocated_rows = len(got["service"])
        console.print(f"  run {i + 1}: service {service_t[-1]:.2f} s, floor {floor_t[-1]:.2f} s")
    profile_path = PROFILES / f"{datetime.now(UTC).date()}-{kind}-receipt-allocation.html"
    _profile(store, profile_path, service)
    res = Result(
        f"receipt allocation: GRN of {len(batch):,} SKUs",
        kind,
        lines,
        service_t,
        work=allocated_rows,
        work_unit="allocations",
        floor=floor_t,
        target="<= 1.5x floor",
        note=f"{allocated_rows:,} lines allocated, {units:,} units; floor result identical: {same}",
        extra={"skus": len(batch), "allocations": allocated_rows, "units": units, "same_as_floor": same,
               "profile": str(profile_path.relative_to(PROFILES.parent.parent))},
    )  # fmt: skip
    res.met = bool(res.floor) and res.median <= 1.5 * pct(res.floor, 50)
    res.show()
    return [res, single_receipts(store, kind, lines, 10 if quick() else env_int("OMS_BENCH_SINGLE", 40))]


def _profile(store: Store, path: Path, fn: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profiler = Profiler()
    with store.engine.connect() as conn:
        tx = conn.begin()
        profiler.start()
        try:
            fn(conn)
        finally:
            profiler.stop()
            tx.rollback()
    path.write_text(profiler.output_html())
    path.with_suffix(".txt").write_text(profiler.output_text(show_all=False))


def single_receipts(store: Store, kind: str, lines: int, n: int) -> Result:
    """One SKU per GRN, one transaction each (committed), alternating with the floor on other SKUs."""
    batch = grn_batch(store, 2 * n, seed=7)
    skus = sorted(batch)
    with store.engine.connect() as conn:
        fields = sort_fields(allocation_rule(conn))
    service_t, floor_t = [], []
    run = datetime.now(UTC).strftime("%Y%m%d%H%M%S")  # GRN numbers new to a store reused across runs
    for i in range(n):
        s_sku, f_sku = skus[2 * i], skus[2 * i + 1]
        qty = max(1, min(batch[s_sku], batch[f_sku], 10))
        took, _ = timed(
            lambda: store.write(
                lambda uow: receive_goods(uow, f"GRN-S{run}-{i}", [ReceiptLine(s_sku, qty)]),  # noqa: B023
                actor="bench",
            )
        )
        service_t.append(took)
        took, _ = timed(
            lambda: store.write(
                lambda uow: receive_floor(uow.conn, {f_sku: qty}, f"GRN-F{run}-{i}", datetime.now(UTC), fields)  # noqa: B023
            )
        )
        floor_t.append(took)
    limit = 0.005 if kind == "sqlite" else 0.010
    res = Result(
        "single-SKU receipt, one per transaction",
        kind,
        lines,
        service_t,
        work=1,
        work_unit="receipts",
        floor=floor_t,
        target=f"p50 <= {limit * 1000:.0f} ms, p95 <= 50 ms",
    )
    res.met = pct(service_t, 50) <= limit and pct(service_t, 95) <= 0.050
    res.show()
    return res


def eta_recompute(store: Store, kind: str, lines: int, runs: int) -> Result:
    """recompute_etas for BENCH-ETA (10,000 waiting lines, 50 PO lines) after its first PO slips 20 days."""
    with store.engine.connect() as conn:
        fields = sort_fields(allocation_rule(conn))
        waiting = conn.execute(
            text("SELECT COUNT(*) FROM order_lines WHERE sku = :s AND backordered_qty > 0"), {"s": ETA_SKU}
        ).scalar_one()
        first_po = conn.execute(
            select(po_lines.c.id).where(po_lines.c.sku == ETA_SKU).order_by(po_lines.c.expected_date).limit(1)
        ).scalar()
    if first_po is None:
        raise RuntimeError("no PO lines for BENCH-ETA")

    def slip(conn: Connection) -> None:
        conn.execute(
            update(po_lines)
            .where(po_lines.c.id == first_po)
            .values(expected_date=datetime.now(UTC).date() + timedelta(days=60))
        )

    def service(conn: Connection) -> float:
        slip(conn)
        took, _ = timed(lambda: recompute_etas(UnitOfWork(conn, store.config, actor="bench"), [ETA_SKU]))
        return took

    def floor(conn: Connection) -> float:
        slip(conn)
        return timed(lambda: _eta_floor(conn, fields))[0]

    service_t, floor_t = [], []
    for _ in range(runs):
        service_t.append(_in_rollback(store, service)[1])
        floor_t.append(_in_rollback(store, floor)[1])
    vacuum(store, "order_lines")
    res = Result(
        f"ETA recompute: 1 SKU, {waiting:,} waiting lines, 50 PO lines",
        kind,
        lines,
        service_t,
        work=waiting,
        work_unit="lines",
        floor=floor_t,
        target="< 100 ms",
    )
    res.met = res.median < 0.100
    res.show()
    return res


def _eta_floor(conn: Connection, fields: Any) -> int:
    """The same walk over raw driver rows: one ordered read, one PO read, the changed lines written."""
    raw: Any = conn.connection.driver_connection
    ph = "?" if conn.dialect.name == "sqlite" else "%s"
    cur = raw.cursor()
    cur.execute(
        f"SELECT l.id, l.backordered_qty, l.eta, l.eta_basis FROM order_lines l WHERE l.sku = {ph} "
        f"AND l.backordered_qty > 0 ORDER BY {order_sql(fields)}",
        (ETA_SKU,),
    )
    queue = cur.fetchall()
    cur.execute(
        f"SELECT pl.expected_date, pl.qty - pl.received_qty, po.po_number FROM po_lines pl "
        f"JOIN purchase_orders po ON po.id = pl.po_id WHERE pl.sku = {ph} AND pl.open = 1 AND po.status = 'open' "
        f"AND pl.qty > pl.received_qty",
        (ETA_SKU,),
    )
    supplies = [Supply(_date(d), q, n) for d, q, n in cur.fetchall()]
    cur.execute(f"SELECT lead_time_days FROM products WHERE sku = {ph}", (ETA_SKU,))
    lead = cur.fetchone()[0]
    today = datetime.now(UTC).date()
    etas = walk_etas([q for _, q, _, _ in queue], supplies, today, lead)
    changed = [
        (e.eta.isoformat() if e.eta else None, e.basis, line_id)
        for (line_id, _, eta, basis), e in zip(queue, etas, strict=True)
        if (_date(eta), basis) != (e.eta, e.basis)
    ]
    if changed and conn.dialect.name == "postgresql":
        # One statement, as the service writes it: each UPDATE statement also runs the report
        # rollups' statement trigger, so a row-at-a-time floor would pay that per row.
        cur.execute(
            "UPDATE order_lines l SET eta = v.eta, eta_basis = v.basis "
            "FROM json_to_recordset(%s::json) AS v(eta date, basis text, id bigint) WHERE l.id = v.id",
            (json.dumps([{"eta": e, "basis": b, "id": i} for e, b, i in changed]),),
        )
    elif changed:
        cur.executemany(f"UPDATE order_lines SET eta = {ph}, eta_basis = {ph} WHERE id = {ph}", changed)
    return len(changed)


def _date(v: Any) -> Any:
    if isinstance(v, str):
        from datetime import date

        return date.fromisoformat(v)
    return v


# ---- the back-order queue page ------------------------------------------------------------------

FILTERS: dict[str, dict[str, Any]] = {
    "none": {},
    "sku": {"sku": "SKU-00001"},
    "customer": {"customer_id": None},  # filled with a customer who waits
    "channel+min_age": {"channel": "web", "min_age_days": 30},
}


def _filters(store: Store) -> dict[str, dict[str, Any]]:
    with store.engine.connect() as conn:
        cust = conn.execute(
            text(
                "SELECT customer_id FROM order_lines WHERE backordered_qty > 0 "
                "GROUP BY customer_id ORDER BY COUNT(*) DESC, customer_id LIMIT 1"
            )
        ).scalar()
    out = {k: dict(v) for k, v in FILTERS.items()}
    out["customer"]["customer_id"] = cust
    return out


def backorder_args(f: dict[str, Any], sort: str, cursor: str | None) -> dict[str, Any]:
    return {
        "sku": f.get("sku"),
        "customer_id": f.get("customer_id"),
        "order_number": None,
        "channel": f.get("channel"),
        "min_age_days": f.get("min_age_days"),
        "sort": sort,
        "limit": 50,
        "cursor": cursor,
    }


def cursor_at(store: Store, f: dict[str, Any], sort: str, page_no: int) -> tuple[str | None, bool]:
    """The cursor that opens page `page_no` (walking the pages before it); False when it has none."""
    cursor: str | None = None
    with store.engine.connect() as c:
        conn = c.execution_options(readonly=True)
        for _ in range(page_no - 1):
            out = list_backorders(conn, **backorder_args(f, sort, cursor), now=datetime.now(UTC))
            cursor = out["next_cursor"]
            if cursor is None:
                return None, False
        conn.rollback()
    return cursor, True


def queue_pages(store: Store, kind: str, lines: int, reps: int, explain_path: Path) -> list[Result]:
    """list_backorders p50/p95 per filter x sort x page (1, 200) vs its page SELECT through the raw driver."""
    results = []
    explains: list[str] = []
    for fname, f in _filters(store).items():
        for sort in ("queue", "age"):
            for page_no in (1, 200):
                cursor, exists = cursor_at(store, f, sort, page_no)
                if not exists:
                    console.print(f"  {fname}/{sort}: fewer than {page_no} pages, skipped")
                    continue
                captured: list[tuple[str, Any]] = []

                def grab(conn: Any, cur: Any, statement: str, params: Any, context: Any, many: bool) -> None:
                    captured.append((statement, params))  # noqa: B023

                samples, floor = [], []
                with store.engine.connect() as c:
                    conn = c.execution_options(readonly=True)
                    event.listen(store.engine, "before_cursor_execute", grab)
                    try:
                        list_backorders(conn, **backorder_args(f, sort, cursor), now=datetime.now(UTC))
                    finally:
                        event.remove(store.engine, "before_cursor_execute", grab)
                    conn.rollback()
                    page_sql = [(s, p) for s, p in captured if "FROM order_lines" in s and "LIMIT" in s.upper()]
                    raw: Any = conn.connection.driver_connection
                    for _ in range(reps):
                        t, _ = timed(
                            lambda: list_backorders(conn, **backorder_args(f, sort, cursor), now=datetime.now(UTC))  # noqa: B023
                        )
                        samples.append(t)
                        conn.rollback()
                        cur = raw.cursor()
                        t, _ = timed(lambda: [cur.execute(s, p).fetchall() for s, p in page_sql])  # noqa: B023
                        floor.append(t)
                        cur.close()
                    if page_no == 1 or fname == "none":
                        explains.append(_explain(conn, f"{fname} / {sort} / page {page_no}", captured))
                    conn.rollback()
                res = Result(
                    f"back-order page (store): filter={fname} sort={sort} page={page_no}",
                    kind,
                    lines,
                    samples,
                    work=1,
                    work_unit="pages",
                    floor=floor,
                    target="p95 < 5 ms",
                )
                res.met = pct(samples, 95) < 0.005
                res.show()
                results.append(res)
    explain_path.write_text("\n\n".join(explains) + "\n")
    return results


def _explain(conn: Connection, title: str, captured: list[tuple[str, Any]]) -> str:
    raw: Any = conn.connection.driver_connection
    out = [f"==== {title}"]
    for statement, params in captured:
        if not statement.lstrip().upper().startswith("SELECT") or "order_lines" not in statement:
            continue
        cur = raw.cursor()
        if conn.dialect.name == "sqlite":
            cur.execute("EXPLAIN QUERY PLAN " + statement, params)
            plan = "\n".join(f"  {r[3]}" for r in cur.fetchall())
        else:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, params)
            plan = "\n".join(f"  {r[0]}" for r in cur.fetchall())
        cur.close()
        out.append(" ".join(statement.split())[:600] + "\n" + plan)
    return "\n".join(out)


REPORT_CASES: tuple[tuple[str, str | None], ...] = (
    ("summary", None),
    ("backorders", "sku"),
    ("backorders", "customer"),
    ("backorders", "channel"),
    ("backorders", "tier"),
    ("lead-times", None),
    ("cancellations", None),
    ("fill-rate", "day"),
    ("fill-rate", "sku"),
    ("promise-accuracy", "sku"),
    ("supplier-on-time", None),
    ("metrics", None),
)


def reports_bench(store: Store, kind: str, lines: int, runs: int) -> list[Result]:
    """Every report over all time, and the /metrics figures (target < 500 ms on PostgreSQL)."""
    from oms.reports.filters import Filters
    from oms.reports.queries import run
    from oms.reports.summary import metric_figures

    out = []
    for name, group in REPORT_CASES:
        samples = []
        try:
            for _ in range(runs):
                now = datetime.now(UTC)
                if name == "metrics":
                    fn: Any = lambda c, t=now: metric_figures(c, t)  # noqa: E731
                else:
                    fn = run(name, Filters(), now, group)
                samples.append(timed(lambda: store.read(fn))[0])  # noqa: B023
        except Exception as exc:  # a report this build does not have: say so, do not stop the suite
            console.print(f"  report {name}/{group}: {type(exc).__name__}: {exc}")
            continue
        res = Result(
            f"report {name}" + (f" by {group}" if group else ""),
            kind,
            lines,
            samples,
            work=1,
            work_unit="reports",
            target="< 500 ms (PostgreSQL)",
        )
        res.met = res.median < 0.5 if kind == "postgresql" else None
        res.show()
        out.append(res)
    return out
