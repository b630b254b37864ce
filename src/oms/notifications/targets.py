"""Where a webhook may be sent: public addresses only, checked when subscribing and again after DNS.

A target is refused when its address is loopback, private (RFC 1918, shared 100.64/10, IPv6 unique
local), link-local, multicast, unspecified, reserved or documentation space, or a cloud metadata
address; IPv4 hidden inside IPv6 (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64, 6to4, Teredo)
is checked as the IPv4 address it carries. A host is read the way the socket layer reads it: a name
whose last label is a number is an IPv4 address in any of inet_aton's spellings (0x7f000001,
2130706433, 127.1, 0177.0.0.1), never a name to look up.

OMS_WEBHOOK_ALLOW_PRIVATE=1 permits loopback and private targets (receivers on the same network);
link-local, metadata, multicast, unspecified and reserved addresses stay refused.

The API checks a URL here at subscribe time; the worker checks every address a name resolves to
and connects only to a checked address (oms.notifications.webhooks).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence

import httpx

from oms.settings import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the name resolves to, as text; raises OSError when it does not resolve.
Resolver = Callable[[str, int], Sequence[str]]

ALLOW_PRIVATE_ENV = "OMS_WEBHOOK_ALLOW_PRIVATE"
# Categories OMS_WEBHOOK_ALLOW_PRIVATE=1 lets through; every other category is always refused.
PERMITTABLE = frozenset({"loopback", "private"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*cidrs: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


_CATEGORIES: tuple[tuple[str, tuple[Network, ...]], ...] = (
    # Metadata first: some of these sit inside ranges the flag would permit.
    (
        "metadata",
        _nets(
            "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
            "169.254.170.2/32",  # AWS ECS task credentials
            "100.100.100.200/32",  # Alibaba Cloud
            "168.63.129.16/32",  # Azure platform (WireServer)
            "fd00:ec2::254/128",  # AWS over IPv6
        ),
    ),
    ("unspecified", _nets("0.0.0.0/8", "::/128")),
    ("loopback", _nets("127.0.0.0/8", "::1/128")),
    ("link-local", _nets("169.254.0.0/16", "fe80::/10")),
    ("multicast", _nets("224.0.0.0/4", "ff00::/8")),
    ("private", _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fec0::/10")),
    (
        "reserved",  # protocol assignments, documentation, benchmarking, class E, discard, the rest of ::/8
        _nets(
            "192.0.0.0/24",
            "192.0.2.0/24",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "240.0.0.0/4",
            "100::/64",
            "2001:db8::/32",
            "::/8",
        ),
    ),
)
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_METADATA_NAMES = ("metadata.google.internal", "metadata.goog", "metadata", "instance-data")
_HOST = re.compile(r"^([a-z0-9_-]+\.?)+$|^[0-9a-f:.]+$")  # letters, digits, hyphens (after IDNA), or IPv6
_NUMBER = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")


class TargetRefused(ValueError):
    """The URL is not one oms sends webhooks to; the message says why, without the address."""


def allow_private() -> bool:
    """OMS_WEBHOOK_ALLOW_PRIVATE=1: loopback and private targets are permitted."""
    return settings().webhook_allow_private


def category(addr: IPAddress) -> str | None:
    """The kind of non-public address this is ("loopback", "private", "metadata", ...), or None if public."""
    embedded = _embedded_ipv4(addr)
    if embedded:  # the IPv4 address carried is where the packets go
        return next((c for c in map(category, embedded) if c), None)
    for name, networks in _CATEGORIES:
        if any(addr.version == n.version and addr in n for n in networks):
            return name
    return None if addr.is_global else "reserved"


def _embedded_ipv4(addr: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(addr, ipaddress.IPv6Address):
        return []
    out = [a for a in (addr.ipv4_mapped, addr.sixtofour) if a is not None]
    if addr.teredo:
        out += list(addr.teredo)
    as_int = int(addr)
    if as_int >> 32 == 0 and as_int > 1:  # IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks)
        out.append(ipaddress.IPv4Address(as_int))
    if any(addr in n for n in _NAT64):
        out.append(ipaddress.IPv4Address(as_int & 0xFFFFFFFF))
    return out


def check_address(addr: IPAddress, allow: bool | None = None) -> None:
    """Raise TargetRefused unless the address may receive webhooks."""
    kind = category(addr)
    if kind is None:
        return
    if kind in PERMITTABLE and (allow_private() if allow is None else allow):
        return
    hint = f" ({ALLOW_PRIVATE_ENV}=1 permits it)" if kind in PERMITTABLE else ""
    raise TargetRefused(f"refused target: {kind} address{hint}")


def literal_address(host: str) -> IPAddress | None:
    """The address a host names by itself (IPv6, or IPv4 in any inet_aton spelling), else None (a name).

    A host whose last label is a number is an address or invalid, never a name: that is how
    browsers and the C library read it, so `0x7f000001` cannot slip past as a "name"."""
    host = host.strip("[]")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError as exc:
            raise TargetRefused("the host is not a valid IPv6 address") from exc
    labels = host.removesuffix(".").split(".")
    if not _NUMBER.match(labels[-1]):
        return None
    return ipaddress.IPv4Address(_inet_aton(labels))


def _inet_aton(labels: list[str]) -> int:
    bad = TargetRefused("the host is not a valid IPv4 address")
    if len(labels) > 4 or not all(_NUMBER.match(p) for p in labels):
        raise bad
    values = []
    for p in labels:
        if p[:2].lower() == "0x":
            values.append(int(p[2:] or "0", 16))
        elif len(p) > 1 and p.startswith("0"):
            if not set(p) <= set("01234567"):
                raise bad
            values.append(int(p, 8))
        else:
            values.append(int(p))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        raise bad
    out = last
    for i, v in enumerate(head):
        out |= v << (8 * (3 - i))
    return out


def host_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL as httpx reads it (the client that sends the webhook)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise TargetRefused("not a valid URL") from exc
    if parsed.scheme not in ("http", "https"):
        raise TargetRefused("must be an http:// or https:// URL")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise TargetRefused("the URL names no host")
    if not _HOST.match(host):
        raise TargetRefused("the URL's host is not a host name or address")
    return parsed.scheme, host, parsed.port or (443 if parsed.scheme == "https" else 80)


def check_url(url: str, allow: bool | None = None) -> None:
    """What can be known without DNS: the URL's own address, or a name that always means this machine
    or a metadata service. Raises TargetRefused; the worker checks the resolved addresses again."""
    _, host, _ = host_of(url)
    name = host.removesuffix(".")
    if name in _METADATA_NAMES:
        raise TargetRefused("refused target: metadata service")
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        check_address(ipaddress.IPv4Address("127.0.0.1"), allow)
        return
    addr = literal_address(host)
    if addr is not None:
        check_address(addr, allow)


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for a name (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_checked(host: str, port: int, resolver: Resolver, allow: bool | None = None) -> list[IPAddress]:
    """Every address the host stands for, each checked; refused if any one of them is not permitted
    (a name that points both outside and inside is refused, not half-trusted)."""
    addr = literal_address(host)
    if addr is not None:
        check_address(addr, allow)
        return [addr]
    name = host.lower().removesuffix(".")
    if name in _METADATA_NAMES:
        raise TargetRefused("refused target: metadata service")
    found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(host, port)]
    if not found:
        raise OSError("the name did not resolve")
    for a in found:
        check_address(a, allow)
    return found
