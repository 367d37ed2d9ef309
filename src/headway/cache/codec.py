"""The bytes stored in L2: a small binary header, the tags, then the JSON payload.

::

    magic  b"\\x00H"   (never a digit: a bare integer is an ``incr`` counter)
    flags  1 byte      bit 0: payload is zlib-compressed
    fresh  float64     wall-clock second after which the value is stale
    took   float32     seconds the loader took (drives early refresh)
    ntags  uint16      length of the tags JSON that follows
    tags   JSON list of the full tag keys (so that L1 can drop the value by tag)
    body   JSON (orjson), never pickle

Anything else under a key is :class:`CorruptValue`, which the cache counts as a miss.
"""

from __future__ import annotations

import dataclasses
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

MAGIC = b"\x00H"
HEADER = struct.Struct(">2sBdfH")
COMPRESSED = 1
_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class CorruptValue(ValueError):
    """Bytes under a cache key that this codec did not write."""


@dataclass(slots=True)
class Decoded:
    value: Any
    fresh_until: float
    took: float
    tags: tuple[str, ...]
    size: int


def _default(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if callable(dump):  # pydantic models
        return dump(mode="json")
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable (cache values are JSON)")


def dumps(value: Any) -> bytes:
    """JSON bytes of ``value`` (dicts, lists, pydantic models, dataclasses, datetimes...)."""
    return orjson.dumps(value, default=_default, option=_OPTS)


def encode(
    value: Any,
    *,
    fresh_until: float,
    took: float = 0.0,
    tags: tuple[str, ...] = (),
    compress_min: int = 0,
) -> bytes:
    body = dumps(value)
    flags = 0
    if compress_min and len(body) >= compress_min:
        body, flags = zlib.compress(body, 1), COMPRESSED
    tag_bytes = orjson.dumps(list(tags)) if tags else b""
    head = HEADER.pack(MAGIC, flags, fresh_until, min(took, 3e38), len(tag_bytes))
    return head + tag_bytes + body


_HEAD = HEADER.size


def decode(raw: bytes) -> Decoded:
    """Parse L2 bytes; raise :class:`CorruptValue` for anything foreign or damaged."""
    if not raw.startswith(MAGIC):
        return _counter(raw)
    try:
        _, flags, fresh, took, ntags = HEADER.unpack_from(raw)
        if not (flags or ntags):  # the common case: no tags, not compressed
            value = orjson.loads(raw[_HEAD:])
            tags: tuple[str, ...] = ()
        else:
            tags = tuple(orjson.loads(raw[_HEAD : _HEAD + ntags])) if ntags else ()
            body = raw[_HEAD + ntags :]
            if flags & COMPRESSED:
                body = zlib.decompress(body)
            value = orjson.loads(body)
    except (struct.error, orjson.JSONDecodeError, zlib.error, TypeError) as exc:
        raise CorruptValue(str(exc)) from None
    if fresh != fresh or (tags and not all(isinstance(t, str) for t in tags)):  # NaN
        raise CorruptValue("bad header")
    return Decoded(value, fresh, took, tags, len(raw))


def _counter(raw: bytes) -> Decoded:
    try:
        number = int(raw)
    except ValueError:
        raise CorruptValue("not a headway cache value") from None
    return Decoded(number, math.inf, 0.0, (), len(raw))
