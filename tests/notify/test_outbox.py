"""The outbox: written with the change or not at all, listed in the API, claimed by one worker at a time."""

from __future__ import annotations

import threading

from oms.domain.access import Role
from oms.worker import backoff

from .conftest import Receiver, built, customer, make_worker, outbox_rows, place, product


def test_a_refused_order_leaves_no_notification(api):
    product(api, "A", policy={"mode": "never"})
    customer(api)
    r = api.post(
        "/orders", {"order_number": "SO-1", "channel": "web", "customer_id": "ALICE", "lines": [{"sku": "A", "qty": 1}]}
    )
    assert r.status_code == 409
    assert outbox_rows(api.store) == []


def test_a_previewed_receipt_leaves_no_notification(api):
    product(api, "A")
    customer(api)
    place(api, "SO-1", [("A", 2)])
    before = len(outbox_rows(api.store))
    r = api.post("/receipts/preview", {"grn_number": "G-1", "lines": [{"sku": "A", "qty": 2}]})
    assert r.status_code == 200
    assert len(r.json()["allocations"]) == 1
    assert len(outbox_rows(api.store)) == before


def test_notifications_are_listed_and_filtered(api, receiver):
    api.post("/webhooks", {"url": receiver.url, "event_types": ["order_placed"]})
    product(api, "A")
    customer(api)
    place(api, "SO-1", [("A", 1)])
    place(api, "SO-2", [("A", 1)], channel="shop")
    assert api.get("/notifications").json()["items"] == []  # events only: the worker builds the messages
    built(api.store)
    items = api.get("/notifications").json()["items"]
    assert [(n["kind"], n["to"], n["order_number"], n["status"]) for n in items] == [
        ("webhook", receiver.url, "SO-1", "pending"),
        ("email", "alice@example.com", "SO-1", "pending"),
        ("webhook", receiver.url, "SO-2", "pending"),
        ("email", "alice@example.com", "SO-2", "pending"),
    ]
    assert all(n["id"].startswith("msg_") and n["created_at"].endswith("Z") for n in items)
    by_order = api.get("/notifications", params={"order_number": "SO-2", "kind": "email"}).json()["items"]
    assert [(n["order_number"], n["event_type"]) for n in by_order] == [("SO-2", "order_confirmation")]
    assert [n["order_number"] for n in api.get("/notifications", params={"channel": "shop"}).json()["items"]] == [
        "SO-2",
        "SO-2",
    ]
    make_worker(api.store).drain()
    delivered = api.get("/notifications", params={"status": "delivered"}).json()["items"]
    assert len(delivered) == 4 and all(n["delivered_at"] and n["attempts"] == 1 for n in delivered)
    page1 = api.get("/notifications", params={"limit": 3}).json()
    page2 = api.get("/notifications", params={"limit": 3, "cursor": page1["next_cursor"]}).json()
    assert [n["id"] for n in page1["items"] + page2["items"]] == [n["id"] for n in items]
    shop = api.as_role(Role.CHANNEL, channel="shop")
    assert {n["order_number"] for n in shop.get("/notifications").json()["items"]} == {"SO-2"}
    assert shop.get("/notifications", params={"channel": "web"}).json()["items"] == []


def test_backoff_doubles_up_to_a_cap():
    assert [backoff(n, 10, 100) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 80, 100]


def test_two_workers_never_deliver_the_same_message(api):
    receiver = Receiver()
    try:
        api.post("/webhooks", {"url": receiver.url, "event_types": ["*"]})
        product(api, "A")
        customer(api)
        for n in range(15):
            place(api, f"SO-{n}", [("A", 1)])
        total = len(outbox_rows(api.store))
        workers = [make_worker(api.store, batch_size=4) for _ in range(3)]
        for i, w in enumerate(workers):
            w.name = f"w{i}"
        claimed: dict[str, list[str]] = {w.name: [] for w in workers}
        errors: list[BaseException] = []

        def run(w):
            try:
                for _ in range(200):
                    batch = w.claim()
                    if not batch:
                        return
                    claimed[w.name] += [m.id for m in batch]
                    for m in batch:
                        w.finish(m, w.deliver(m))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        all_claims = [i for ids in claimed.values() for i in ids]
        assert len(all_claims) == len(set(all_claims)) == total
        webhook_ids = [r["headers"]["webhook-id"] for r in receiver.requests]
        assert len(webhook_ids) == len(set(webhook_ids)) == len(outbox_rows(api.store, kind="webhook"))
        assert len(outbox_rows(api.store, status="delivered")) == total
    finally:
        receiver.close()
