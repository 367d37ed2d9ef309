"""The SSRF guard refuses non-public addresses unless allow-listed (logic, fake resolver)."""

from __future__ import annotations

import pytest

from headway.webhooks.ssrf import Guard, UnsafeURL


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


BLOCKED = [
    "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "100.100.100.200", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255",
    "[::1]", "[fe80::1]", "[fc00::1]", "[fd00:ec2::254]", "[::ffff:127.0.0.1]", "[ff02::1]",
]  # fmt: skip


@pytest.mark.parametrize("ip", BLOCKED)
async def test_non_public_addresses_are_refused(ip: str) -> None:
    with pytest.raises(UnsafeURL, match="non-public"):
        await Guard([]).check(f"http://{ip}:8080/hook")


@pytest.mark.parametrize("ip", ["93.184.216.34", "[2606:4700:4700::1111]"])
async def test_public_addresses_pass(ip: str) -> None:
    target = await Guard([]).check(f"https://{ip}/hook")
    assert target.address == ip.strip("[]")
    assert target.port == 443


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.216.34/x", "file:///etc/passwd", "gopher://93.184.216.34/", "http:///x",
        "http://user:pw@93.184.216.34/", "93.184.216.34/hook", "http://93.184.216.34:99999/",
        "https://" + "a" * 2000 + ".com/",
    ],
)  # fmt: skip
async def test_only_plain_http_and_https_urls(url: str) -> None:
    with pytest.raises(UnsafeURL):
        await Guard([]).check(url)


async def test_every_resolved_address_is_checked() -> None:
    guard = Guard([], resolver({"mixed.test": ["93.184.216.34", "10.0.0.7"]}))
    with pytest.raises(UnsafeURL, match=r"10\.0\.0\.7"):
        await guard.check("https://mixed.test/hook")


async def test_the_checked_address_is_the_one_connected_to() -> None:
    guard = Guard([], resolver({"hooks.test": ["93.184.216.34"]}))
    target = await guard.check("https://hooks.test:8443/in?x=1")
    assert target.pinned_url() == "https://93.184.216.34:8443/in?x=1"
    assert target.host_header() == "hooks.test:8443"


async def test_allow_list_by_network_and_by_host_name() -> None:
    table = {"intranet.test": ["10.1.2.3"], "other.test": ["10.9.9.9"]}
    by_net = Guard(["10.1.0.0/16"], resolver(table))
    assert (await by_net.check("http://intranet.test/")).address == "10.1.2.3"
    with pytest.raises(UnsafeURL):
        await by_net.check("http://other.test/")
    by_name = Guard(["other.test"], resolver(table))
    assert (await by_name.check("http://other.test/")).address == "10.9.9.9"
    with pytest.raises(UnsafeURL):
        await by_name.check("http://127.0.0.1/")
