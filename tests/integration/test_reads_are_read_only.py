"""Reads never write: every report, listing, view and dashboard page answers through a PostgreSQL
role whose transactions are read-only (as a streaming replica's are), with the report rollups'
delta rows left unfolded, and gives the same answer as the normal store.

A read that writes (a report folding its rollups, a view recording something) fails through that
role with "cannot execute ... in a read-only transaction", and `Store.read` itself is read-only on
PostgreSQL, so it fails on the normal store too. The data is written through the services (orders
that allocate and back-order, purchase orders, receipts, cancellations, dispatches, a tier change)
after a fold, so every rollup holds folded rows and fresh deltas. The last test folds and reads the
reports again: the same figures. SQLite has no read-only transactions to check; PostgreSQL only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, insert, make_url, select, text
from sqlalchemy.exc import DBAPIError

from oms.access import keys
from oms.access.users import authenticate, create_user, list_users, session_user, start_session
from oms.app import create_app
from oms.catalog import use_cases as catalog
from oms.catalog import views as catalog_views
from oms.domain.access import Role
from oms.domain.allocation import Tier
from oms.fulfillment import use_cases as fulfillment
from oms.fulfillment import views as shipment_views
from oms.notifications import links, outbox
from oms.orders import customer_link
from oms.orders import use_cases as orders
from oms.orders import views as order_views
from oms.orders.explain import explain
from oms.orders.pages import order_detail
from oms.replenishment import use_cases as replenishment
from oms.replenishment import views as po_views
from oms.reports import pages as web_reports
from oms.reports import rollups
from oms.reports.backorders import TOP_FROM_ROLLUPS
from oms.reports.filters import Filters, filters_from
from oms.reports.names import BREAKDOWN_LIMIT, GROUP_CHOICES, GROUPS_BACKORDERS, GROUPS_FILL_RATE, REPORTS
from oms.reports.queries import run
from oms.reports.summary import metric_figures
from oms.reports.tables import as_table, to_csv
from oms.store.db import Store, make_engine
from oms.store.tables import metadata, settings, shipments
from oms.store.uow import UnitOfWork as Ctx
from oms.store.uow import read_config, read_version
from oms.web import queries
from oms.web.auth import session_secret
from tests.integration.test_reports_figures import NOW, T0, TODAY, build_history

READER = "oms_reader"
PASSWORD = "correct-horse-1"
READ_ONLY = "read-only transaction"
# The API's filters as the routes parse them: none; whole days and a channel; a mid-day start (counted
# from the lines); whole hours (the pending rollup, not the day rollups); a channel alone.
PERIODS = [
    (None, None, None),
    ("2026-03-01", "2026-03-31", "web"),
    ("2026-03-02T10:30:00Z", None, None),
    ("2026-03-01T06:00:00Z", "2026-03-31T12:00:00Z", None),
    (None, "2026-03-20", "pos"),
]
# A breakdown of up to TOP_FROM_ROLLUPS groups ranks from the rollups; more is one grouping of the lines.
LIMITS = (BREAKDOWN_LIMIT, 1, TOP_FROM_ROLLUPS + 1)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def store(pg_engine_url: str) -> Iterator[Store]:
    """The history of test_reports_figures, folded, then more writes whose deltas stay unfolded."""
    s = Store(make_engine(pg_engine_url))
    with s.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} RESTART IDENTITY CASCADE"))
    s.write(lambda uow: create_user(uow.conn, "ada", Role.ADMIN, PASSWORD))
    s.write(
        lambda uow: outbox.create_subscription(uow, "https://hooks.example.net/hook", ["*"], "whsec_dGVzdA==", "test"),
        actor="test",
        now=T0,
    )
    build_history(s)
    assert rollups.fold_rollups(s) > 0  # every key of the history now has one folded row

    def do(hours: float, step: Callable[[Ctx], Any]) -> Any:
        return s.write(step, actor="test", now=NOW - timedelta(hours=hours))

    do(6, lambda ctx: catalog.put_customer(ctx, catalog.CustomerSpec("C2", "C2", "C2@x.test", Tier.GOLD)))
    do(5, lambda ctx: catalog.put_product(ctx, catalog.ProductSpec("D", "D", Decimal("7.50"), 3)))
    lines = [orders.NewLine("A", 3), orders.NewLine("C", 2), orders.NewLine("D", 1)]
    do(5, lambda ctx: orders.place_order(ctx, orders.PlaceOrder("O8", "web", "C2", lines)))
    do(4, lambda ctx: orders.place_order(ctx, orders.PlaceOrder("O9", "pos", "C1", [orders.NewLine("B", 1)])))
    do(3, lambda ctx: replenishment.receive_goods(ctx, "GRN-3", [replenishment.ReceiptLine("C", 5)], "PO-3"))
    do(2, lambda ctx: orders.cancel_order(ctx, "O6", "customer asked", [(1, 1)]))
    shipment = s.read(lambda c: c.scalar(select(func.min(shipments.c.id)).where(shipments.c.order_number == "O4")))
    for step in range(3):
        carrier, tracking = ("DHL", "T-O4") if step == 2 else (None, None)
        do(1, lambda ctx, c=carrier, t=tracking: fulfillment.advance_shipment(ctx, shipment, c, t))
    yield s
    s.engine.dispose()


@pytest.fixture(scope="module")
def reader(store: Store, pg_engine_url: str) -> Iterator[Store]:
    """The same database through a role whose every transaction is read-only (a replica's reader)."""
    with store.engine.begin() as conn:
        conn.execute(
            text(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER}')"
                f" THEN CREATE ROLE {READER} LOGIN; END IF; END $$"
            )
        )
        conn.execute(text(f"ALTER ROLE {READER} SET default_transaction_read_only = on"))
        conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {READER}"))
        conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER}"))
    # The signing keys are made once, on first use, by a write: on a replica they come from the primary
    # (or from OMS_SECRET_KEY), so the primary makes them here.
    session_secret(store)
    links.store_secret(store)
    url = make_url(pg_engine_url).set(username=READER).render_as_string(hide_password=False)
    s = Store(make_engine(url))
    yield s
    s.engine.dispose()


