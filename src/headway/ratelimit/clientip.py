"""The client's address, believing forwarding headers only from trusted proxies.

The peer address of the connection is the client unless the peer is a configured proxy.
Then ``Forwarded`` (RFC 7239, preferred) or ``X-Forwarded-For`` is read from the right:
each hop a trusted proxy appended is skipped, and the first address not in the trusted
set is the client. Entries left of it were written by the client itself and are never
used, so a client cannot pick its own limit key by sending the header. IPv6 clients are
grouped by prefix (default /64: one host owns a whole /64).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ClientIP:
    """Resolves the client key of a request from its peer and headers."""

    def __init__(self, trusted: Sequence[str] = (), ipv6_prefix: int = 64) -> None:
        self.trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(item, strict=False) for item in trusted
        )
        self.ipv6_prefix = ipv6_prefix
        self._is_trusted = lru_cache(maxsize=4096)(self._check_trusted)
        self._key = lru_cache(maxsize=65536)(self._make_key)

    def _check_trusted(self, host: str) -> bool:
        address = _parse(host)
        return address is not None and any(address in net for net in self.trusted)

    def _make_key(self, host: str) -> str:
        address = _parse(host)
        if address is None:
            return host[:64] or "unknown"
        if address.version == 6 and self.ipv6_prefix < 128:
            net = ipaddress.ip_network(f"{address}/{self.ipv6_prefix}", strict=False)
            return str(net)
        return str(address)

    def resolve(self, peer: str | None, headers: Iterable[tuple[bytes, bytes]]) -> str:
        """The rate-limit key of the client (an address, or an IPv6 network)."""
        host = peer or "unknown"
        if self.trusted and self._is_trusted(host):
            hops = _forwarded_hops(headers)
            for hop in reversed(hops):
                host = hop
                if not self._is_trusted(hop):
                    break
        return self._key(host)


def _forwarded_hops(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    forwarded: list[str] = []
    xff: list[str] = []
    for name, value in headers:
        if name == b"forwarded":
            forwarded.extend(_forwarded_for(value.decode("latin-1")))
        elif name == b"x-forwarded-for":
            xff.extend(p.strip() for p in value.decode("latin-1").split(",") if p.strip())
    return forwarded or xff


def _forwarded_for(value: str) -> list[str]:
    """``for=`` values of an RFC 7239 header, brackets, quotes and ports removed."""
    hops = []
    for element in value.split(","):
        for pair in element.split(";"):
            name, _, raw = pair.strip().partition("=")
            if name.lower() == "for":
                hops.append(_strip_node(raw.strip().strip('"')))
    return hops


def _strip_node(node: str) -> str:
    if node.startswith("["):  # "[2001:db8::1]:4711"
        return node[1:].partition("]")[0]
    if node.count(":") == 1:  # "192.0.2.1:4711"
        return node.partition(":")[0]
    return node


def _parse(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


__all__ = ["ClientIP"]
