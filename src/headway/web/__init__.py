"""ASGI/FastAPI integration: error shape, pagination, sparse fields and middleware."""

from __future__ import annotations

from headway.web.errors import HTTPError, error_body, install_error_handlers
from headway.web.fields import parse_fields, parse_include, select_fields
from headway.web.middleware import CompressionMiddleware, ETagMiddleware
from headway.web.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    CursorCodec,
    CursorPage,
    OffsetPage,
    check_limit,
    paginate_cursor,
    paginate_offset,
)
from headway.web.responses import ORJSONResponse

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "CompressionMiddleware",
    "CursorCodec",
    "CursorPage",
    "ETagMiddleware",
    "HTTPError",
    "ORJSONResponse",
    "OffsetPage",
    "check_limit",
    "error_body",
    "install_error_handlers",
    "paginate_cursor",
    "paginate_offset",
    "parse_fields",
    "parse_include",
    "select_fields",
]