def deltas(store: Store) -> dict[str, int]:
    return store.read(
        lambda c: {name: int(c.scalar(text(f"SELECT count(*) FROM {name} WHERE delta = 1"))) for name in rollups.KEYS}
    )


@pytest.fixture
def unfolded(store: Store, reader: Store) -> Iterator[dict[str, int]]:
    """Every rollup has delta rows before the test, and the same ones after it: reading folded nothing."""
    before = deltas(store)
    assert all(before.values()), before
    yield before
    assert deltas(store) == before


def same(store: Store, reader: Store, query: Callable[[Connection], Any], label: str) -> Any:
    """The query's answer through the read-only role, which must equal the normal store's."""
    expected = store.read(query)
    try:
        got = reader.read(query)
    except DBAPIError as exc:
        raise AssertionError(f"{label}: {exc.orig}") from exc
    assert got == expected, label
    return got


def every_page(
    store: Store, reader: Store, listing: Callable[[str | None], Callable[[Connection], Any]], label: str
) -> list[Any]:
    """Every page of a cursor listing, each the same through both stores."""
    items: list[Any] = []
    cursor = None
    for n in range(100):
        page = same(store, reader, listing(cursor), f"{label} page {n}")
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError(f"{label}: more than 100 pages")


def report_calls() -> Iterator[tuple[str, Callable[[Connection], Any]]]:
    """Every report the API's /reports routes run, with each breakdown, period and limit."""
    for name in REPORTS:
        for group_by in GROUP_CHOICES.get(name, (None,)):
            for period in PERIODS:
                f = filters_from(*period)
                for limit in LIMITS if name == "backorders" else (BREAKDOWN_LIMIT,):
                    yield f"{name} {group_by} {period} {limit}", run(name, f, NOW, group_by, limit)


def test_store_reads_are_read_only_transactions_and_writes_are_not(store: Store) -> None:
    def read_only(c: Connection) -> str:
        return str(c.scalar(text("SHOW transaction_read_only")))

    for _ in range(3):  # the pool hands the same connections back: the flag never leaks into a write
        assert store.read(read_only) == "on"
        assert store.write(lambda uow: read_only(uow.conn)) == "off"
    with pytest.raises(DBAPIError, match=READ_ONLY):
        store.read(lambda c: c.execute(insert(settings).values(key="read-writes", value={}, version=1)))


def test_a_fold_is_a_write_that_neither_a_read_nor_the_reader_may_run(
    store: Store, reader: Store, unfolded: dict[str, int]
) -> None:
    """What the comparisons below rely on: a read that folded would fail (there are deltas to fold)."""
    with pytest.raises(DBAPIError, match=READ_ONLY):
        store.read(rollups.fold_all)
    with pytest.raises(DBAPIError, match=READ_ONLY):
        reader.read(rollups.fold_all)
    with pytest.raises(DBAPIError, match=READ_ONLY):
        reader.write(lambda uow: rollups.fold_all(uow.conn))  # the role: every transaction read-only, even a "write"


