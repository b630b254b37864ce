"""The back-order email's signed link opens the customer's page; the customer may cancel or keep waiting."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from oms.notifications import links

from .conftest import customer, make_worker, place, product, stock


def day(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def setup(api):
    product(api, "TENT", lead=21)
    customer(api)
    customer(api, "BOB")
    stock(api, "TENT", 1)
    place(api, "SO-0", [("TENT", 2)], cid="BOB")  # 1 allocated, 1 waiting, ahead of Alice
    place(api, "SO-1", [("TENT", 3)])


def test_the_link_shows_the_lines_their_eta_and_queue_position(api, _mail_sink_in_tmp):
    setup(api)
    page = api.client.get(_link_for(api, _mail_sink_in_tmp, "SO-1"))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Your order SO-1" in html
    assert f"<td>{day(21)}</td>" in html
    assert "<td>2</td>" in html  # second in the queue, behind Bob's waiting unit
    assert "Keep waiting" in html


def _link_for(api, mail_dir, order_number: str) -> str:
    make_worker(api.store).drain()
    for eml in mail_dir.glob("*.eml"):
        text = eml.read_text()
        if f"Subject: Order {order_number} confirmed" in text:
            found = re.search(r"http://127\.0\.0\.1:8000(/c/[A-Za-z0-9_.\-]+)", text)
            assert found
            return found.group(1)
    raise AssertionError(f"no confirmation for {order_number}")


def test_the_customer_cancels_the_waiting_units_through_the_link(api, _mail_sink_in_tmp):
    setup(api)
    link = _link_for(api, _mail_sink_in_tmp, "SO-0")
    r = api.client.post(link, data={"action": "cancel", "line_no": "1"})
    assert r.status_code == 200
    assert "the waiting items are cancelled" in r.text
    line = api.get("/orders/SO-0").json()["lines"][0]
    assert (line["allocated_qty"], line["backordered_qty"], line["cancelled_qty"]) == (1, 0, 1)
    evs = [e for e in api.get("/orders/SO-0/events").json()["items"] if e["type"] == "cancelled"]
    assert [(e["actor"], e["data"]["reason"]) for e in evs] == [("customer", "customer request via link")]
    # Alice moved up: first in the queue now
    assert api.get("/backorders", params={"order_number": "SO-1"}).json()["items"][0]["queue_position"] == 1
    again = api.client.post(link, data={"action": "cancel"})
    assert again.status_code == 409
    assert "Nothing of this order is waiting" in again.text


def test_keep_waiting_is_recorded_and_changes_nothing(api, _mail_sink_in_tmp):
    setup(api)
    link = _link_for(api, _mail_sink_in_tmp, "SO-1")
    r = api.client.post(link, data={"action": "wait"})
    assert r.status_code == 200
    assert "keeps its place" in r.text
    assert api.get("/orders/SO-1").json()["lines"][0]["backordered_qty"] == 3
    types = [e["type"] for e in api.get("/orders/SO-1/events").json()["items"]]
    assert types[-1] == "customer_kept_waiting"


def test_a_tampered_link_shows_nothing(api, _mail_sink_in_tmp):
    setup(api)
    link = _link_for(api, _mail_sink_in_tmp, "SO-1")
    token = link.removeprefix("/c/")
    payload, rest = token.split(".", 1)
    forged_payload = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    for bad in (f"/c/{forged_payload}.{rest}", link[:-2] + ("xx" if not link.endswith("xx") else "yy"), "/c/nonsense"):
        r = api.client.get(bad)
        assert r.status_code == 404, bad
        assert "SO-1" not in r.text
        assert api.client.post(bad, data={"action": "cancel"}).status_code == 404
    assert api.get("/orders/SO-1").json()["lines"][0]["backordered_qty"] == 3


def test_an_expired_link_shows_nothing(api, _mail_sink_in_tmp, monkeypatch):
    setup(api)
    link = _link_for(api, _mail_sink_in_tmp, "SO-1")
    assert api.client.get(link).status_code == 200
    issued = datetime.now(UTC)
    monkeypatch.setattr(links, "clock", lambda: issued + timedelta(days=links.DEFAULT_MAX_AGE_DAYS, seconds=-60))
    assert api.client.get(link).status_code == 200  # a minute before it expires
    monkeypatch.setattr(links, "clock", lambda: issued + timedelta(days=links.DEFAULT_MAX_AGE_DAYS, seconds=1))
    assert api.client.get(link).status_code == 404
    assert api.client.post(link, data={"action": "cancel"}).status_code == 404
