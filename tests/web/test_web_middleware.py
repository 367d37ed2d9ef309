from __future__ import annotations

import asyncio
import gzip
import hashlib
import zlib
from collections.abc import AsyncIterator

import brotli
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from headway.web import CompressionMiddleware, ETagMiddleware

BIG = ("headway scales async services. " * 200).encode()  # 6400 bytes, very compressible
CHUNKS = [b"first line of the stream\n" * 20, b"second part\n" * 50, b"the end\n"]


async def big(request: Request) -> Response:
    return Response(BIG, media_type="text/plain", headers={"Cache-Control": "max-age=60"})


async def small(request: Request) -> Response:
    return PlainTextResponse("hi")


async def image(request: Request) -> Response:
    return Response(BIG, media_type="image/png")


async def svg(request: Request) -> Response:
    return Response(BIG, media_type="image/svg+xml")


async def encoded(request: Request) -> Response:
    return Response(
        gzip.compress(BIG), media_type="text/plain", headers={"Content-Encoding": "gzip"}
    )


async def chunks() -> AsyncIterator[bytes]:
    for chunk in CHUNKS:
        yield chunk


async def stream(request: Request) -> Response:
    return StreamingResponse(chunks(), media_type="text/plain")


async def events(request: Request) -> Response:
    return StreamingResponse(chunks(), media_type="text/event-stream")


async def tagged(request: Request) -> Response:
    return Response(BIG, media_type="text/plain", headers={"ETag": '"v1"'})


async def missing(request: Request) -> Response:
    return Response(BIG, status_code=404, media_type="text/plain")


async def varying(request: Request) -> Response:
    return Response(BIG, media_type="text/plain", headers={"Vary": "Cookie"})


async def counter(request: Request) -> Response:
    return PlainTextResponse(request.query_params.get("v", "0"))


inner = Starlette(
    routes=[
        Route("/big", big, methods=["GET", "POST"]),
        Route("/small", small),
        Route("/image", image),
        Route("/svg", svg),
        Route("/encoded", encoded),
        Route("/stream", stream),
        Route("/events", events),
        Route("/tagged", tagged),
        Route("/missing", missing),
        Route("/varying", varying),
        Route("/counter", counter),
    ]
)