def test_every_report_in_every_form_reads_the_same_through_the_read_only_role(
    store: Store, reader: Store, unfolded: dict[str, int]
) -> None:
    for label, query in report_calls():
        data = same(store, reader, query, label)
        name = label.split()[0]
        assert to_csv(*as_table(name, data)) == store.read(lambda c, q=query, n=name: to_csv(*as_table(n, q(c))))
    backorders = reader.read(run("backorders", Filters(), NOW, "customer", 1))
    assert (backorders["groups"], len(backorders["items"])) == (2, 1)
    same(store, reader, lambda c: metric_figures(c, NOW), "metrics")
    for period in PERIODS:
        for group_by, _ in web_reports.GROUPS:
            for week, _ in web_reports.PERIODS:
                query = web_reports._figures(filters_from(*period), group_by, week)
                same(store, reader, query, f"reports page {period} {group_by} {week}")


def test_every_listing_and_view_reads_the_same_through_the_read_only_role(
    store: Store, reader: Store, unfolded: dict[str, int]
) -> None:
    numbers = store.read(lambda c: sorted({r[0] for r in c.execute(text("SELECT order_number FROM orders"))}))
    assert len(numbers) == 9
    for status in (None, "backordered", "in_fulfillment", "dispatched", "cancelled"):
        for channel, customer, sku in ((None, None, None), ("web", None, None), (None, "C1", "A")):
            every_page(
                store,
                reader,
                lambda cur, s=status, ch=channel, cu=customer, k=sku: (
                    lambda c: order_views.list_orders(
                        c, status=s, channel=ch, customer_id=cu, sku=k, limit=2, cursor=cur
                    )
                ),
                f"orders {status} {channel} {customer} {sku}",
            )
    for number in numbers:
        channel = same(store, reader, lambda c, n=number: order_views.order_view(c, n), f"order {number}")["channel"]
        same(
            store, reader, lambda c, n=number, ch=channel: order_views.order_view(c, n, ch), f"order {number} {channel}"
        )
        same(store, reader, lambda c, n=number: order_views.order_events(c, n), f"events {number}")
        same(store, reader, lambda c, n=number: customer_link.customer_view(c, n), f"customer page {number}")
        same(store, reader, lambda c, n=number: order_detail(c, n), f"order page {number}")
    filters: list[dict[str, Any]] = [
        {},
        {"sku": "A"},
        {"customer_id": "C1"},
        {"order_number": "O8"},
        {"channel": "web"},
        {"min_age_days": 5},
        {"tier_rank": 0},
    ]
    waiting: list[Any] = []
    for sort in ("queue", "age"):
        for kw in filters:
            args = {"sku": None, "customer_id": None, "order_number": None, "channel": None, "min_age_days": None}
            args |= kw
            items = every_page(
                store,
                reader,
                lambda cur, a=args, s=sort: (
                    lambda c: order_views.list_backorders(c, **a, sort=s, limit=2, cursor=cur, now=NOW)
                ),
                f"back orders {sort} {kw}",
            )
            if not kw:
                waiting = items
    assert len(waiting) >= 4
    for line in waiting:
        for today in (TODAY, None):
            same(
                store,
                reader,
                lambda c, n=line["order_number"], i=line["line_no"], t=today: explain(c, n, i, t),
                f"explain {line['order_number']}/{line['line_no']}",
            )
    products = every_page(store, reader, lambda cur: lambda c: catalog_views.list_products(c, 2, cur), "products")
    skus = [p["sku"] for p in products]
    assert skus == ["A", "B", "C", "D"]
    for sku in skus:
        same(store, reader, lambda c, k=sku: catalog_views.product_view(c, k), f"product {sku}")
    same(store, reader, lambda c: queries.next_supply(c, skus), "next supply")
    for customer in ("C1", "C2"):
        same(store, reader, lambda c, k=customer: catalog_views.customer_view(c, k), f"customer {customer}")
    promise = [replenishment.PromiseLine("A", 4), replenishment.PromiseLine("B", 2)]
    same(
        store,
        reader,
        lambda c: replenishment.promise(c, read_config(c, read_version(c)), NOW, "web", promise, "C1", 0),
        "promise",
    )
    pos: list[Any] = []
    for status in (None, "open", "received", "cancelled"):
        for sku in (None, "A"):
            for overdue in (None, True, False):
                found = every_page(
                    store,
                    reader,
                    lambda cur, s=status, k=sku, o=overdue: (
                        lambda c: po_views.list_pos(c, status=s, sku=k, overdue=o, today=TODAY, limit=1, cursor=cur)
                    ),
                    f"purchase orders {status} {sku} {overdue}",
                )
                pos = found if (status, sku, overdue) == (None, None, None) else pos
    assert [p["po_number"] for p in pos] == ["PO-1", "PO-2", "PO-3"]
    for po in pos:
        same(store, reader, lambda c, n=po["po_number"]: po_views.po_view(c, n, TODAY), f"PO {po['po_number']}")
    for today in (TODAY, None):
        same(store, reader, lambda c, t=today: po_views.shortfall(c, t), "shortfall")
    ids: list[int] = []
    for status in (None, "pick", "pack", "awaiting_shipment", "dispatched", "cancelled"):
        for channel, number in ((None, None), ("pos", None), (None, "O3")):
            found = every_page(
                store,
                reader,
                lambda cur, s=status, ch=channel, n=number: (
                    lambda c: shipment_views.list_shipments(
                        c, status=s, channel=ch, order_number=n, limit=2, cursor=cur
                    )
                ),
                f"shipments {status} {channel} {number}",
            )
            ids = [s["id"] for s in found] if (status, channel, number) == (None, None, None) else ids
    assert len(ids) >= 6
    for sid in ids:
        same(store, reader, lambda c, i=sid: shipment_views.shipment_view(c, i), f"shipment {sid}")
    for channel, number, status, kind in (
        (None, None, None, None),
        ("web", None, None, None),
        (None, "O3", None, None),
        (None, None, "pending", "email"),
        (None, None, None, "webhook"),
        (None, None, "dead", None),
    ):
        every_page(
            store,
            reader,
            lambda cur, ch=channel, n=number, st=status, k=kind: (
                lambda c: outbox.list_notifications(
                    c, channel=ch, order_number=n, status=st, kind=k, limit=5, cursor=cur
                )
            ),
            f"notifications {channel} {number} {status} {kind}",
        )
    subs = same(store, reader, outbox.list_subscriptions, "webhooks")["items"]
    assert len(subs) == 1
    same(store, reader, lambda c: outbox.get_subscription(c, subs[0]["id"]), "webhook")
    every_page(store, reader, lambda cur: lambda c: outbox.list_deliveries(c, subs[0]["id"], 5, cur), "deliveries")
    same(store, reader, lambda c: queries.overview(c, NOW), "overview")
    same(store, reader, keys.list_keys, "keys")
    same(store, reader, list_users, "users")
    uid = same(store, reader, lambda c: authenticate(c, "ada", PASSWORD), "sign-in").id
    session = store.write(lambda uow: start_session(uow.conn, uid, NOW))  # signing in writes: on the primary
    same(store, reader, lambda c: session_user(c, session, NOW), "session user")


