"""Reusable pieces for upload endpoints: a streaming multipart reader and a type sniffer.

::

    incoming = await read_upload(request, max_bytes=10 * MIB,
                                 allowed_types={"image/png", "image/jpeg"})
    info = await hw.storage.upload(tenant, "avatars", incoming.filename, incoming.chunks,
                                   content_type=incoming.content_type)

The body is never read whole: a ``Content-Length`` above the limit is a 413 before any of
it is read, and the file part is counted as it streams (413 as soon as it passes the
limit; the storage upload then fails and leaves nothing). The first bytes are checked
against the declared type (magic numbers; text for CSV): a mismatch or a type that is
not allowed is a 415.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field

from starlette.requests import Request

from headway.web.errors import HTTPError

SNIFF_BYTES = 512
MAX_HEADER = 16 * 1024
MAX_FIELD = 64 * 1024
OVERHEAD = 16 * 1024  # multipart framing allowed above max_bytes in Content-Length
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),
)
TEXT_TYPES = frozenset({"text/csv", "text/plain"})
_PARAM = re.compile(r';\s*([\w-]+)="?([^";]*)"?')


def sniff(head: bytes) -> str | None:
    """The type the first bytes show: a magic number, else ``text/plain``, else None."""
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    if b"\x00" in head:
        return None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    return "text/plain"


def check_type(declared: str, head: bytes, allowed: Collection[str]) -> str:
    """``declared`` if allowed and consistent with ``head``; HTTPError 415 otherwise."""
    declared = declared.split(";", 1)[0].strip().lower()
    if declared not in allowed:
        raise _unsupported(f"content type {declared!r} is not accepted here", allowed)
    found = sniff(head)
    if found != declared and not (found == "text/plain" and declared in TEXT_TYPES):
        raise _unsupported(f"the file's bytes are not {declared}", allowed)
    return declared


def _unsupported(message: str, allowed: Collection[str]) -> HTTPError:
    return HTTPError(415, "unsupported_media_type", message, {"allowed": sorted(allowed)})


def _too_large(limit: int) -> HTTPError:
    return HTTPError(413, "payload_too_large", f"file larger than {limit} bytes", {"limit": limit})


def _bad(message: str) -> HTTPError:
    return HTTPError(400, "bad_request", message)


@dataclass
class IncomingFile:
    """The file part of a multipart request; ``chunks`` streams it (read it once)."""

    filename: str
    content_type: str
    chunks: AsyncIterator[bytes]
    fields: dict[str, str] = field(default_factory=dict)


class _Reader:
    """A byte buffer over an ASGI body stream."""

    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def fill(self) -> bool:
        async for chunk in self.stream:
            if chunk:
                self.buf += chunk
                return True
        return False

    async def until(self, marker: bytes, limit: int) -> bytes:
        while (i := self.buf.find(marker)) < 0:
            if len(self.buf) > limit or not await self.fill():
                raise _bad("malformed multipart body")
        out = bytes(self.buf[:i])
        del self.buf[: i + len(marker)]
        return out

    async def part(self, delimiter: bytes) -> AsyncIterator[bytes]:
        keep = len(delimiter) - 1
        while (i := self.buf.find(delimiter)) < 0:
            if len(self.buf) > keep:
                out = bytes(self.buf[:-keep])
                del self.buf[:-keep]
                yield out
            if not await self.fill():
                raise _bad("multipart body ended inside a part")
        if i:
            yield bytes(self.buf[:i])
        del self.buf[: i + len(delimiter)]


def _headers(raw: bytes) -> dict[str, str]:
    out = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        name, _, value = line.partition(":")
        out[name.strip().lower()] = value.strip()
    return out


async def read_upload(
    request: Request,
    *,
    max_bytes: int,
    allowed_types: Collection[str],
    field_name: str = "file",
) -> IncomingFile:
    """Parse up to the file part ``field_name``; the text fields before it are kept."""
    ctype = request.headers.get("content-type", "")
    boundary = dict(_PARAM.findall(ctype)).get("boundary")
    if not ctype.lower().startswith("multipart/form-data") or not boundary:
        raise _unsupported("expected multipart/form-data", ["multipart/form-data"])
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + OVERHEAD:
        raise _too_large(max_bytes)
    reader = _Reader(request.stream())
    delimiter = b"\r\n--" + boundary.encode()
    await reader.until(b"--" + boundary.encode() + b"\r\n", MAX_HEADER)
    fields: dict[str, str] = {}
    while True:
        headers = _headers(await reader.until(b"\r\n\r\n", MAX_HEADER))
        params = dict(_PARAM.findall(headers.get("content-disposition", "")))
        if params.get("name") == field_name and "filename" in params:
            break
        value = b"".join([c async for c in reader.part(delimiter)])
        if len(value) > MAX_FIELD or len(fields) > 100:
            raise _too_large(MAX_FIELD)
        fields[params.get("name", "")] = value.decode("utf-8", "replace")
        if await reader.until(b"\r\n", 2) == b"--":
            raise _bad(f"no file part named {field_name!r}")
    body = _limited(reader.part(delimiter), max_bytes)
    head = bytearray()
    async for chunk in body:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    declared = headers.get("content-type", "application/octet-stream")
    kind = check_type(declared, bytes(head), allowed_types)
    return IncomingFile(params["filename"], kind, _prepend(bytes(head), body), fields)


async def _limited(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        yield chunk


async def _prepend(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk
