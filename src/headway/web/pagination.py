"""Cursor (keyset) and offset pagination over SQLAlchemy async sessions.

Cursors are opaque to clients: a JSON payload signed with HMAC-SHA256, so that a client
can neither forge a position nor reuse a cursor made for another scope (tenant, endpoint).
Keyset pages are ordered newest first on a two-column key, typically
``(created_at, id)``; the second column breaks ties so that no row is skipped or repeated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from starlette.datastructures import URL

from headway.web.errors import HTTPError

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "CursorCodec",
    "CursorPage",
    "OffsetPage",
    "check_limit",
    "paginate_cursor",
    "paginate_offset",
]

T = TypeVar("T")

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_CURSOR_LENGTH = 1024
_SIGNATURE_BYTES = 16
_B64_PART = re.compile(r"[A-Za-z0-9_-]+")

Key = tuple[InstrumentedAttribute[Any], InstrumentedAttribute[Any]]


def _invalid_cursor(message: str = "The cursor is invalid or has been tampered with") -> HTTPError:
    return HTTPError(400, "invalid_cursor", message)


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Signs cursor payloads (``<base64 json>.<base64 hmac>``) and verifies them."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        if not key:
            raise ValueError("CursorCodec needs a non-empty secret")
        self._secret = key

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest()
        return _b64encode(digest[:_SIGNATURE_BYTES])

    def encode(self, payload: dict[str, Any]) -> str:
        body = _b64encode(orjson.dumps(payload))
        return f"{body}.{self._sign(body)}"

    def decode(self, token: str) -> dict[str, Any]:
        """The payload of a cursor this codec made; `HTTPError` 400 for anything else."""
        if len(token) > MAX_CURSOR_LENGTH:
            raise _invalid_cursor(f"The cursor is too long (at most {MAX_CURSOR_LENGTH} chars)")
        body, dot, signature = token.partition(".")
        if not dot or not _B64_PART.fullmatch(body) or not _B64_PART.fullmatch(signature):
            raise _invalid_cursor()
        if not hmac.compare_digest(signature.encode("ascii"), self._sign(body).encode("ascii")):
            raise _invalid_cursor()
        try:
            payload = orjson.loads(_b64decode(body))
        except (binascii.Error, orjson.JSONDecodeError) as exc:
            raise _invalid_cursor() from exc
        if not isinstance(payload, dict):
            raise _invalid_cursor()
        return payload


def check_limit(limit: int | None, default: int = DEFAULT_LIMIT) -> int:
    """`limit`, or `default` when not given; `HTTPError` 400 outside ``1..MAX_LIMIT``."""
    if limit is None:
        return default
    if limit < 1 or limit > MAX_LIMIT:
        raise HTTPError(
            400,
            "invalid_limit",
            f"limit must be between 1 and {MAX_LIMIT}",
            details={"min": 1, "max": MAX_LIMIT, "got": limit},
        )
    return limit


@dataclass
class CursorPage(Generic[T]):
    items: list[T]
    next_cursor: str | None
    prev_cursor: str | None
    limit: int

    def links(self, url: URL) -> dict[str, str | None]:
        """Absolute links to the next and previous pages (other query params kept)."""
        base = url.remove_query_params(["page", "cursor"])
        return {
            "next": _with_cursor(base, self.next_cursor),
            "prev": _with_cursor(base, self.prev_cursor),
        }


def _with_cursor(url: URL, cursor: str | None) -> str | None:
    return None if cursor is None else str(url.include_query_params(cursor=cursor))


@dataclass
class OffsetPage(Generic[T]):
    items: list[T]
    page: int
    limit: int
    total: int


# --- key values in cursors -------------------------------------------------------------
# Each value is stored as a two-item list [tag, value] so that a str that looks like a date
# stays a str. Naive datetimes round-trip naive (SQLite), aware ones keep their offset.


def _dump_value(value: Any) -> list[Any]:
    if isinstance(value, datetime):
        return ["dt", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, uuid.UUID):
        return ["u", str(value)]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"cannot use a {type(value).__name__} as a pagination key")
    return ["v", value]


def _load_value(item: Any) -> Any:
    if not isinstance(item, list) or len(item) != 2:
        raise _invalid_cursor()
    tag, value = item
    try:
        if tag == "v" and isinstance(value, int | float | str) and not isinstance(value, bool):
            return value
        if tag == "dt" and isinstance(value, str):
            return datetime.fromisoformat(value)
        if tag == "d" and isinstance(value, str):
            return date.fromisoformat(value)
        if tag == "u" and isinstance(value, str):
            return uuid.UUID(value)
    except ValueError as exc:
        raise _invalid_cursor() from exc
    raise _invalid_cursor()


@dataclass(frozen=True, slots=True)
class _Position:
    direction: str  # "n": rows after the boundary (older), "p": rows before it (newer)
    values: tuple[Any, Any]
    inclusive: bool = False


def _make_cursor(codec: CursorCodec, scope: str, position: _Position) -> str:
    payload: dict[str, Any] = {
        "s": scope,
        "d": position.direction,
        "k": [_dump_value(v) for v in position.values],
    }
    if position.inclusive:
        payload["i"] = 1
    return codec.encode(payload)


def _read_cursor(codec: CursorCodec, scope: str, token: str) -> _Position:
    payload = codec.decode(token)
    if payload.get("s") != scope:
        raise _invalid_cursor("The cursor was made for another listing")
    direction, keys = payload.get("d"), payload.get("k")
    if direction not in ("n", "p") or not isinstance(keys, list) or len(keys) != 2:
        raise _invalid_cursor()
    first, second = (_load_value(k) for k in keys)
    return _Position(direction, (first, second), bool(payload.get("i")))


def _row_key(row: Any, key: Key) -> tuple[Any, Any]:
    return getattr(row, key[0].key), getattr(row, key[1].key)


def _after(key: Key, position: _Position) -> ColumnElement[bool]:
    """Rows strictly past the boundary in the cursor's direction (or at it, if inclusive)."""
    (k0, k1), (a, b) = key, position.values
    if position.direction == "n":
        last = k1 <= b if position.inclusive else k1 < b
        return or_(k0 < a, and_(k0 == a, last))
    last = k1 >= b if position.inclusive else k1 > b
    return or_(k0 > a, and_(k0 == a, last))