def _sign_in(client: TestClient) -> str:
    """The session cookie of a sign-in (a write: the session and the attempt are kept in the store)."""
    csrf = CSRF.search(client.get("/login").text)
    assert csrf is not None
    form = {"username": "ada", "password": PASSWORD, "csrf_token": csrf.group(1)}
    signed_in = client.post("/login", data=form, follow_redirects=False)
    assert signed_in.status_code == 303, signed_in.text
    return str(client.cookies.get("oms_session"))


def _pages(client: TestClient) -> dict[str, tuple[int, str]]:
    """Every dashboard page a person reads (and the customer's page), as (status, body without tokens)."""
    token = links.make_token(links.store_secret(client.app.state.store), "O8")
    urls = [
        "/",
        "/orders",
        "/orders?status=backordered&channel=web",
        *[f"/orders/O{n}" for n in range(1, 10)],
        "/backorders",
        "/backorders?sort=age&sku=A",
        "/backorders?customer_id=C1&min_age_days=3&limit=25",
        "/backorders.csv",
        "/backorders.csv?sort=age&channel=web",
        "/products",
        "/products/A",
        "/products/D",
        "/purchasing",
        "/purchasing?view=overdue",
        "/purchasing?view=all&sku=A",
        "/purchasing/new",
        "/purchasing/receive?po=PO-3",
        "/purchasing/shortfall",
        "/fulfillment",
        "/fulfillment?channel=pos",
        "/reports",
        "/reports?from=2026-03-01&to=2026-03-31&channel=web&group_by=customer&period=week",
        "/reports?group_by=tier",
        *[f"/reports/{name}.csv" for name in REPORTS],
        "/reports/backorders.csv?group_by=channel&from=2026-03-02",
        "/settings",
        f"/c/{token}",
    ]
    out = {}
    for url in urls:
        r = client.get(url)
        out[url.replace(token, "<token>")] = (r.status_code, CSRF.sub("", r.text))
    return out


