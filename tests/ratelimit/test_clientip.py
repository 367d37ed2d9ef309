"""Client addresses: forwarding headers are believed only from trusted proxies."""

from __future__ import annotations

from headway.ratelimit import ClientIP


def h(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


def test_untrusted_peer_cannot_spoof() -> None:
    ip = ClientIP(trusted=["10.0.0.0/8"])
    spoof = h(x_forwarded_for="1.2.3.4", forwarded="for=5.6.7.8")
    assert ip.resolve("203.0.113.9", spoof) == "203.0.113.9"
    assert ClientIP().resolve("203.0.113.9", spoof) == "203.0.113.9"


def test_trusted_proxy_rightmost_untrusted_hop_wins() -> None:
    ip = ClientIP(trusted=["10.0.0.0/8"])
    # the client wrote "1.2.3.4" itself; the proxy appended the real peer
    headers = h(x_forwarded_for="1.2.3.4, 198.51.100.7, 10.0.0.2")
    assert ip.resolve("10.0.0.1", headers) == "198.51.100.7"
    assert ip.resolve("10.0.0.1", h(x_forwarded_for="198.51.100.7")) == "198.51.100.7"


def test_a_fresh_spoofed_value_does_not_give_a_fresh_key() -> None:
    ip = ClientIP(trusted=["10.0.0.1"])
    keys = {ip.resolve("10.0.0.1", h(x_forwarded_for=f"9.9.9.{i}, 198.51.100.7")) for i in range(5)}
    assert keys == {"198.51.100.7"}


def test_forwarded_header_preferred_with_ports_and_ipv6() -> None:
    ip = ClientIP(trusted=["10.0.0.0/8"])
    headers = h(
        forwarded='for="[2001:db8::1]:4711";proto=https, for=10.0.0.3', x_forwarded_for="7.7.7.7"
    )
    assert ip.resolve("10.0.0.1", headers) == "2001:db8::/64"
    assert ip.resolve("10.0.0.1", h(forwarded="for=192.0.2.60:8080")) == "192.0.2.60"


def test_ipv6_grouped_by_prefix_and_garbage_kept_short() -> None:
    assert ClientIP().resolve("2001:db8::1", []) == "2001:db8::/64"
    assert ClientIP(ipv6_prefix=128).resolve("2001:db8::1", []) == "2001:db8::1"
    assert ClientIP().resolve(None, []) == "unknown"
    ip = ClientIP(trusted=["127.0.0.1"])
    assert ip.resolve("127.0.0.1", h(x_forwarded_for="x" * 500)) == "x" * 64


def test_all_hops_trusted_uses_the_leftmost() -> None:
    ip = ClientIP(trusted=["10.0.0.0/8"])
    assert ip.resolve("10.0.0.1", h(x_forwarded_for="10.1.1.1, 10.2.2.2")) == "10.1.1.1"
