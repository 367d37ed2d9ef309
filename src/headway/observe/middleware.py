"""The observability middleware (pure ASGI): request id, metrics, access log.

Outermost in the stack (``hw.install`` adds it last), so it sees every answer: rate-limit
429s, 304s from the ETag middleware, and the 500 of an unhandled exception.

It runs on every request, so its hot path is kept short (``bench/observe.py`` measures
it): metric children are resolved once per (method, route, status); the route template
of a route under a Mount is looked up once per route object; and the access line is
formatted straight from the request's fields and written to the log handler, without a
``LogRecord``, whenever that handler is the only place the record would reach (else
it goes through :mod:`logging` as any other record).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headway.observe.logs import _CURRENT, AccessEntry, LineHandler, RequestContext, line_handler
from headway.observe.metrics import UNMATCHED, HttpMetrics

__all__ = ["ObserveMiddleware", "route_template"]

access_log = logging.getLogger("headway.access")
_ACCESS = access_log.name
_new_entry = tuple.__new__  # AccessEntry(...) without its Python-level __new__
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_REQUEST_ID = b"x-request-id"
_MAX_TABLES = 64
HOOK_EVERY = 1.0  # seconds between two calls of on_request (it looks for new engines)


def route_template(scope: Scope, root_path: str = "") -> str:
    """The matched route's path template (``/posts/{post_id}``), else ``<unmatched>``.

    Starlette records the matched route in ``scope["route"]``; under a Mount the prefix
    is rebuilt from the mounts' own templates, so path parameters never become labels.
    """
    route = scope.get("route")
    path_format = getattr(route, "path_format", None)
    if isinstance(path_format, str) and scope.get("root_path", "") == root_path:
        return path_format
    # under a Mount, or a route the router did not record (FastAPI records its own
    # APIRoutes only): the template of a route that appears once in the app's route
    # table is known from the table; otherwise match the table again
    app = scope.get("app")
    target = route if isinstance(path_format, str) else None
    if target is not None:
        known = _table(app).get(id(target))
        if known is not None and known[0] is target and known[1] is not None:
            return known[1]
    found = _walk(getattr(app, "routes", ()), {**scope, "root_path": root_path}, target)
    return found or UNMATCHED


# id(app) -> (app, number of top-level routes, {id(route): (route, template or None)})
_TABLES: dict[int, tuple[Any, int, dict[int, tuple[Any, str | None]]]] = {}


def _table(app: Any) -> dict[int, tuple[Any, str | None]]:
    """Every route and Mount of ``app``'s tree with its full template (None when the
    same object appears at two places, so that its template depends on the request).
    Rebuilt when the top-level table changes; a route added deeper is not in it and is
    matched the slow way."""
    routes = getattr(app, "routes", None)
    if routes is None:
        return {}
    cached = _TABLES.get(id(app))
    if cached is not None and cached[0] is app and cached[1] == len(routes):
        return cached[2]
    table: dict[int, tuple[Any, str | None]] = {}
    _fill(routes, "", table)
    if len(_TABLES) >= _MAX_TABLES:
        _TABLES.clear()
    _TABLES[id(app)] = (app, len(routes), table)
    return table


def _fill(routes: Any, prefix: str, table: dict[int, tuple[Any, str | None]]) -> None:
    for route in routes:
        if isinstance(route, Mount):
            mount_prefix = prefix + route.path_format.removesuffix("/{path}")
            template: str | None = mount_prefix + "/{path}"
            _fill(route.routes, mount_prefix, table)
        else:
            path_format = getattr(route, "path_format", None)
            template = prefix + path_format if isinstance(path_format, str) else None
        seen = table.get(id(route))
        if seen is not None and seen[1] != template:
            template = None  # two places: the request decides
        table[id(route)] = (route, template)


def _walk(routes: Any, scope: dict[str, Any], target: Any, prefix: str = "") -> str | None:
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            mount_prefix = prefix + route.path_format.removesuffix("/{path}")
            if route is target:
                return mount_prefix + "/{path}"
            found = _walk(route.routes, {**scope, **child}, target, mount_prefix)
            if found:
                return found
        elif route is target or (target is None and match is Match.FULL):
            return prefix + str(getattr(route, "path_format", ""))
    return None


class _RequestIds:
    """``uuid.uuid4().hex`` values, made 128 at a time from one ``os.urandom`` read: the
    version (4) and variant (0b10) bits are set on all of them at once by two integer
    operations, then the hex string is cut into ids."""

    BATCH = 128
    _AND = int.from_bytes(bytes.fromhex("ffffffffffff0fff3fffffffffffffff") * BATCH, "big")
    _OR = int.from_bytes(bytes.fromhex("00000000000040008000000000000000") * BATCH, "big")

    def __init__(self) -> None:
        self._ids: list[str] = []
        os.register_at_fork(after_in_child=self._ids.clear)  # a forked worker draws its own

    def __call__(self) -> str:
        ids = self._ids
        if not ids:
            size = 16 * self.BATCH
            raw = (int.from_bytes(os.urandom(size), "big") & self._AND) | self._OR
            text = raw.to_bytes(size, "big").hex()
            ids.extend([text[i : i + 32] for i in range(0, 2 * size, 32)])
        return ids.pop()


new_request_id = _RequestIds()
_IDS = new_request_id._ids  # the ids ready (the middleware pops one without a call)


class ObserveMiddleware:
    """Request id (``X-Request-ID``, generated when absent, echoed back), HTTP metrics,
    one access-log line per request."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: HttpMetrics | None,
        access: bool = True,
        on_request: Callable[[], None] | None = None,
        quiet_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access = access
        self.on_request = on_request
        self.quiet_paths = quiet_paths
        self._next_hook = 0.0  # perf_counter time of the next on_request call
        self._lines: dict[int, LineHandler] = {}  # level -> handler (line_handler's)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the HTTP path inline (not a coroutine of its own: one frame less per request)
        if scope["type"] != "http":
            await self._other(scope, receive, send)
            return
        start = time.perf_counter()
        root_path = scope.get("root_path", "")
        request_id = _incoming_id(scope["headers"]) or (_IDS.pop() if _IDS else new_request_id())
        route_of = partial(route_template, scope, root_path)
        ctx = RequestContext(request_id, scope["method"], scope["path"], route_of)
        token = _CURRENT.set(ctx)
        header = (_REQUEST_ID, request_id.encode())
        status, size = 500, 0

        def send_wrapper(message: Message) -> Awaitable[None]:
            # a plain function handing back send's awaitable: no coroutine of its own
            nonlocal status, size
            kind = message["type"]
            if kind == "http.response.body":
                size += len(message.get("body", b""))
            elif kind == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            return send(message)

        if self.on_request is not None and start >= self._next_hook:
            self._next_hook = start + HOOK_EVERY
            self.on_request()
        metrics = self.metrics
        if metrics is not None:  # enter(), without its call: done() or a scrape flushes
            metrics._in_flight += 1
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - start
            path_format = getattr(scope.get("route"), "path_format", None)
            if type(path_format) is str and scope.get("root_path", "") == root_path:
                route = path_format  # route_template's first case, without the call
            else:
                route = route_template(scope, root_path)
            if metrics is not None:
                metrics.done(scope["method"], route, status, seconds, size)
            if self.access:
                path = scope["path"]
                if status >= 500:
                    level = logging.ERROR
                else:
                    level = logging.DEBUG if path in self.quiet_paths else logging.INFO
                if access_log.isEnabledFor(level):
                    handler = self._lines.get(level)
                    if handler is None or not handler._pending:  # see line_handler
                        handler = self._line_handler(level)
                    if handler is None:
                        self._log(scope, route, status, seconds, size, level)
                    else:  # formatted with the next lines, as logging would
                        fields = dict(ctx.fields) if ctx.fields else None
                        ms, method = seconds * 1000, scope["method"]
                        line = (time.time(), level, _ACCESS, method, path, status, ms, size)
                        handler._pending.append(
                            _new_entry(AccessEntry, (*line, ctx, route, fields))
                        )
                        if not handler._scheduled:
                            handler.schedule()
            _CURRENT.reset(token)

    def _line_handler(self, level: int) -> LineHandler | None:
        handler = line_handler(access_log, level)
        if handler is None:
            self._lines.pop(level, None)
        else:
            self._lines[level] = handler
        return handler

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self.metrics is not None:
            self.metrics.websockets.inc()
            try:
                await self.app(scope, receive, send)
            finally:
                self.metrics.websockets.dec()
            return
        await self.app(scope, receive, send)

    def _log(
        self, scope: Scope, route: str, status: int, seconds: float, size: int, level: int
    ) -> None:
        """The access line through :mod:`logging` (another handler, a filter...)."""
        ms = seconds * 1000
        extra = {"status": status, "duration_ms": round(ms, 2), "bytes": size}
        method, path = scope["method"], scope["path"]
        access_log.log(level, "%s %s %d %.1fms", method, path, status, ms, extra=extra)


def _incoming_id(headers: Any) -> str | None:
    for key, value in headers:
        if key == _REQUEST_ID:
            text = value.decode("latin-1")
            return text if _VALID_ID.match(text) else None
    return None
