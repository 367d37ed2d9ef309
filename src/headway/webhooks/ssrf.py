"""SSRF guard: webhook URLs must reach the public internet, not the service's own network.

A URL is checked when it is registered and again before every delivery: the host is
resolved, *every* address it resolves to must be public, and the request is then sent
to the address that was checked (the URL's host goes in ``Host`` and in TLS SNI), so a
DNS answer that changes between the check and the connection (DNS rebinding) cannot
send the request elsewhere. ``HEADWAY_WEBHOOKS_ALLOW_HOSTS`` exempts host names, IPs
or networks (a receiver on 127.0.0.1 in tests, a partner on a private network).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
MAX_URL = 2000
# Cloud metadata services not covered by "not global" (all others are link-local).
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254"))


class UnsafeURL(ValueError):
    """A webhook URL that is malformed, not http(s), or reaches a non-public address."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for (``url``)."""

    url: str
    host: str
    port: int
    address: str

    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address."""
        parts = urlsplit(self.url)
        ip = f"[{self.address}]" if ":" in self.address else self.address
        return urlunsplit(parts._replace(netloc=f"{ip}:{self.port}"))

    def host_header(self) -> str:
        parts = urlsplit(self.url)
        return parts.netloc.rpartition("@")[2]


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeURL(f"host {host!r} does not resolve") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def blocked(ip: IP) -> bool:
    """True for loopback, private, link-local, multicast, reserved and metadata addresses."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_unspecified
        or ip in _METADATA
    )


def parse_url(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL without credentials; UnsafeURL otherwise."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise UnsafeURL(f"a webhook URL is 1-{MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"invalid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("a webhook URL must be http:// or https://")
    if not parts.hostname:
        raise UnsafeURL("a webhook URL needs a host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("a webhook URL must not hold credentials (use the signing secret)")
    return parts.hostname.lower().rstrip("."), port or (443 if parts.scheme == "https" else 80)


class Guard:
    """Checks URLs against the allow-list; ``resolver`` is swappable (tests, custom DNS)."""

    def __init__(self, allow: Sequence[str], resolver: Resolver | None = None) -> None:
        self.allow_hosts: set[str] = set()
        self.allow_nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow:
            try:
                self.allow_nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.allow_hosts.add(entry.lower().rstrip("."))
        self.resolver: Resolver = resolver or system_resolver

    def allowed(self, ip: IP) -> bool:
        return not blocked(ip) or any(ip in net for net in self.allow_nets)

    async def check(self, url: str) -> Target:
        """Resolve ``url``'s host and check every address; the first one is connected to."""
        host, port = parse_url(url)
        try:
            addresses = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            found = await self._resolve(host, port)
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in found]
        if not addresses:
            raise UnsafeURL(f"host {host!r} does not resolve")
        if host not in self.allow_hosts:
            for ip in addresses:
                if not self.allowed(ip):
                    raise UnsafeURL(
                        f"{host!r} resolves to {ip}, a non-public address "
                        "(allow it with HEADWAY_WEBHOOKS_ALLOW_HOSTS)"
                    )
        return Target(url, host, port, str(addresses[0]))

    async def _resolve(self, host: str, port: int) -> list[str]:
        try:
            return await self.resolver(host, port)
        except UnsafeURL:
            raise
        except OSError as exc:
            raise UnsafeURL(f"host {host!r} does not resolve: {exc}") from None
