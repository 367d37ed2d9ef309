"""Pure ASGI middleware: each HTTP request is one query-monitor scope."""

from __future__ import annotations

from typing import Any

from headway.db.monitor import _SCOPE, Scope

__all__ = ["ScopeMiddleware"]


class ScopeMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _SCOPE.set(Scope(f"{scope.get('method', '')} {scope.get('path', '')}"))
        try:
            await self.app(scope, receive, send)
        finally:
            _SCOPE.reset(token)
