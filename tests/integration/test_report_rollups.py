"""The report rollups (kept by triggers) stay exactly equal to a recount, after random operations, on both stores.

Each seed writes a random history through the services (orders with client-set and current
placement times, receipts, stock counts, partial and whole cancels, dispatches, tier changes); then
(1) every rollup equals a from-scratch recount of the order lines, and (2) every report that reads
the rollups gives the same figures as its line-by-line path (the breakdowns by SKU and customer
also when cut to their first two groups). A period bounded one microsecond off
midnight takes the line-by-line path; the history's times are whole minutes, so such a period holds
the same lines as its midnight twin.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import BigInteger, Connection, event, func, select, text, type_coerce

from oms.catalog import use_cases as catalog
from oms.domain.allocation import Tier
from oms.domain.errors import DomainError
from oms.fulfillment import use_cases as fulfillment
from oms.orders import use_cases as orders
from oms.replenishment import use_cases as replenishment
from oms.reports import rollups
from oms.reports.backorders import TOP_FROM_ROLLUPS, pending_backorders
from oms.reports.cancellations import cancellations
from oms.reports.filters import Filters, aligned, whole_hours
from oms.reports.queries import run
from oms.reports.service_levels import fill_rate
from oms.reports.summary import summary
from oms.reports.waiting import age_cells, by_age_bucket
from oms.store.db import Store
from oms.store.tables import order_lines, report_waiting_customer_rollup, shipments
from oms.store.uow import UnitOfWork as Ctx

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
D0 = datetime(2026, 5, 4, tzinfo=UTC)  # T0's midnight: periods in whole days
SKUS = {"A": "10.00", "B": "4.25", "C": "2.50", "D": "99.99"}
CUSTOMERS = ("K1", "K2", "K3", "K4")
CHANNELS = ("web", "pos", "app")
TIERS = list(Tier)
TINY = timedelta(microseconds=1)


def random_history(store: Store, seed: int, steps: int) -> datetime:
    """Write `steps` random operations, each at a later whole minute; returns the last time."""
    rnd = random.Random(seed)
    now = T0

    def do(step: Callable[[Ctx], Any]) -> Any:
        try:
            return store.write(step, actor="test", now=now)
        except DomainError:
            return None  # refused: nothing stored

    for sku, price in SKUS.items():
        do(lambda ctx, s=sku, p=price: catalog.put_product(ctx, catalog.ProductSpec(s, s, Decimal(p), 5)))
    tiers: dict[str, Tier] = {}

    def set_tier(cid: str, tier: Tier) -> None:
        do(lambda ctx: catalog.put_customer(ctx, catalog.CustomerSpec(cid, cid, f"{cid}@x.test", tier)))
        tiers[cid] = tier

    for cid in CUSTOMERS:
        set_tier(cid, rnd.choice(TIERS))
    for sku in SKUS:
        do(lambda ctx, s=sku: catalog.adjust_stock(ctx, s, rnd.randint(0, 6), "opening count"))
    placed: list[str] = []
    for n in range(steps):
        now += timedelta(minutes=rnd.choice((1, 7, 45, 180, 600, 1440, 2 * 1440)))
        op = rnd.choices(("place", "receive", "adjust", "cancel", "advance", "tier"), (5, 3, 1, 2, 3, 2))[0]
        if op == "place":
            number = f"R{seed}-{n}"
            lines = [orders.NewLine(s, rnd.randint(1, 6)) for s in rnd.sample(sorted(SKUS), rnd.randint(1, 3))]
            at = now - timedelta(days=rnd.randint(0, 20), minutes=rnd.randint(0, 1439)) if rnd.random() < 0.3 else None
            cmd = orders.PlaceOrder(number, rnd.choice(CHANNELS), rnd.choice(CUSTOMERS), lines, placed_at=at)
            if do(lambda ctx, c=cmd: orders.place_order(ctx, c)) is not None:
                placed.append(number)
        elif op == "receive":
            got = [replenishment.ReceiptLine(s, rnd.randint(1, 8)) for s in rnd.sample(sorted(SKUS), rnd.randint(1, 2))]
            do(lambda ctx, g=got, k=f"G{seed}-{n}": replenishment.receive_goods(ctx, k, g))
        elif op == "adjust":
            do(lambda ctx, s=rnd.choice(sorted(SKUS)), d=rnd.randint(-2, 4): catalog.adjust_stock(ctx, s, d, "count"))
        elif op == "cancel" and placed:
            number = rnd.choice(placed)
            some = None if rnd.random() < 0.4 else [(1, rnd.randint(1, 3))]
            do(lambda ctx, o=number, s=some: orders.cancel_order(ctx, o, rnd.choice(("customer asked", "aged")), s))
        elif op == "advance":
            ids = store.read(
                lambda c: list(c.scalars(select(shipments.c.id).where(shipments.c.status != "dispatched")))
            )
            if ids:
                sid = rnd.choice(ids)
                do(lambda ctx, i=sid: fulfillment.advance_shipment(ctx, i, "DHL", f"T{i}"))
        elif op == "tier":
            cid = rnd.choice(CUSTOMERS)
            set_tier(cid, rnd.choice([t for t in TIERS if t != tiers[cid]]))
    return now


def unaligned(f: Filters) -> Filters:
    """The same period, bounded a microsecond before midnight: the reports count it line by line."""
    start = (f.start or datetime(2000, 1, 1, tzinfo=UTC)) - TINY
    return Filters(start, None if f.end is None else f.end - TINY, f.channel)


def figures(store: Store, f: Filters, now: datetime) -> dict[str, Any]:
    def read(conn: Any) -> dict[str, Any]:
        return {
            "summary": summary(conn, f, now),
            **{f"backorders/{g}": pending_backorders(conn, f, now, g) for g in ("channel", "tier")},
            # Without a period, SKUs and customers are ranked from the waiting rollups (0010).
            **{
                f"backorders/{g}/{n}": pending_backorders(conn, f, now, g, n)
                for g in ("sku", "customer")
                for n in (2, 100)
            },
            **{f"fill/{g}": fill_rate(conn, f, g) for g in ("day", "week", "channel")},
            "cancellations": cancellations(conn, f),
            "metrics-age": by_age_bucket(age_cells(conn, f, now)),
        }

    return store.read(read)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollups_equal_a_recount_and_reports_agree_with_the_line_by_line_path(store: Store, seed: int) -> None:
    last = random_history(store, seed, steps=45)
    counted = store.read(rollups.recount)
    assert sum(len(v) for v in counted.values()) > 10  # the history wrote lines of several days and tiers
    assert store.read(rollups.current) == counted  # unfolded: a key's figures are the sum of its rows
    n_lines = store.read(lambda c: c.scalar(select(text("count(*)")).select_from(order_lines)))
    assert n_lines >= 15
    cases = [
        (now, f)
        for now in (last + timedelta(hours=5, minutes=17), last + timedelta(days=9))
        for f in (
            Filters(),
            Filters(channel="web"),
            Filters(D0 + timedelta(days=3), D0 + timedelta(days=12)),
            Filters(D0 - timedelta(days=10), D0 + timedelta(days=20), "pos"),
        )
    ]
    unfolded = {(now, f): figures(store, f, now) for now, f in cases}  # PostgreSQL: every write's deltas
    rollups.fold_rollups(store)
    assert store.read(rollups.current) == counted
    for now, f in cases:
        assert aligned(f) and not whole_hours(unaligned(f))
        assert figures(store, f, now) == unfolded[now, f] == figures(store, unaligned(f), now), (f, now)
    fast = store.read(lambda c: fill_rate(c, Filters(), "sku"))
    slow = store.read(lambda c: fill_rate(c, unaligned(Filters()), "sku"))
    assert fast == slow and len(fast["items"]) == len(SKUS)


def test_postgresql_writers_append_deltas_that_a_fold_sums_into_one_row_per_key(store: Store) -> None:
    random_history(store, 7, steps=20)
    before = store.read(rollups.current)
    if store.dialect == "postgresql":
        assert store.read(lambda c: c.scalar(text("SELECT count(*) FROM report_pending_rollup WHERE delta = 1"))) > 0
    folded = rollups.fold_rollups(store)
    if store.dialect == "postgresql":
        assert folded > 0
    assert rollups.fold_rollups(store) == 0  # nothing left to fold
    assert store.read(rollups.current) == before == store.read(rollups.recount)
    for name, keys in rollups.KEYS.items():
        dupes = store.read(
            lambda c, n=name, k=keys: c.scalar(
                text(f"SELECT count(*) FROM (SELECT 1 FROM {n} GROUP BY {', '.join(k)} HAVING count(*) > 1) x")
            )
        )
        assert dupes == 0, name
        assert store.read(lambda c, n=name: c.scalar(text(f"SELECT count(*) FROM {n} WHERE delta = 1"))) == 0


def test_ranking_from_folded_rows_and_unfolded_deltas_equals_grouping_every_row(store: Store) -> None:
    """`rollups.ranked` reads the folded rows' top and sums only keys with delta rows (PostgreSQL
    writers append those until the worker folds them): it must rank exactly as grouping every row."""
    random_history(store, 11, steps=25)
    rollups.fold_rollups(store)
    random_history(store, 12, steps=25)  # more writes: fresh delta rows on PostgreSQL, not folded
    c = report_waiting_customer_rollup
    if store.dialect == "postgresql":
        assert store.read(lambda conn: conn.scalar(select(func.count()).where(c.c.delta == 1))) > 0
    cents = type_coerce(c.c.value, BigInteger)  # the column's integer cents, as `ranked` gives them
    for channel in ("", "web"):
        where = [c.c.channel == channel]
        grouped = store.read(
            lambda conn, w=where: [
                (r[0], int(r[1]), int(r[2]), int(r[3]))
                for r in conn.execute(
                    select(c.c.customer_id, func.sum(c.c.lines), func.sum(c.c.units), func.sum(cents))
                    .where(*w)
                    .group_by(c.c.customer_id)
                    .having(func.sum(c.c.lines) > 0)
                    .order_by(func.sum(c.c.units).desc(), c.c.customer_id)
                )
            ]
        )
        assert len(grouped) >= (2 if channel == "" else 1)
        for limit in (1, 2, 10):
            got = store.read(lambda conn, w=where, n=limit: rollups.ranked(conn, c, "customer_id", w, n))
            assert got == (len(grouped), grouped[:limit]), (channel, limit)


def test_folding_while_writers_append_and_reports_read_keeps_one_folded_row_per_key(store: Store) -> None:
    """Two folders (PostgreSQL) run while writers append deltas and reports read: the sums stay
    exact, and no key ever gets two folded rows (the advisory try-lock lets one transaction fold a
    table at a time)."""
    random_history(store, 21, steps=10)
    now = T0 + timedelta(days=40)
    rnd = random.Random(22)
    batches = [
        [
            orders.PlaceOrder(
                f"F{w}-{i}",
                rnd.choice(CHANNELS),
                rnd.choice(CUSTOMERS),
                [orders.NewLine(s, rnd.randint(1, 4)) for s in rnd.sample(sorted(SKUS), 2)],
            )
            for i in range(12)
        ]
        for w in range(3)
    ]

    def write(cmds: list[orders.PlaceOrder]) -> int:
        for k, cmd in enumerate(cmds):
            store.write(lambda uow, c=cmd: orders.place_order(uow, c), actor="test", now=now)
            if k % 3 == 2:
                got = [replenishment.ReceiptLine(s, 3) for s in sorted(SKUS)]
                store.write(
                    lambda uow, g=got, n=f"FG-{cmd.order_number}": replenishment.receive_goods(uow, n, g),
                    actor="test",
                    now=now,
                )
        return len(cmds)

    def read_and_fold(n: int) -> int:
        for _ in range(n):
            for g in ("sku", "customer"):
                store.read(run("backorders", Filters(), now, g, 2))
            rollups.fold_rollups(store)
        return n

    with ThreadPoolExecutor(5) as pool:
        done = [pool.submit(write, b) for b in batches] + [pool.submit(read_and_fold, 12) for _ in range(2)]
        assert sum(f.result(timeout=300) for f in done) == 3 * 12 + 2 * 12
    for name, keys in rollups.KEYS.items():
        twice = store.read(
            lambda c, n=name, k=keys: c.scalar(
                text(
                    f"SELECT count(*) FROM (SELECT 1 FROM {n} WHERE delta = 0 GROUP BY {', '.join(k)}"
                    " HAVING count(*) > 1) x"
                )
            )
        )
        assert twice == 0, name
    assert store.read(rollups.current) == store.read(rollups.recount)
    rollups.fold_rollups(store)
    assert store.read(rollups.current) == store.read(rollups.recount)


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)  # SQLite adds into one row per key
def test_a_second_folder_does_not_fold_a_table_another_is_folding(store: Store) -> None:
    """Without the advisory lock, B would fold the deltas written after A's fold began into a second
    folded row for the same key (SKIP LOCKED passes over A's rows), and `ranked` would miscount."""
    random_history(store, 31, steps=15)
    table = "report_waiting_customer_rollup"
    more = orders.PlaceOrder("FOLD-LATE", "web", "K1", [orders.NewLine("A", 40)])
    with store.engine.connect() as a:
        tx = a.begin()
        rollups.fold(a, table)  # A holds its rows and the table's fold lock until it commits
        store.write(lambda uow: orders.place_order(uow, more), actor="test", now=T0 + timedelta(days=60))
        store.write(lambda uow: rollups.fold(uow.conn, table))  # B
        tx.commit()
    twice = store.read(
        lambda c: c.scalar(
            text(
                f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE delta = 0 GROUP BY customer_id, channel"
                " HAVING count(*) > 1) x"
            )
        )
    )
    assert twice == 0
    assert store.read(lambda c: c.scalar(text(f"SELECT count(*) FROM {table} WHERE delta = 1"))) > 0  # left for later
    assert store.read(rollups.current) == store.read(rollups.recount)
    rollups.fold_rollups(store)
    assert store.read(rollups.current) == store.read(rollups.recount)


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)  # SQLite has no deltas to fold
def test_a_fold_committing_while_customers_are_ranked_counts_each_customer_once(store: Store) -> None:
    """The worker's fold may commit between the statements of a read (read committed): a customer
    whose only rows were deltas, folded in between, is still one group, not two."""
    random_history(store, 41, steps=15)
    rollups.fold_rollups(store)
    for cid in ("K8", "K9"):  # new customers: their keys have delta rows only
        spec = catalog.CustomerSpec(cid, cid, f"{cid}@x.test", Tier.GOLD)
        store.write(lambda uow, s=spec: catalog.put_customer(uow, s), actor="test", now=T0)
        cmd = orders.PlaceOrder(f"NEW-{cid}", "web", cid, [orders.NewLine("D", 50)])
        store.write(lambda uow, o=cmd: orders.place_order(uow, o), actor="test", now=T0 + timedelta(days=50))
    c = report_waiting_customer_rollup
    where = [c.c.channel == ""]
    expected = store.read(lambda conn: rollups.ranked(conn, c, "customer_id", where, 3))
    assert [k for k, *_ in expected[1][:2]] == ["K8", "K9"]
    folded: list[int] = []

    def fold_after_the_first_statement(conn: Connection, *args: Any) -> None:
        if not folded:
            folded.append(rollups.fold_rollups(store))  # another transaction, committed

    def ranking(conn: Connection) -> Any:
        event.listen(conn, "after_cursor_execute", fold_after_the_first_statement)
        try:
            return rollups.ranked(conn, c, "customer_id", where, 3)
        finally:
            event.remove(conn, "after_cursor_execute", fold_after_the_first_statement)

    assert store.read(ranking) == expected
    assert folded[0] > 0


def test_a_breakdown_of_a_thousand_groups_and_one_more_gives_the_same_first_thousand(store: Store) -> None:
    """Up to TOP_FROM_ROLLUPS groups come from the rollups (each shown group read by key, so its
    parameters stay within both stores' limits); one more is one grouping of the lines."""
    from oms.bench.generate import Spec, generate

    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    generate(store, Spec(lines=4000, skus=60, customers=1500, eta_lines=10, eta_po_lines=2, stocked=2, seed=5), now=now)
    n = TOP_FROM_ROLLUPS
    for g in ("customer", "sku"):
        top = store.read(run("backorders", Filters(), now, g, n))
        more = store.read(run("backorders", Filters(), now, g, n + 1))
        assert top["groups"] == more["groups"] > (n if g == "customer" else 50)
        assert top["items"] == more["items"][:n] and top["total"] == more["total"]
