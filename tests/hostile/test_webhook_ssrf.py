"""Webhook SSRF, on both stores: a subscription cannot point at this machine, the private network,
link-local or metadata addresses, however the address is spelt, neither when subscribing nor after
DNS at delivery, where the worker refuses before opening a socket; redirects are not followed; a
failed attempt reads the same whatever the network said, so the deliveries list is no port scanner.

No test connects anywhere but loopback: names resolve through a stand-in for the system resolver,
and a connection to any other address is refused by the test before it is made.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from ..notify.conftest import Receiver, free_port, make_worker, outbox_rows
from .common import snapshot
from .hooks import ALLOW, deliveries, isolate, one_order, subscribe


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


INNER_URLS = [
    "http://127.0.0.1:8000/hook",
    "http://127.1/hook",
    "http://0x7f000001/hook",
    "http://2130706433/hook",
    "http://0x7f.0.0.1/hook",
    "http://017700000001/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://[0:0:0:0:0:ffff:a00:1]/hook",
    "http://localhost:8000/hook",
    "http://api.localhost/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://[fd12:3456::1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://0xa9fea9fe/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/latest/",
    "http://[fd00:ec2::254]/latest/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://100.100.100.200/latest/",
    "http://[fe80::1]/hook",
    "http://224.0.0.1/hook",
    "http://0.0.0.0:8000/hook",
    "http://0/hook",
    "http://[::]/hook",
    "http://[64:ff9b::a9fe:a9fe]/hook",
]
ALWAYS_REFUSED = ["http://169.254.169.254/latest/", "http://[fd00:ec2::254]/", "http://[fe80::1]/", "http://0.0.0.0/"]


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Names resolve from a table (hooks.example.net is 10.0.0.1; any other name does not resolve) and
    a connection to anything but loopback is recorded and refused before it is made."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    seen: dict[str, list[Any]] = {"lookups": [], "connects": []}
    table = {"hooks.example.net": "10.0.0.1"}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        seen["lookups"].append(name)
        if name in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[name], int(port or 0)))]
        try:  # an address needs no lookup; a name other than the table's is unknown here
            return real_getaddrinfo(host, port, *args, **(kw | {"flags": socket.AI_NUMERICHOST}))
        except socket.gaierror:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None

    def connect(sock: socket.socket, address: Any) -> Any:
        seen["connects"].append(address)
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1"):
            raise ConnectionRefusedError(111, "refused by the test before connecting")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


def test_inner_addresses_in_any_spelling_are_refused_when_subscribing_and_nothing_is_stored(api, monkeypatch):
    before = snapshot(api.store)
    for url in INNER_URLS:
        r = api.post("/webhooks", {"url": url, "event_types": ["*"]})
        assert r.status_code == 422, (url, r.text)
        assert [e["field"] for e in r.json()["errors"]] == ["url"], url
    assert snapshot(api.store) == before
    subscribe(api, "https://hooks.example.net/h?token=t")  # a name: checked again after DNS, at delivery

    monkeypatch.setenv(ALLOW, "1")  # on-premise receivers: loopback and private are permitted ...
    subscribe(api, "http://127.0.0.1:8000/hook")
    subscribe(api, "http://10.0.0.1/hook")
    for url in ALWAYS_REFUSED:  # ... but never link-local, metadata or unspecified addresses
        assert api.post("/webhooks", {"url": url, "event_types": ["*"]}).status_code == 422, url


def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery_before_any_socket_opens(api, network):
    sub = subscribe(api, "http://hooks.example.net/hook")  # a public-looking name, resolving to 10.0.0.1
    one_order(api)
    make_worker(api.store, max_attempts=1).drain()
    assert "hooks.example.net" in network["lookups"]
    assert network["connects"] == []
    [d] = deliveries(api, sub["id"])
    assert (d["ok"], d["status_code"]) == (False, None)
    assert d["error"].startswith("refused target: private address"), d["error"]
    [row] = outbox_rows(api.store, kind="webhook")
    assert row.status == "dead"


def test_a_redirect_is_not_followed_so_the_signed_request_goes_nowhere_else(api, monkeypatch):
    monkeypatch.setenv(ALLOW, "1")
    inner = Receiver()
    bouncer = Receiver(status=302, location=inner.url)
    try:
        sub = subscribe(api, bouncer.url)
        one_order(api)
        make_worker(api.store, max_attempts=1).drain()
        assert len(bouncer.requests) == 1
        assert inner.requests == []
        [d] = deliveries(api, sub["id"])
        assert (d["ok"], d["status_code"], d["error"]) == (False, 302, "HTTP 302: redirects are not followed")
    finally:
        bouncer.close()
        inner.close()


def test_a_failed_attempt_reads_the_same_whatever_the_network_said(api, monkeypatch, network):
    """Closed port, unknown name: fixed words, no host, port or system message to scan with."""
    monkeypatch.setenv(ALLOW, "1")
    closed = free_port()
    refused = subscribe(api, f"http://127.0.0.1:{closed}/hook")
    unknown = subscribe(api, "http://no-such-host.example.org:8443/hook")
    one_order(api)
    make_worker(api.store, max_attempts=1).drain()
    [d1] = deliveries(api, refused["id"])
    [d2] = deliveries(api, unknown["id"])
    assert (d1["error"], d2["error"]) == ("could not connect", "the host name did not resolve")
    for d in (d1, d2):
        assert not any(s in d["error"] for s in (str(closed), "127.0.0.1", "8443", "example", "Errno", "refused"))
    notes = [n["last_error"] for n in api.get("/notifications", params={"kind": "webhook"}).json()["items"]]
    assert sorted(notes) == ["could not connect", "the host name did not resolve"]
    assert [c for c in network["connects"] if c[0] != "127.0.0.1"] == []
