"""Back orders older than the policy allows are cancelled by the worker's job, once, and the customer told."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from oms.orders import jobs
from oms.store.tables import events

from .conftest import customer, make_worker, outbox_rows, place, product, stock, text_of


def cancelled_events(store) -> int:
    q = select(func.count()).select_from(events).where(events.c.type == "cancelled")
    return int(store.read(lambda c: c.execute(q).scalar_one()))


def setup_aged(api):
    product(api, "A", lead=30, policy={"mode": "always", "auto_cancel_after_days": 10})
    product(api, "B", lead=30)  # the default policy: no auto-cancel
    customer(api)
    stock(api, "A", 1)
    place(api, "SO-1", [("A", 3), ("B", 2)])  # A: 1 allocated, 2 waiting
    place(api, "SO-2", [("A", 4)])


def test_aged_back_orders_are_cancelled_with_reason_aged_out_and_allocated_units_kept(api, smtp):
    setup_aged(api)
    later = datetime.now(UTC) + timedelta(days=11)
    assert jobs.cancel_aged_backorders(api.store, later) == 2
    so1 = {line["sku"]: line for line in api.get("/orders/SO-1").json()["lines"]}
    assert (so1["A"]["allocated_qty"], so1["A"]["backordered_qty"], so1["A"]["cancelled_qty"]) == (1, 0, 2)
    assert (so1["B"]["backordered_qty"], so1["B"]["cancelled_qty"]) == (2, 0)
    assert api.get("/orders/SO-2").json()["status"] == "cancelled"
    reasons = [e["data"]["reason"] for e in api.get("/orders/SO-2/events").json()["items"] if e["type"] == "cancelled"]
    assert reasons == ["aged out"]

    make_worker(api.store).drain()
    [mail] = [m for m in smtp.by_subject("cancelled") if "SO-2" in str(m["Subject"])]
    assert "Reason: aged out" in text_of(mail)
    assert "- 4 x Product A (A)" in text_of(mail)


def test_the_job_is_idempotent_and_leaves_young_back_orders_alone(api):
    setup_aged(api)
    now = datetime.now(UTC)
    assert jobs.cancel_aged_backorders(api.store, now + timedelta(days=9)) == 0
    assert jobs.cancel_aged_backorders(api.store, now + timedelta(days=11)) == 2
    messages = len(outbox_rows(api.store))
    assert jobs.cancel_aged_backorders(api.store, now + timedelta(days=11)) == 0  # a second run finds nothing
    assert cancelled_events(api.store) == 2
    assert len(outbox_rows(api.store)) == messages


def test_the_default_policy_s_limit_applies_to_products_without_their_own(api):
    r = api.put("/settings/default-backorder-policy", {"mode": "always", "auto_cancel_after_days": 3})
    assert r.status_code == 200, r.text
    product(api, "B", lead=30)
    customer(api)
    place(api, "SO-1", [("B", 2)])
    assert make_worker(api.store).run_jobs(datetime.now(UTC) + timedelta(days=4))["aged_out_orders"] == 1
    assert api.get("/orders/SO-1").json()["lines"][0]["cancelled_qty"] == 2


def test_two_workers_running_the_job_at_once_cancel_each_order_once(api):
    product(api, "A", lead=30, policy={"mode": "always", "auto_cancel_after_days": 1})
    customer(api)
    for n in range(12):
        place(api, f"SO-{n}", [("A", 1 + n % 3)])
    later = datetime.now(UTC) + timedelta(days=2)
    done: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            done.append(jobs.cancel_aged_backorders(api.store, later))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(done) == 12
    assert cancelled_events(api.store) == 12
    assert api.get("/products/A").json()["stock"]["backordered"] == 0
