"""Webhooks: signed as Standard Webhooks, retried with backoff, logged, deduplicable by their stable id."""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from oms.domain.access import Role
from oms.store.reads import utcnow
from oms.worker import Worker, WorkerConfig

from .conftest import Receiver, customer, make_worker, outbox_rows, place, product


def subscribe(api, url, types):
    r = api.post("/webhooks", {"url": url, "event_types": types, "description": "test"})
    assert r.status_code == 201, r.text
    return r.json()


def test_each_delivery_is_signed_and_carries_the_event(api, receiver):
    sub = subscribe(api, receiver.url, ["order_placed", "backordered"])
    assert sub["secret"].startswith("whsec_")
    product(api, "TENT", lead=21)
    customer(api)
    place(api, "SO-1", [("TENT", 3)])
    make_worker(api.store).drain()

    assert [e["type"] for e in receiver.events()] == ["order_placed", "backordered"]
    for req in receiver.requests:
        h = req["headers"]
        assert h["webhook-id"].startswith("msg_")
        assert abs(int(h["webhook-timestamp"]) - int(utcnow().timestamp())) < 60
        assert h["webhook-signature"].startswith("v1,")
        # A receiver checks it with the Standard Webhooks library, as integrators do.
        assert Webhook(sub["secret"]).verify(req["body"], h) == json.loads(req["body"])
        assert h["content-type"] == "application/json"
    placed = receiver.events()[0]
    assert placed["data"]["order_number"] == "SO-1"
    eta = (utcnow().date() + timedelta(days=21)).isoformat()  # the lead time: no PO yet
    assert placed["data"]["lines"] == [
        {"line_no": 1, "sku": "TENT", "qty": 3, "allocated_qty": 0, "backordered_qty": 3, "eta": eta}
    ]
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert ids == {row.id for row in outbox_rows(api.store, kind="webhook")}


def test_a_tampered_body_does_not_verify(api, receiver):
    sub = subscribe(api, receiver.url, ["order_placed"])
    product(api, "TENT")
    customer(api)
    place(api, "SO-1", [("TENT", 1)])
    make_worker(api.store).drain()
    [req] = receiver.requests
    h = req["headers"]
    forged = req["body"].replace(b"SO-1", b"SO-9")
    Webhook(sub["secret"]).verify(req["body"], h)
    with pytest.raises(WebhookVerificationError):
        Webhook(sub["secret"]).verify(forged, h)
    with pytest.raises(WebhookVerificationError):  # another subscription's secret does not verify it either
        Webhook(api.post("/webhooks", {"url": receiver.url, "event_types": ["*"]}).json()["secret"]).verify(
            req["body"], h
        )


def test_only_subscribed_event_types_are_sent_and_star_means_all(api):
    only, every = Receiver(), Receiver()
    try:
        subscribe(api, only.url, ["cancelled"])
        subscribe(api, every.url, ["*"])
        product(api, "TENT")
        customer(api)
        place(api, "SO-1", [("TENT", 2)])
        api.post("/orders/SO-1/cancel", {"reason": "changed mind"})
        make_worker(api.store).drain()
        assert [e["type"] for e in only.events()] == ["cancelled"]
        assert only.events()[0]["data"]["reason"] == "changed mind"
        types = [e["type"] for e in every.events()]
        assert {"product_created", "customer_created", "order_placed", "backordered", "cancelled"} <= set(types)
    finally:
        only.close()
        every.close()


def test_a_failing_receiver_gets_retries_with_the_same_id_and_the_log_shows_each_attempt(api):
    receiver = Receiver(fail_first=2)
    try:
        sub = subscribe(api, receiver.url, ["order_placed"])
        product(api, "TENT")
        customer(api)
        place(api, "SO-1", [("TENT", 1)])
        make_worker(api.store).drain()
        assert len(receiver.requests) == 3
        assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1  # one message, three tries
        log = api.get(f"/webhooks/{sub['id']}/deliveries").json()["items"]
        assert [(d["attempt"], d["ok"], d["status_code"]) for d in log] == [
            (3, True, 200),
            (2, False, 500),
            (1, False, 500),
        ]
        assert log[2]["error"] == "HTTP 500"
        [row] = outbox_rows(api.store, kind="webhook")
        assert (row.status, row.attempts) == ("delivered", 3)
    finally:
        receiver.close()


