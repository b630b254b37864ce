"""The unit of work: events written with the transaction or not at all, settings seen by every process
at its next transaction, and every committed event turned into its messages once, in order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

from oms.catalog import use_cases as catalog
from oms.domain.allocation import RuleKey, Tier
from oms.domain.errors import Invalid
from oms.notifications.builder import build_notifications
from oms.orders import use_cases as orders
from oms.store.db import Store, make_engine
from oms.store.tables import event_batches, events, outbox
from oms.store.uow import UnitOfWork


def _catalogue(store: Store) -> None:
    def go(uow: UnitOfWork) -> None:
        catalog.put_product(uow, catalog.ProductSpec("A", "A", Decimal("5.00"), 7))
        catalog.put_customer(uow, catalog.CustomerSpec("C1", "C", "c@example.com", Tier.GOLD))

    store.write(go)


def _order(number: str) -> orders.PlaceOrder:
    return orders.PlaceOrder(number, "web", "C1", [orders.NewLine("A", 1)])


def _count(store: Store, table: Any) -> int:
    return int(store.read(lambda c: c.execute(select(func.count()).select_from(table)).scalar_one()))


def test_a_settings_change_is_seen_by_another_process_at_its_next_transaction(store):
    other = Store(make_engine(store.engine.url.render_as_string(hide_password=False)))  # another process's caches
    try:
        assert other.write(lambda uow: uow.rule()) == (RuleKey.PRIORITY, RuleKey.PLACED_AT)  # cached now
        store.write(lambda uow: catalog.set_allocation_rule(uow, ["customer_tier", "placed_at"]))
        assert other.write(lambda uow: uow.rule()) == (RuleKey.CUSTOMER_TIER, RuleKey.PLACED_AT)
    finally:
        other.engine.dispose()


def test_a_use_case_that_raises_leaves_no_event_and_no_batch(store):
    _catalogue(store)
    before = (_count(store, events), _count(store, event_batches))

    def half_done(uow: UnitOfWork) -> None:
        orders.place_order(uow, _order("SO-1"))  # recorded its events...
        raise Invalid("changed my mind")  # ...and then the use case fails

    with pytest.raises(Invalid):
        store.write(half_done)
    assert (_count(store, events), _count(store, event_batches)) == before
    assert store.read(lambda c: c.execute(text("SELECT count(*) FROM orders")).scalar_one()) == 0


def test_each_transaction_writes_one_batch_and_the_worker_builds_it_once(store):
    _catalogue(store)
    for n in range(3):
        store.write(lambda uow, n=n: orders.place_order(uow, _order(f"SO-{n}")), actor="test")
    batches = store.read(lambda c: c.execute(select(events.c.batch_id, events.c.type).order_by(events.c.id)).all())
    per_order = [b for b, t in batches if t == "order_placed"]
    assert len(set(per_order)) == 3 and per_order == sorted(per_order)  # one batch each, in commit order
    assert build_notifications(store) == 4  # the catalogue's transaction and the three orders
    assert build_notifications(store) == 0  # nothing is built twice
    assert _count(store, event_batches) == 0
    confirmations = store.read(
        lambda c: (
            c.execute(
                select(outbox.c.order_number).where(outbox.c.event_type == "order_confirmation").order_by(outbox.c.id)
            )
            .scalars()
            .all()
        )
    )
    assert confirmations == ["SO-0", "SO-1", "SO-2"]  # message ids follow the events' order
    # A batch after the built ones (deleted) gets an id never used, so the worker builds only its events.
    store.write(lambda uow: orders.place_order(uow, _order("SO-3")), actor="test")
    ids = store.read(lambda c: c.execute(select(events.c.order_number, events.c.batch_id)).all())
    assert min(b for n, b in ids if n == "SO-3") > max(b for n, b in ids if n != "SO-3")
    assert build_notifications(store) == 1
    count = select(func.count()).select_from(outbox).where(outbox.c.event_type == "order_confirmation")
    assert store.read(lambda c: c.execute(count).scalar_one()) == 4


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)  # SQLite has one writer at a time
def test_a_batch_that_commits_after_a_later_one_is_not_skipped(store):
    """PostgreSQL draws ids when a transaction writes, not when it commits: the worker must not miss
    a batch whose id is lower than one it has already built."""
    _catalogue(store)
    build_notifications(store)
    with store.engine.connect() as slow:
        tx = slow.begin()
        uow = UnitOfWork(slow, store.config, actor="slow")
        uow.event("stock_adjusted", {"qty_delta": 1, "reason": "count", "on_hand": 1}, sku="A")
        uow.write_events()  # batch n, not committed yet
        store.write(lambda uow: orders.place_order(uow, _order("SO-FAST")), actor="fast")  # batch n + 1, committed
        assert build_notifications(store) == 1  # the fast one; the slow one is not visible yet
        tx.commit()
    assert build_notifications(store) == 1  # ...and is built once it commits
    assert _count(store, event_batches) == 0


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_only_one_worker_builds_at_a_time(store):
    _catalogue(store)
    with store.engine.connect() as first:
        tx = first.begin()
        first.execute(text("SELECT pg_advisory_xact_lock(hashtext('oms notifications'))"))  # a builder at work
        assert build_notifications(store) == 0  # a second one leaves the batches to it
        tx.rollback()
    assert build_notifications(store) == 1
