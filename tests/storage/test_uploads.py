"""The streaming multipart reader: size limit (413), sniffed content type (415)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from headway.storage.uploads import check_type, read_upload, sniff
from headway.web.errors import HTTPError, install_error_handlers

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 600
ALLOWED = {"image/png", "text/csv", "application/pdf"}


def make_app(seen: list[int]) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/up")
    async def up(request: Request) -> dict[str, object]:
        incoming = await read_upload(request, max_bytes=2000, allowed_types=ALLOWED)
        data = b"".join([c async for c in incoming.chunks])
        seen.append(len(data))
        return {
            "name": incoming.filename,
            "type": incoming.content_type,
            "size": len(data),
            "fields": incoming.fields,
        }

    return app


async def post(app: FastAPI, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post("/up", **kwargs)  # type: ignore[arg-type]


async def test_accepts_matching_file() -> None:
    seen: list[int] = []
    files = {"file": ("a.png", PNG, "image/png")}
    r = await post(make_app(seen), files=files, data={"title": "hi"})
    assert r.status_code == 200
    assert r.json() == {
        "name": "a.png",
        "type": "image/png",
        "size": len(PNG),
        "fields": {"title": "hi"},
    }


async def test_csv_is_text() -> None:
    r = await post(make_app([]), files={"file": ("a.csv", b"a,b\n1,2\n", "text/csv")})
    assert r.status_code == 200 and r.json()["type"] == "text/csv"


@pytest.mark.parametrize(
    ("content", "declared"),
    [(b"%PDF-1.7 ...", "image/png"), (PNG, "text/csv"), (b"GIF89a...", "image/gif")],
)
async def test_mismatch_is_415(content: bytes, declared: str) -> None:
    r = await post(make_app([]), files={"file": ("a.bin", content, declared)})
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"


async def test_oversized_by_header_is_413_before_reading() -> None:
    read: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        read.append(1)
        yield b"x" * 100

    headers = {"content-type": "multipart/form-data; boundary=XX", "content-length": "10000000"}
    r = await post(make_app([]), content=body(), headers=headers)
    assert r.status_code == 413 and read == []


async def test_oversized_stream_is_413() -> None:
    seen: list[int] = []
    big = PNG + b"\x00" * 5000
    r = await post(make_app(seen), files={"file": ("a.png", big, "image/png")})
    assert r.status_code == 413 and seen == []


async def test_not_multipart() -> None:
    r = await post(make_app([]), content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 415


def test_sniff_and_check() -> None:
    assert sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff(b"PK\x03\x04") == "application/zip"
    assert sniff(b"\xff\xfe\x00bin") is None
    with pytest.raises(HTTPError):
        check_type("image/jpeg", b"\xff\xd8\xff", {"image/png"})