def client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def fetch(
    app: ASGIApp, path: str, headers: dict[str, str], method: str = "GET"
) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent (no content decoding)."""
    async with client(app) as c, c.stream(method, path, headers=headers) as r:
        raw = b"".join([part async for part in r.aiter_raw()])
    return r, raw


# --- compression ----------------------------------------------------------------------------

gz = CompressionMiddleware(inner)


async def test_gzip() -> None:
    r, raw = await fetch(gz, "/big", {"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["vary"] == "Accept-Encoding"
    assert int(r.headers["content-length"]) == len(raw) < len(BIG)
    assert gzip.decompress(raw) == BIG


async def test_brotli_preferred() -> None:
    r, raw = await fetch(gz, "/big", {"Accept-Encoding": "gzip, deflate, br"})
    assert r.headers["content-encoding"] == "br"
    assert int(r.headers["content-length"]) == len(raw) < len(BIG)
    assert brotli.decompress(raw) == BIG


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("br;q=0, gzip", "gzip"),
        ("gzip;q=0", None),
        ("gzip;q=0, br;q=0", None),
        ("gzip;q=1.0, br;q=0.5", "gzip"),
        ("*", "br"),
        ("*;q=0.5, br;q=0", "gzip"),
        ("identity", None),
        ("GZIP", "gzip"),
        ("gzip;q=oops", None),
    ],
)
async def test_accept_encoding_q_values(accept: str, coding: str | None) -> None:
    r, raw = await fetch(gz, "/big", {"Accept-Encoding": accept})
    assert r.headers.get("content-encoding") == coding
    assert r.headers["vary"] == "Accept-Encoding"
    if coding is None:
        assert raw == BIG
        assert r.headers["content-length"] == str(len(BIG))


async def test_small_responses_are_not_compressed() -> None:
    r, raw = await fetch(gz, "/small", {"Accept-Encoding": "gzip, br"})
    assert "content-encoding" not in r.headers
    assert raw == b"hi"
    assert r.headers["vary"] == "Accept-Encoding"
    r2, raw2 = await fetch(
        CompressionMiddleware(inner, minimum_size=1), "/small", {"Accept-Encoding": "gzip"}
    )
    # compressing two bytes would make them bigger: sent as they are
    assert "content-encoding" not in r2.headers and raw2 == b"hi"


@pytest.mark.parametrize("path", ["/image", "/encoded", "/events"])
async def test_excluded_responses_pass_untouched(path: str) -> None:
    direct, direct_raw = await fetch(inner, path, {"Accept-Encoding": "identity"})
    r, raw = await fetch(gz, path, {"Accept-Encoding": "gzip, br"})
    assert raw == direct_raw
    assert r.headers.get("content-encoding") == direct.headers.get("content-encoding")
    assert "vary" not in r.headers


async def test_svg_is_compressed() -> None:
    r, raw = await fetch(gz, "/svg", {"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == BIG


async def test_vary_is_merged() -> None:
    r, _ = await fetch(gz, "/varying", {"Accept-Encoding": "gzip"})
    assert r.headers.get_list("vary") == ["Cookie, Accept-Encoding"]


async def test_streamed_body_is_compressed_incrementally() -> None:
    r, raw = await fetch(gz, "/stream", {"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert "content-length" not in r.headers
    assert gzip.decompress(raw) == b"".join(CHUNKS)
    r, raw = await fetch(gz, "/stream", {"Accept-Encoding": "br"})
    assert brotli.decompress(raw) == b"".join(CHUNKS)


async def call(app: ASGIApp, path: str, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    """Run `app` for one GET and return every message it sent."""
    sent: list[Message] = []
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if requested:  # the client stays connected until the response is over
            await asyncio.Event().wait()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": ("t", 80),
        "client": ("c", 1),
    }
    await app(scope, receive, send)
    return sent


async def test_each_streamed_chunk_is_decodable_when_it_is_sent() -> None:
    sent = await call(gz, "/stream", [(b"accept-encoding", b"gzip")])
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    received = b""
    for index, message in enumerate(bodies):
        received += decoder.decompress(message["body"])
        # everything given so far can be read already: nothing waits for the next chunk
        assert received == b"".join(CHUNKS[: index + 1])[: len(received)]
        assert len(received) >= len(b"".join(CHUNKS[:index]))
    assert received == b"".join(CHUNKS)
    assert bodies[-1].get("more_body", False) is False


async def test_websocket_and_lifespan_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(str(scope["type"]))

    wrapped = CompressionMiddleware(ETagMiddleware(app))  # type: ignore[arg-type]
    await wrapped({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    await wrapped({"type": "websocket", "headers": []}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan", "websocket"]


# --- ETag -----------------------------------------------------------------------------------

etag_app = ETagMiddleware(inner)
WEAK = 'W/"' + hashlib.blake2b(BIG, digest_size=16).hexdigest() + '"'


async def test_etag_added() -> None:
    async with client(etag_app) as c:
        r = await c.get("/big")
    assert r.status_code == 200
    assert r.headers["etag"] == WEAK
    assert r.content == BIG


async def test_etag_changes_with_the_body() -> None:
    async with client(etag_app) as c:
        a = await c.get("/counter", params={"v": "1"})
        b = await c.get("/counter", params={"v": "2"})
        a2 = await c.get("/counter", params={"v": "1"})
    assert a.headers["etag"] != b.headers["etag"]
    assert a.headers["etag"] == a2.headers["etag"]


@pytest.mark.parametrize(
    "if_none_match",
    [WEAK, WEAK.removeprefix("W/"), "*", f'"other", {WEAK}', f'"a",  "b" ,{WEAK}  '],
)
async def test_if_none_match_gives_304(if_none_match: str) -> None:
    async with client(etag_app) as c:
        r = await c.get("/big", headers={"If-None-Match": if_none_match})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == WEAK
    assert r.headers["cache-control"] == "max-age=60"
    assert "content-length" not in r.headers
    assert "content-type" not in r.headers


async def test_if_none_match_mismatch_gives_200() -> None:
    async with client(etag_app) as c:
        r = await c.get("/big", headers={"If-None-Match": 'W/"nope", "also-nope"'})
    assert r.status_code == 200
    assert r.content == BIG
    assert r.headers["etag"] == WEAK


async def test_head() -> None:
    async with client(etag_app) as c:
        r = await c.head("/big")
        r304 = await c.head("/big", headers={"If-None-Match": WEAK})
    assert r.status_code == 200
    assert r.headers["etag"] == WEAK
    assert r.headers["content-length"] == str(len(BIG))
    assert r304.status_code == 304


async def test_head_without_body_gets_no_wrong_etag() -> None:
    async def head_only(scope: dict[str, object], receive: object, send: object) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
        )  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "HEAD", "headers": []}
    await ETagMiddleware(head_only)(scope, None, send)  # type: ignore[arg-type]
    assert [k for k, _ in sent[0]["headers"]] == [b"content-length"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/big"), ("GET", "/missing"), ("GET", "/stream"), ("GET", "/tagged")],
)
async def test_no_etag_added(method: str, path: str) -> None:
    async with client(inner) as c:
        direct = await c.request(method, path)
    async with client(etag_app) as c:
        r = await c.request(method, path, headers={"If-None-Match": "*"})
    assert r.status_code == direct.status_code != 304
    assert r.content == direct.content
    assert r.headers.get("etag") == direct.headers.get("etag")


async def test_streaming_passes_intact_through_both() -> None:
    stacked = CompressionMiddleware(ETagMiddleware(inner))
    r, raw = await fetch(stacked, "/stream", {"Accept-Encoding": "identity"})
    assert raw == b"".join(CHUNKS)
    assert "etag" not in r.headers and "content-encoding" not in r.headers
    r, raw = await fetch(stacked, "/events", {"Accept-Encoding": "gzip, br"})
    assert raw == b"".join(CHUNKS)
    assert r.headers["content-type"].startswith("text/event-stream")


async def test_stacked_etag_is_the_same_for_every_coding() -> None:
    stacked = CompressionMiddleware(ETagMiddleware(inner))
    plain, raw_plain = await fetch(stacked, "/big", {"Accept-Encoding": "identity"})
    zipped, raw_zipped = await fetch(stacked, "/big", {"Accept-Encoding": "gzip"})
    assert raw_plain == BIG and gzip.decompress(raw_zipped) == BIG
    assert plain.headers["etag"] == zipped.headers["etag"] == WEAK
    not_modified, raw = await fetch(
        stacked, "/big", {"Accept-Encoding": "gzip", "If-None-Match": WEAK}
    )
    assert not_modified.status_code == 304 and raw == b""
    assert not_modified.headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in not_modified.headers
