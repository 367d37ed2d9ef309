"""Pure ASGI middleware: weak ETags with 304 answers, and gzip/brotli compression.

Intended stacking (outermost first)::

    app = CompressionMiddleware(ETagMiddleware(app))

so that the ETag is computed on the uncompressed body: a weak ETag names the same
representation whatever its content coding.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterable
from typing import Any, Protocol

import brotli
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CompressionMiddleware", "ETagMiddleware"]

RawHeaders = Iterable[tuple[bytes, bytes]]

# Headers describing the body: a 304 answer has no body, so it does not carry them.
_BODY_HEADERS = frozenset(
    {
        b"content-length",
        b"content-type",
        b"content-encoding",
        b"content-language",
        b"content-range",
        b"transfer-encoding",
    }
)
# Content that is already compressed, or that must reach the client chunk by chunk.
_UNCOMPRESSIBLE_TYPES = frozenset(
    {
        "application/zip",
        "application/gzip",
        "application/x-gzip",
        "application/zstd",
        "application/x-brotli",
        "application/x-7z-compressed",
        "application/x-rar-compressed",
        "application/octet-stream",
        "font/woff",
        "font/woff2",
        "text/event-stream",
    }
)
_UNCOMPRESSIBLE_PREFIXES = ("image/", "video/", "audio/")
_COMPRESSIBLE_EXCEPTIONS = frozenset({"image/svg+xml"})


def _header(headers: RawHeaders, name: bytes) -> bytes | None:
    """All values of header `name` (lower case), joined by commas; None when absent."""
    values = [value for key, value in headers if key.lower() == name]
    if not values:
        return None
    return values[0] if len(values) == 1 else b", ".join(values)


# --- ETag ---------------------------------------------------------------------------------


def _etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """Weak comparison of `etag` with an If-None-Match list (``*`` matches anything)."""
    opaque = etag.removeprefix(b"W/")
    for candidate in if_none_match.split(b","):
        candidate = candidate.strip()
        if candidate == b"*" or candidate.removeprefix(b"W/") == opaque:
            return True
    return False


def _declares_body(start: Message) -> bool:
    """Whether the response start announces a non-empty body (HEAD answers omit it)."""
    length = _header(start.get("headers", ()), b"content-length")
    return length is not None and length.strip() != b"0"


def _not_modified(start: Message, etag: bytes) -> Message:
    headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() not in _BODY_HEADERS]
    headers.append((b"etag", etag))
    return {"type": "http.response.start", "status": 304, "headers": headers}


class ETagMiddleware:
    """Adds a weak ETag to whole (single-chunk) 200 answers to GET/HEAD, and answers 304.

    The tag is ``W/"<blake2b-128 of the body>"``. Responses streamed in several chunks,
    other statuses and responses that already carry an ETag pass through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if scope["type"] != "http" or method not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if_none_match = _header(scope["headers"], b"if-none-match")
        start: Message | None = None
        passthrough = False

        async def send_with_etag(message: Message) -> None:
            nonlocal start, passthrough
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                if message["status"] != 200 or _header(headers, b"etag") is not None:
                    passthrough = True
                    await send(message)
                else:
                    start = message
                return
            passthrough = True
            assert start is not None, "response body before response start"
            body: bytes = message.get("body", b"")
            if (
                message["type"] != "http.response.body"
                or message.get("more_body", False)
                or (method == "HEAD" and not body and _declares_body(start))
            ):
                # Streamed, another kind of message, or a HEAD answer without its body.
                await send(start)
                await send(message)
                return
            etag = b'W/"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'
            if if_none_match is not None and _etag_matches(if_none_match, etag):
                await send(_not_modified(start, etag))
                await send({"type": "http.response.body", "body": b""})
                return
            await send({**start, "headers": [*start.get("headers", ()), (b"etag", etag)]})
            await send(message)

        await self.app(scope, receive, send_with_etag)


# --- compression --------------------------------------------------------------------------


