"""One JSON shape for every error answer: ``{"error": {"code", "message", "details"}}``.

`install_error_handlers` maps headway's `HTTPError`, Starlette/FastAPI `HTTPException`,
FastAPI's `RequestValidationError` and any unexpected exception onto that shape. An
unexpected exception is logged with its traceback and answered with a generic 500: the
body never carries the exception's text.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from headway.errors import HeadwayError
from headway.web.responses import ORJSONResponse

__all__ = ["HTTPError", "error_body", "install_error_handlers"]

logger = logging.getLogger("headway.web")

_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}
_NO_BODY_STATUSES = frozenset({204, 304})
_JSON_SCALARS = (str, int, float, bool, type(None))


class HTTPError(HeadwayError):
    """An error meant for the client: raised anywhere in a request, answered as JSON."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers

    def __repr__(self) -> str:
        return f"HTTPError(status={self.status!r}, code={self.code!r}, message={self.message!r})"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The error shape every error answer uses."""
    return {"error": {"code": code, "message": message, "details": details}}


def install_error_handlers(app: Starlette) -> None:
    """Register the handlers that give every error answer the `error_body` shape."""
    app.add_exception_handler(HTTPError, _handle_http_error)
    app.add_exception_handler(HTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(Exception, _handle_unexpected)


def _error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    if status in _NO_BODY_STATUSES:
        return Response(status_code=status, headers=headers)
    return ORJSONResponse(error_body(code, message, details), status_code=status, headers=headers)


async def _handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    return _error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = _CODES.get(status, "http_error")
    if isinstance(exc.detail, str) and exc.detail:
        message, details = exc.detail, None
    else:
        # FastAPI allows any JSON value as `detail`: keep it as details.
        message, details = _phrase(status), _jsonable(exc.detail)
    return _error_response(status, code, message, details, exc.headers)


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [_validation_item(err) for err in exc.errors()]
    return _error_response(422, "validation_error", "Request validation failed", details)


async def _handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_response(500, "internal_error", "Internal server error")


def _validation_item(err: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "loc": [part if isinstance(part, int | str) else str(part) for part in err.get("loc", ())],
        "msg": str(err.get("msg", "")),
        "type": str(err.get("type", "")),
    }
    ctx = err.get("ctx")
    if ctx:
        item["ctx"] = _jsonable(ctx)
    return item


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy: containers recursed, anything else (exceptions...) stringified."""
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"