def test_retries_wait_exponentially_longer(api):
    receiver = Receiver(fail_first=10)
    try:
        subscribe(api, receiver.url, ["order_placed"])
        product(api, "TENT")
        customer(api)
        place(api, "SO-1", [("TENT", 1)])
        worker = make_worker(api.store)
        worker.build()
        worker.config.backoff_seconds = 10
        t0 = utcnow()
        waits = []
        now = t0
        for _ in range(3):
            batch = worker.claim(now)
            assert [m.kind for m in batch if m.kind == "webhook"] == ["webhook"]
            for msg in batch:  # the order confirmation email is delivered in the first round
                worker.finish(msg, worker.deliver(msg), now)
            [row] = outbox_rows(api.store, kind="webhook")
            waits.append(round((row.next_attempt_at - now).total_seconds()))
            assert worker.claim(now + timedelta(seconds=waits[-1] - 1)) == []  # not due yet
            now = row.next_attempt_at
        assert waits == [10, 20, 40]
    finally:
        receiver.close()


def test_a_message_that_keeps_failing_goes_dead_and_is_listed_then_can_be_retried(api):
    receiver = Receiver(fail_first=3)
    try:
        subscribe(api, receiver.url, ["order_placed"])
        product(api, "TENT")
        customer(api)
        place(api, "SO-1", [("TENT", 1)])
        make_worker(api.store, max_attempts=3).drain()
        dead = api.get("/notifications", params={"status": "dead"}).json()["items"]
        assert [(n["kind"], n["to"], n["status"], n["attempts"], n["last_error"]) for n in dead] == [
            ("webhook", receiver.url, "dead", 3, "HTTP 500")
        ]
        r = api.post(f"/notifications/{dead[0]['id']}/retry")
        assert r.status_code == 200 and r.json()["status"] == "pending"
        make_worker(api.store, max_attempts=3).drain()
        assert api.get("/notifications", params={"status": "dead"}).json()["items"] == []
        assert len(receiver.requests) == 4
        assert {r["headers"]["webhook-id"] for r in receiver.requests} == {dead[0]["id"]}
    finally:
        receiver.close()


def test_webhook_subscriptions_are_for_admins_and_validated(api, receiver):
    ops = api.as_role(Role.OPS)
    assert ops.post("/webhooks", {"url": receiver.url, "event_types": ["*"]}).status_code == 403
    r = api.post("/webhooks", {"url": receiver.url, "event_types": ["order_placd"]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["value"] == "order_placd"
    assert api.post("/webhooks", {"url": "file:///etc/passwd", "event_types": ["*"]}).status_code == 422
    sub = subscribe(api, receiver.url, ["*"])
    listed = api.get("/webhooks").json()["items"]
    assert [s["id"] for s in listed] == [sub["id"]]
    assert "secret" not in listed[0]
    gone = api.client.delete(f"/api/v1/webhooks/{sub['id']}", headers=api.headers)
    assert gone.json()["active"] is False
    product(api, "TENT")
    make_worker(api.store).drain()
    assert receiver.requests == []  # nothing queued for an inactive subscription
    assert api.get("/webhooks/999/deliveries").status_code == 404


class FakeResolver:
    """Host names to addresses, as the worker's injected resolver; records every lookup."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        if host not in self.names:
            raise OSError("unknown name")
        return self.names[host]


def deliveries(api, sub_id):
    return api.get(f"/webhooks/{sub_id}/deliveries").json()["items"]


def test_a_name_is_resolved_by_the_worker_and_the_checked_address_is_the_one_connected(api, receiver):
    port = int(receiver.url.split(":")[2].split("/")[0])
    resolver = FakeResolver({"receiver.test": ["127.0.0.1"]})
    sub = subscribe(api, f"http://receiver.test:{port}/hook", ["order_placed"])
    product(api, "TENT")
    customer(api)
    place(api, "SO-1", [("TENT", 1)])
    Worker(api.store, WorkerConfig(backoff_seconds=0.0), name="t", resolver=resolver).drain()
    [req] = receiver.requests
    assert (
        req["headers"]["host"] == f"receiver.test:{port}"
    )  # the name stays in the request, the socket went to the address
    assert resolver.asked == [("receiver.test", port)]
    assert [(d["ok"], d["status_code"]) for d in deliveries(api, sub["id"])] == [(True, 200)]


def test_a_name_with_any_inner_address_among_its_answers_is_refused_without_a_connection(api, monkeypatch):
    connects: list[object] = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        connects.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    # Permitted private targets do not extend to metadata addresses.
    resolver = FakeResolver({"mixed.test": ["93.184.215.14", "169.254.169.254"]})
    sub = subscribe(api, "http://mixed.test/hook", ["order_placed"])
    product(api, "TENT")
    customer(api)
    place(api, "SO-1", [("TENT", 1)])
    Worker(api.store, WorkerConfig(backoff_seconds=0.0, max_attempts=1), name="t", resolver=resolver).drain()
    assert connects == []
    [d] = deliveries(api, sub["id"])
    assert (d["ok"], d["status_code"], d["error"]) == (False, None, "refused target: metadata address")