def _q_value(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def _choose_encoding(accept_encoding: bytes | None) -> str | None:
    """``"br"``, ``"gzip"`` or None from an Accept-Encoding value.

    The highest q-value wins, brotli on a tie; ``q=0`` refuses a coding and ``*`` stands
    for any coding not named.
    """
    if not accept_encoding:
        return None
    weights: dict[str, float] = {}
    for part in accept_encoding.decode("latin-1").split(","):
        name, _, params = part.partition(";")
        name = name.strip().lower()
        if name:
            weights[name] = _q_value(params)
    best, best_q = None, 0.0
    for coding in ("br", "gzip"):
        q = weights.get(coding, weights.get("*", 0.0))
        if q > best_q:
            best, best_q = coding, q
    return best


def _compressible(status: int, headers: RawHeaders) -> bool:
    """Whether a response of this status and headers may be given a content coding."""
    if status < 200 or status in (204, 206, 304):
        return False
    if _header(headers, b"content-encoding") or _header(headers, b"content-range"):
        return False
    cache_control = _header(headers, b"cache-control")
    if cache_control and b"no-transform" in cache_control.lower():
        return False
    content_type = _header(headers, b"content-type")
    if not content_type:
        return False
    media = content_type.decode("latin-1").partition(";")[0].strip().lower()
    if media in _COMPRESSIBLE_EXCEPTIONS:
        return True
    return media not in _UNCOMPRESSIBLE_TYPES and not media.startswith(_UNCOMPRESSIBLE_PREFIXES)


def _with_vary(message: Message) -> Message:
    """`message` with Accept-Encoding added to its Vary header (merged with any present)."""
    headers = list(message.get("headers", ()))
    vary = _header(headers, b"vary")
    if vary is not None:
        tokens = {token.strip().lower() for token in vary.split(b",")}
        if b"*" in tokens or b"accept-encoding" in tokens:
            return message
        headers = [(k, v) for k, v in headers if k.lower() != b"vary"]
        headers.append((b"vary", vary + b", Accept-Encoding"))
    else:
        headers.append((b"vary", b"Accept-Encoding"))
    return {**message, "headers": headers}


def _with_encoding(start: Message, coding: str, length: int | None) -> Message:
    drop = (b"content-length", b"content-encoding")
    headers = [(k, v) for k, v in start["headers"] if k.lower() not in drop]
    headers.append((b"content-encoding", coding.encode("ascii")))
    if length is not None:
        headers.append((b"content-length", str(length).encode("ascii")))
    return {**start, "headers": headers}


class _Stream(Protocol):
    def chunk(self, data: bytes) -> bytes: ...
    def finish(self, data: bytes) -> bytes: ...


class _GzipStream:
    __slots__ = ("_zlib",)

    def __init__(self, level: int) -> None:
        self._zlib = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def chunk(self, data: bytes) -> bytes:
        return self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)

    def finish(self, data: bytes) -> bytes:
        return self._zlib.compress(data) + self._zlib.flush(zlib.Z_FINISH)


class _BrotliStream:
    __slots__ = ("_brotli",)

    def __init__(self, quality: int) -> None:
        self._brotli: Any = brotli.Compressor(quality=quality)

    def chunk(self, data: bytes) -> bytes:
        return bytes(self._brotli.process(data) + self._brotli.flush())

    def finish(self, data: bytes) -> bytes:
        return bytes(self._brotli.process(data) + self._brotli.finish())


class CompressionMiddleware:
    """Compresses responses with brotli or gzip, as the client's Accept-Encoding allows.

    Whole responses smaller than `minimum_size`, responses that already have a
    Content-Encoding, partial (206) answers, ``Cache-Control: no-transform`` and
    already-compressed or streaming types (images, audio, video, archives,
    ``application/octet-stream``, ``text/event-stream``) pass through untouched. Every
    response of a compressible type gets ``Vary: Accept-Encoding``, whether or not it
    was compressed, and so does a 304.

    Streamed bodies (several ``http.response.body`` messages) are compressed
    incrementally, whatever their size: each chunk is flushed so that it reaches the
    client without waiting for the next one, and Content-Length is dropped.
    """

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int = 1024,
        gzip_level: int = 6,
        brotli_quality: int = 4,
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.gzip_level = gzip_level
        self.brotli_quality = brotli_quality

    def _compress(self, coding: str, body: bytes) -> bytes:
        if coding == "br":
            return bytes(brotli.compress(body, quality=self.brotli_quality))
        return gzip.compress(body, compresslevel=self.gzip_level, mtime=0)

    def _stream(self, coding: str) -> _Stream:
        if coding == "br":
            return _BrotliStream(self.brotli_quality)
        return _GzipStream(self.gzip_level)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        coding = _choose_encoding(_header(scope["headers"], b"accept-encoding"))
        start: Message | None = None
        stream: _Stream | None = None
        passthrough = False

        async def send_compressed(message: Message) -> None:
            nonlocal start, stream, passthrough
            if passthrough or (stream is not None and message["type"] != "http.response.body"):
                await send(message)
            elif stream is not None:
                body: bytes = message.get("body", b"")
                if message.get("more_body", False):
                    await send({**message, "body": stream.chunk(body)})
                else:
                    await send({**message, "body": stream.finish(body)})
            elif message["type"] == "http.response.start":
                status, headers = message["status"], message.get("headers", ())
                eligible = _compressible(status, headers)
                if eligible or status == 304:
                    message = _with_vary(message)
                if eligible and coding is not None:
                    start = message
                else:
                    passthrough = True
                    await send(message)
            else:
                # The first message after the held start.
                assert start is not None and coding is not None, "body before response start"
                if message["type"] == "http.response.body" and message.get("more_body", False):
                    stream = self._stream(coding)
                    await send(_with_encoding(start, coding, None))
                    await send({**message, "body": stream.chunk(message.get("body", b""))})
                else:
                    passthrough = True
                    await self._send_whole(start, message, coding, send)

        await self.app(scope, receive, send_compressed)

    async def _send_whole(self, start: Message, message: Message, coding: str, send: Send) -> None:
        """Send a response whose body came in one message, compressed if that is worth it."""
        body: bytes = message.get("body", b"") if message["type"] == "http.response.body" else b""
        compressed = self._compress(coding, body) if len(body) >= self.minimum_size else None
        if compressed is None or len(compressed) >= len(body):
            await send(start)
            await send(message)
            return
        await send(_with_encoding(start, coding, len(compressed)))
        await send({**message, "body": compressed})
