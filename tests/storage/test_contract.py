"""Every storage backend keeps the contract of ``headway.storage.base`` (file and s3)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest

from headway.storage import ObjectNotFound, StorageBackend

KEY = "tenants/acme/docs/0123456789abcdef0123456789abcdef-a.txt"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def failing(after: bytes) -> AsyncIterator[bytes]:
    yield after
    raise RuntimeError("client went away")


async def read(backend: StorageBackend, key: str) -> bytes:
    return b"".join([c async for c in await backend.get(key)])


async def test_put_get_head(backend: StorageBackend) -> None:
    info = await backend.put(
        KEY, chunks(b"hello ", b"world"), content_type="text/plain", metadata={"filename": "a"}
    )
    assert info.size == 11 and info.etag
    assert await read(backend, KEY) == b"hello world"
    head = await backend.head(KEY)
    assert head is not None
    assert (head.size, head.content_type, head.metadata["filename"]) == (11, "text/plain", "a")


async def test_missing_key(backend: StorageBackend) -> None:
    with pytest.raises(ObjectNotFound):
        await backend.get(KEY)
    assert await backend.head(KEY) is None
    assert await backend.delete(KEY) is False


async def test_delete(backend: StorageBackend) -> None:
    await backend.put(KEY, chunks(b"x"), content_type="text/plain", metadata={})
    assert await backend.delete(KEY) is True
    assert await backend.head(KEY) is None


async def test_list_by_prefix(backend: StorageBackend) -> None:
    keys = [
        "tenants/acme/docs/1-a.txt",
        "tenants/acme/docs/2-b.txt",
        "tenants/acme/img/3-c.png",
        "tenants/acmex/docs/4-d.txt",
    ]
    for key in keys:
        await backend.put(key, chunks(b"12"), content_type="text/plain", metadata={})
    found = sorted([i.key async for i in backend.list("tenants/acme/")])
    assert found == keys[:3]
    assert [i.key async for i in backend.list("tenants/acme/docs/2")] == [keys[1]]
    assert {i.size async for i in backend.list("tenants/")} == {2}


async def test_failed_put_leaves_nothing(backend: StorageBackend) -> None:
    with pytest.raises(RuntimeError):
        await backend.put(KEY, failing(b"partial"), content_type="text/plain", metadata={})
    assert await backend.head(KEY) is None
    assert [i async for i in backend.list("tenants/")] == []


async def test_failed_put_keeps_previous_object(backend: StorageBackend) -> None:
    await backend.put(KEY, chunks(b"old"), content_type="text/plain", metadata={})
    with pytest.raises(RuntimeError):
        await backend.put(KEY, failing(b"new"), content_type="text/plain", metadata={})
    assert await read(backend, KEY) == b"old"


async def test_multipart_sized_object(backend: StorageBackend) -> None:
    """Larger than one chunk (an S3 multipart upload): bytes and size survive."""
    part = os.urandom(1024 * 1024)
    info = await backend.put(KEY, chunks(*[part] * 12), content_type="x/y", metadata={})
    assert info.size == 12 * len(part)
    data = await read(backend, KEY)
    assert len(data) == info.size and data[: len(part)] == part


async def test_presign_is_a_url(backend: StorageBackend) -> None:
    await backend.put(KEY, chunks(b"signed"), content_type="text/plain", metadata={})
    url = await backend.presign(KEY, "GET", 60)
    assert KEY.rsplit("/", 1)[-1] in url
    if backend.scheme == "s3":  # S3 serves its own signed URLs: fetch it for real
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).content == b"signed"


async def test_ping(backend: StorageBackend) -> None:
    await backend.ping()