async def paginate_cursor(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    key: Key,
    codec: CursorCodec,
    scope: str,
    limit: int,
    cursor: str | None,
) -> CursorPage[Any]:
    """One page of `stmt`'s entities, newest first on `key`, from a signed `cursor`.

    `scope` names the listing (put the tenant id and endpoint in it): a cursor made under
    another scope is refused with 400 ``invalid_cursor``.
    """
    limit = check_limit(limit)
    position = _read_cursor(codec, scope, cursor) if cursor else None
    backwards = position is not None and position.direction == "p"
    k0, k1 = key
    order = (k0.asc(), k1.asc()) if backwards else (k0.desc(), k1.desc())
    query = stmt.order_by(None).order_by(*order).limit(limit + 1)
    if position is not None:
        query = query.where(_after(key, position))
    rows = list((await session.scalars(query)).unique().all())
    more = len(rows) > limit
    items = rows[:limit]
    if backwards:
        items.reverse()
    return CursorPage(
        items=items,
        next_cursor=_next_cursor(codec, scope, key, items, position, more),
        prev_cursor=_prev_cursor(codec, scope, key, items, position, more),
        limit=limit,
    )


def _next_cursor(
    codec: CursorCodec,
    scope: str,
    key: Key,
    items: list[Any],
    position: _Position | None,
    more: bool,
) -> str | None:
    if position is not None and position.direction == "p":
        # Coming back from a later page: that page is still there, past our last row.
        if items:
            return _make_cursor(codec, scope, _Position("n", _row_key(items[-1], key)))
        return _make_cursor(codec, scope, _Position("n", position.values, inclusive=True))
    if more:
        return _make_cursor(codec, scope, _Position("n", _row_key(items[-1], key)))
    return None


def _prev_cursor(
    codec: CursorCodec,
    scope: str,
    key: Key,
    items: list[Any],
    position: _Position | None,
    more: bool,
) -> str | None:
    if position is None:
        return None
    if position.direction == "p":
        return _make_cursor(codec, scope, _Position("p", _row_key(items[0], key))) if more else None
    # Reached through a next cursor: the earlier page ends at our boundary row.
    if items:
        return _make_cursor(codec, scope, _Position("p", _row_key(items[0], key)))
    return _make_cursor(codec, scope, _Position("p", position.values, inclusive=True))


async def paginate_offset(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    key: Key,
    page: int,
    limit: int,
) -> OffsetPage[Any]:
    """Page `page` (from 1) of `stmt`'s entities, newest first on `key`, with the total."""
    if page < 1:
        raise HTTPError(400, "invalid_page", "page must be 1 or more", details={"got": page})
    limit = check_limit(limit)
    count = select(func.count()).select_from(stmt.order_by(None).subquery())
    total = int((await session.execute(count)).scalar_one())
    offset = (page - 1) * limit
    if offset >= total:
        # Past the end: no query (and no offset too large for the database to bind).
        return OffsetPage(items=[], page=page, limit=limit, total=total)
    k0, k1 = key
    query = stmt.order_by(None).order_by(k0.desc(), k1.desc()).offset(offset).limit(limit)
    items = list((await session.scalars(query)).unique().all())
    return OffsetPage(items=items, page=page, limit=limit, total=total)
