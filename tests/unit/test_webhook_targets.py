"""Where a webhook may go: every spelling of an inner address is read as the address it is."""

from __future__ import annotations

import ipaddress

import pytest

from oms.notifications import targets
from oms.notifications.targets import TargetRefused, category, check_url, literal_address, resolve_checked


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
    ],
)
def test_an_address_in_any_inet_aton_spelling_is_read_as_that_address(host, address):
    assert literal_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host", ["4294967296", "1.2.3.256", "1.2.65536", "08.0.0.1", "0x100.1.1.1", "1.2.3.4.5", "a.1"]
)
def test_a_host_ending_in_a_number_that_is_no_address_is_refused_not_looked_up(host):
    if host == "a.1":
        with pytest.raises(TargetRefused):  # the last label is a number: an address or nothing
            literal_address(host)
        return
    with pytest.raises(TargetRefused):
        literal_address(host)


def test_names_are_names():
    assert literal_address("hooks.example.net") is None
    assert literal_address("1.example") is None  # only the last label decides


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.5", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("100.64.0.1", "private"),
        ("fd12::1", "private"),
        ("169.254.169.254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "reserved"),
        ("2001:db8::1", "reserved"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("::127.0.0.1", "loopback"),  # IPv4-compatible
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64
        ("2002:7f00:1::", "loopback"),  # 6to4
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_each_inner_address_has_its_category_and_public_ones_none(address, kind):
    assert category(ipaddress.ip_address(address)) == kind


def test_the_flag_permits_loopback_and_private_only():
    for url in ("http://127.0.0.1:9/h", "http://[::1]/h", "http://10.0.0.1/h", "http://localhost/h"):
        with pytest.raises(TargetRefused, match="OMS_WEBHOOK_ALLOW_PRIVATE=1 permits it"):
            check_url(url, allow=False)
        check_url(url, allow=True)
    for url in ("http://169.254.169.254/", "http://metadata.google.internal/", "http://[fe80::1]/", "http://0/"):
        with pytest.raises(TargetRefused):
            check_url(url, allow=True)


def test_the_flag_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv(targets.ALLOW_PRIVATE_ENV, raising=False)
    with pytest.raises(TargetRefused):
        check_url("http://127.0.0.1/h")
    monkeypatch.setenv(targets.ALLOW_PRIVATE_ENV, "1")
    check_url("http://127.0.0.1/h")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "http:///nohost", "http://exa mple.com/", "http://[::1%25lo]/", "javascript:alert(1)"]
)
def test_what_is_not_an_http_url_with_a_host_is_refused(url):
    with pytest.raises(TargetRefused):
        check_url(url, allow=True)


def test_a_name_is_refused_when_any_of_its_addresses_is_inner():
    def resolver(host, port):
        return ["93.184.215.14", "10.0.0.7"]

    with pytest.raises(TargetRefused, match="private"):
        resolve_checked("hooks.example.net", 443, resolver, allow=False)
    assert [str(a) for a in resolve_checked("hooks.example.net", 443, resolver, allow=True)] == [
        "93.184.215.14",
        "10.0.0.7",
    ]


def test_an_address_needs_no_resolver():
    def resolver(host, port):
        raise AssertionError("an address is not looked up")

    assert [str(a) for a in resolve_checked("0x08080808", 80, resolver, allow=False)] == ["8.8.8.8"]
