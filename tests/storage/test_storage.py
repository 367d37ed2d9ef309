"""The Storage API over both backends: keys, tenants, stats, signed URLs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from headway.storage import InvalidKey, ObjectNotFound, Storage

Pair = tuple[FastAPI, Storage]


async def body(storage: Storage, key: str, tenant: str | None = None) -> bytes:
    return b"".join([c async for c in await storage.download(key, tenant=tenant)])


async def test_upload_download_roundtrip(hw_storage: Pair) -> None:
    _, storage = hw_storage
    info = await storage.upload("acme", "docs", "report.txt", b"abc", content_type="text/plain")
    assert info["key"].startswith("tenants/acme/docs/") and info["key"].endswith("-report.txt")
    assert (info["size"], info["filename"], info["cdn_url"]) == (3, "report.txt", None)
    assert info["etag"] and info["url"]
    assert await body(storage, info["key"], "acme") == b"abc"
    assert await storage.exists(info["key"], tenant="acme")


async def test_stream_upload(hw_storage: Pair) -> None:
    _, storage = hw_storage

    async def gen() -> AsyncIterator[bytes]:
        for i in range(5):
            yield bytes([i]) * 1000

    info = await storage.upload("acme", "docs", "s.bin", gen())
    assert info["size"] == 5000
    assert len(await body(storage, info["key"])) == 5000


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..",
        "a/../../b",
        "x\x00y.txt",
        "\x1b[31mred\n.txt",
        "/abs/path",
        "..\\..\\win.ini",
        "tenants/other/docs/x",
        "é" * 400,
        "",
    ],
)
async def test_hostile_names_stay_in_tenant(hw_storage: Pair, name: str) -> None:
    _, storage = hw_storage
    info = await storage.upload("acme", "docs", name, b"x")
    key = info["key"]
    assert key.startswith("tenants/acme/docs/") and key.count("/") == 3
    assert ".." not in key and "\x00" not in key and not any(ord(c) < 32 for c in key)
    assert [f["key"] for f in await storage.list("acme", "docs")] == [key]


@pytest.mark.parametrize("tenant", ["..", "a/b", "", "x\x00", ".hidden"])
async def test_bad_tenant_or_category(hw_storage: Pair, tenant: str) -> None:
    _, storage = hw_storage
    with pytest.raises(InvalidKey):
        await storage.upload(tenant, "docs", "a.txt", b"x")
    with pytest.raises(InvalidKey):
        await storage.upload("acme", tenant, "a.txt", b"x")


async def test_other_tenants_key_is_not_found(hw_storage: Pair) -> None:
    _, storage = hw_storage
    info = await storage.upload("acme", "docs", "a.txt", b"secret")
    with pytest.raises(ObjectNotFound):
        await storage.download(info["key"], tenant="globex")
    with pytest.raises(ObjectNotFound):
        await storage.delete(info["key"], tenant="globex")
    with pytest.raises(ObjectNotFound):
        await storage.signed_url(info["key"], tenant="globex")
    assert not await storage.exists(info["key"], tenant="globex")
    assert await storage.list("globex") == []
    with pytest.raises(InvalidKey):
        await storage.download("tenants/acme/../globex/docs/x")


async def test_list_category_and_prefix(hw_storage: Pair) -> None:
    _, storage = hw_storage
    a = await storage.upload("acme", "docs", "a.txt", b"1")
    await storage.upload("acme", "img", "b.png", b"22")
    assert len(await storage.list("acme")) == 2
    assert [f["key"] for f in await storage.list("acme", "docs")] == [a["key"]]
    uid = a["key"].rsplit("/", 1)[1][:8]
    assert [f["key"] for f in await storage.list("acme", "docs", uid)] == [a["key"]]
    with pytest.raises(InvalidKey):
        await storage.list("acme", "docs", "../")


async def test_stats_incremental_and_recount(hw_storage: Pair) -> None:
    _, storage = hw_storage
    a = await storage.upload("acme", "docs", "a.txt", b"12345")
    await storage.upload("acme", "img", "b.png", b"123")
    await storage.upload("globex", "docs", "c.txt", b"1")
    stats = await storage.stats("acme")
    assert stats["acme"]["files"] == 2 and stats["acme"]["bytes"] == 8
    assert stats["acme"]["categories"]["docs"] == {"files": 1, "bytes": 5}
    assert await storage.delete(a["key"], tenant="acme")
    assert not await storage.delete(a["key"], tenant="acme")
    after = (await storage.stats())["acme"]
    assert (after["files"], after["bytes"]) == (1, 3)
    await storage.stats_store.add("acme", "img", 7, 700)  # drift
    rebuilt = await storage.recount()
    assert rebuilt["acme"]["files"] == 1 and rebuilt["acme"]["bytes"] == 3
    assert rebuilt["globex"]["files"] == 1


async def test_failed_upload_changes_nothing(hw_storage: Pair) -> None:
    _, storage = hw_storage

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise ConnectionError("client disconnected")

    with pytest.raises(ConnectionError):
        await storage.upload("acme", "docs", "a.txt", broken())
    assert await storage.list("acme") == []
    assert await storage.stats("acme") == {}


async def test_public_upload_has_cdn_url(hw_storage: Pair) -> None:
    _, storage = hw_storage
    storage.settings.cdn_base_url = "https://cdn.example.com/"
    info = await storage.upload("acme", "img", "a.png", b"x", public=True)
    assert info["cdn_url"] == f"https://cdn.example.com/{info['key']}"
    private = await storage.upload("acme", "img", "b.png", b"x")
    assert private["cdn_url"] is None


async def test_signed_url_checks(hw_storage: Pair) -> None:
    _, storage = hw_storage
    info = await storage.upload("acme", "docs", "a.txt", b"x")
    with pytest.raises(InvalidKey):
        await storage.signed_url(info["key"], expires_in=0)
    with pytest.raises(InvalidKey):
        await storage.signed_url(info["key"], method="DELETE")  # type: ignore[arg-type]
    missing = info["key"][:-5] + "b.txt"
    with pytest.raises(ObjectNotFound):
        await storage.signed_url(missing)


async def test_readiness_and_metrics(hw_storage: Pair) -> None:
    from prometheus_client import CollectorRegistry

    _, storage = hw_storage
    registry = CollectorRegistry()
    storage.register_metrics(registry)
    await storage.upload("acme", "docs", "a.txt", b"abc")
    await storage.refresh_metrics()
    ready = await storage.check_ready()
    assert ready is not None and ready.ok
    assert (
        registry.get_sample_value(
            "headway_storage_operations_total", {"op": "upload", "outcome": "ok"}
        )
        == 1
    )
    assert registry.get_sample_value("headway_storage_bytes_total", {"direction": "in"}) == 3
    assert registry.get_sample_value("headway_storage_stored", {"unit": "bytes"}) == 3


# -- file:// signed URLs, served by headway's route ----------------------------------


@pytest.mark.parametrize("storage_kind", ["file"], indirect=True)
async def test_file_signed_urls(hw_storage: Pair) -> None:
    app, storage = hw_storage
    info = await storage.upload("acme", "docs", "a.txt", b"payload", content_type="text/plain")
    url = await storage.signed_url(info["key"], expires_in=60)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ok = await client.get(url)
        assert ok.status_code == 200 and ok.content == b"payload"
        assert ok.headers["content-type"].startswith("text/plain")
        tampered = await client.get(url.replace("sig=", "sig=0"))
        assert tampered.status_code == 403 and tampered.json()["error"]["code"] == "forbidden"
        other = await client.get(url.replace("a.txt", "b.txt"))
        assert other.status_code == 403
        longer = url.replace("expires=", "expires=9")
        assert (await client.get(longer)).status_code == 403
        assert (await client.put(url, content=b"x")).status_code == 403  # GET-only signature
        put_url = await storage.signed_url(info["key"], 60, "PUT")
        assert (await client.put(put_url, content=b"replaced!")).status_code == 200
        assert (await client.get(url)).content == b"replaced!"
    assert (await storage.stats("acme"))["acme"]["bytes"] == 9


@pytest.mark.parametrize("storage_kind", ["file"], indirect=True)
async def test_file_signed_url_expires(hw_storage: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    app, storage = hw_storage
    info = await storage.upload("acme", "docs", "a.txt", b"payload")
    url = await storage.signed_url(info["key"], expires_in=1)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 5)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get(url)).status_code == 403
