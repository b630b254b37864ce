"""Customer emails go through a real SMTP server on loopback and say what the customer needs to know."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .conftest import customer, html_of, make_worker, outbox_rows, place, po, product, stock, text_of


def day(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def advance_to_dispatch(api, order_number, carrier="DHL", tracking="JD0001234"):
    shipment = api.get("/shipments", params={"order_number": order_number}).json()["items"][0]
    for _ in range(2):
        assert api.post(f"/shipments/{shipment['id']}/advance", {}).status_code == 200
    r = api.post(f"/shipments/{shipment['id']}/advance", {"carrier": carrier, "tracking_number": tracking})
    assert r.status_code == 200, r.text


def test_order_confirmation_lists_each_backordered_line_with_its_eta_and_a_link(api, smtp):
    product(api, "TENT", lead=21, name="Two-person tent")
    product(api, "MAT", lead=None, name="Sleeping mat")
    product(api, "STOVE", lead=5, name="Camping stove")
    customer(api)
    stock(api, "TENT", 2)
    stock(api, "STOVE", 4)
    place(api, "SO-1", [("TENT", 5), ("MAT", 1), ("STOVE", 1)])
    assert make_worker(api.store).drain() == 1

    [msg] = smtp.messages
    assert msg["To"] == "alice@example.com"
    assert msg["Subject"] == "Order SO-1 confirmed"
    text = text_of(msg)
    assert f"line 1: 3 x Two-person tent (TENT), expected {day(21)}" in text
    assert "line 2: 1 x Sleeping mat (MAT), expected date not yet known" in text
    assert "line 3" not in text  # the stove was in stock: not back-ordered
    assert "http://127.0.0.1:8000/c/" in text
    html = html_of(msg)
    assert f"3 x Two-person tent (TENT), expected {day(21)}" in html
    assert 'href="http://127.0.0.1:8000/c/' in html
    assert smtp.envelopes == [("orders@oms.localhost", ["alice@example.com"])]
    [row] = outbox_rows(api.store)
    assert (row.kind, row.event_type, row.status, row.attempts) == ("email", "order_confirmation", "delivered", 1)
    assert row.id in str(msg["Message-ID"])


def test_an_order_filled_at_once_is_confirmed_without_a_customer_link(api, smtp):
    product(api, "TENT", lead=21)
    customer(api)
    stock(api, "TENT", 5)
    place(api, "SO-1", [("TENT", 5)])
    make_worker(api.store).drain()
    [msg] = smtp.messages
    assert "/c/" not in text_of(msg)
    assert "5 x Product TENT (TENT)" in text_of(msg)
    assert "back order" not in text_of(msg)


def test_backordered_units_allocated_on_receipt_are_announced(api, smtp):
    product(api, "TENT", lead=21, name="Two-person tent")
    customer(api)
    place(api, "SO-1", [("TENT", 5)])
    po(api, "PO-1", [("TENT", 3, day(10))])
    r = api.post("/receipts", {"grn_number": "GRN-1", "po_number": "PO-1", "lines": [{"sku": "TENT", "qty": 3}]})
    assert r.status_code == 201, r.text
    make_worker(api.store).drain()
    [msg] = smtp.by_subject("on their way")
    text = text_of(msg)
    assert "- 3 x Two-person tent (TENT)" in text
    assert f"- 2 x Two-person tent (TENT), expected {day(21)}" in text  # still waiting, dated by lead time
    assert "3 x Two-person tent" in html_of(msg)


def test_an_eta_moved_later_gives_the_old_and_the_new_date(api, smtp):
    product(api, "TENT", lead=60, name="Two-person tent")
    customer(api)
    po(api, "PO-1", [("TENT", 10, day(5))])
    place(api, "SO-1", [("TENT", 2)])
    assert api.get("/orders/SO-1").json()["lines"][0]["eta"] == day(5)
    r = api.patch("/purchase-orders/PO-1", {"lines": [{"sku": "TENT", "expected_date": day(12)}]})
    assert r.status_code == 200, r.text
    make_worker(api.store).drain()
    [msg] = smtp.by_subject("a new expected date")
    assert f"line 1, Two-person tent (TENT): was expected {day(5)}, now expected {day(12)}" in text_of(msg)
    assert "/c/" in text_of(msg)
    html = html_of(msg)
    assert f"<td>{day(5)}</td><td>{day(12)}</td>" in html


def test_an_eta_moved_earlier_sends_no_notice(api, smtp):
    product(api, "TENT", lead=60)
    customer(api)
    place(api, "SO-1", [("TENT", 2)])
    po(api, "PO-1", [("TENT", 10, day(5))])  # from lead time (day 60) to day 5
    make_worker(api.store).drain()
    assert [m["Subject"] for m in smtp.messages] == ["Order SO-1 confirmed"]


def test_dispatch_gives_carrier_and_tracking_number(api, smtp):
    product(api, "TENT", lead=21, name="Two-person tent")
    customer(api)
    stock(api, "TENT", 2)
    place(api, "SO-1", [("TENT", 2)])
    advance_to_dispatch(api, "SO-1", "DHL", "JD0001234")
    make_worker(api.store).drain()
    [msg] = smtp.by_subject("dispatched")
    text = text_of(msg)
    assert "carrier DHL, tracking number JD0001234" in text
    assert "- 2 x Two-person tent (TENT)" in text
    assert "<b>JD0001234</b>" in html_of(msg)


def test_cancellation_gives_the_reason_and_the_units(api, smtp):
    product(api, "TENT", lead=21, name="Two-person tent")
    customer(api)
    place(api, "SO-1", [("TENT", 4)])
    r = api.post(
        "/orders/SO-1/cancel", {"reason": "supplier discontinued the item", "lines": [{"line_no": 1, "qty": 3}]}
    )
    assert r.status_code == 200, r.text
    make_worker(api.store).drain()
    [msg] = smtp.by_subject("cancelled")
    text = text_of(msg)
    assert "Reason: supplier discontinued the item" in text
    assert "- 3 x Two-person tent (TENT)" in text
    assert "supplier discontinued the item" in html_of(msg)


def test_an_unreachable_smtp_server_is_retried_and_the_message_kept(api, monkeypatch):
    from .conftest import free_port

    monkeypatch.setenv("OMS_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")  # nobody listens there
    product(api, "TENT")
    customer(api)
    place(api, "SO-1", [("TENT", 1)])
    worker = make_worker(api.store, max_attempts=3)
    assert worker.drain() == 3
    [row] = outbox_rows(api.store)
    assert (row.status, row.attempts) == ("dead", 3)
    assert "ConnectionRefusedError" in row.last_error


def test_without_an_smtp_url_mail_is_written_as_eml_files(api, _mail_sink_in_tmp):
    product(api, "TENT", lead=21)
    customer(api)
    place(api, "SO-1", [("TENT", 2)])
    make_worker(api.store).drain()
    [row] = outbox_rows(api.store)
    files = list(_mail_sink_in_tmp.glob("*.eml"))
    assert [f.name for f in files] == [f"{row.id}.eml"]
    content = files[0].read_text()
    assert "Subject: Order SO-1 confirmed" in content
    assert "To: alice@example.com" in content