def test_every_dashboard_page_reads_the_same_through_the_read_only_role(
    store: Store, reader: Store, unfolded: dict[str, int]
) -> None:
    with TestClient(create_app(store)) as a, TestClient(create_app(reader)) as b:
        b.cookies.set("oms_session", _sign_in(a))  # signed in on the primary, reading on the replica
        normal, replica = _pages(a), _pages(b)
    assert {url: status for url, (status, _) in replica.items()} == dict.fromkeys(replica, 200)
    for url, page in normal.items():
        assert replica[url] == page, url


def test_every_api_read_answers_the_same_through_the_read_only_role(
    store: Store, reader: Store, unfolded: dict[str, int]
) -> None:
    token = store.write(lambda uow: keys.create_key(uow.conn, Role.ADMIN, "read-only-test"))
    auth = {"Authorization": f"Bearer {token}"}
    paths = [
        "/api/v1/orders",
        "/api/v1/orders?status=backordered&channel=web&limit=2",
        "/api/v1/orders/O8",
        "/api/v1/orders/O8/events",
        "/api/v1/orders/O8/lines/1/explain",
        "/api/v1/backorders",
        "/api/v1/backorders?sort=age&sku=A",
        "/api/v1/backorders?customer_id=C1&min_age_days=2",
        "/api/v1/products",
        "/api/v1/products/A",
        "/api/v1/customers/C1",
        "/api/v1/purchase-orders",
        "/api/v1/purchase-orders?status=open&overdue=true",
        "/api/v1/purchase-orders/PO-3",
        "/api/v1/reports/shortfall",
        "/api/v1/shipments",
        "/api/v1/shipments?status=dispatched",
        "/api/v1/shipments/1",
        "/api/v1/notifications",
        "/api/v1/notifications?status=pending&kind=webhook",
        "/api/v1/webhooks",
        "/api/v1/webhooks/1",
        "/api/v1/webhooks/1/deliveries",
        "/api/v1/settings/default-backorder-policy",
        "/api/v1/settings/allocation-rule",
        *[
            f"/api/v1/reports/{name}?{q}"
            for name in REPORTS
            for q in ("", "format=csv", "from=2026-03-01&to=2026-03-31&channel=web", "from=2026-03-02T10:30:00Z")
        ],
        *[f"/api/v1/reports/backorders?group_by={g}&limit=1" for g in GROUPS_BACKORDERS],
        *[f"/api/v1/reports/fill-rate?group_by={g}&format=csv" for g in GROUPS_FILL_RATE],
    ]
    with TestClient(create_app(store)) as a, TestClient(create_app(reader)) as b:
        for path in paths:
            expected, got = a.get(path, headers=auth), b.get(path, headers=auth)
            assert got.status_code == expected.status_code == 200, (path, got.text)
            assert got.text == expected.text, path
        assert b.get("/metrics").status_code == 200
        body = b.post("/api/v1/promise", json={"channel": "web", "lines": [{"sku": "A", "qty": 2}]}, headers=auth)
        assert body.status_code == 200, body.text


def test_folding_afterwards_changes_no_report_figure(store: Store, reader: Store) -> None:
    """Last: the worker's fold (a write, on the primary) leaves every report as the reader saw it."""
    before = {label: reader.read(query) for label, query in report_calls()}
    before["metrics"] = reader.read(lambda c: metric_figures(c, NOW))
    assert all(deltas(store).values())
    assert rollups.fold_rollups(store) > 0
    assert deltas(store) == dict.fromkeys(rollups.KEYS, 0)
    assert rollups.fold_rollups(store) == 0
    after = {label: reader.read(query) for label, query in report_calls()}
    after["metrics"] = reader.read(lambda c: metric_figures(c, NOW))
    assert after == before
    assert store.read(rollups.current) == store.read(rollups.recount)
