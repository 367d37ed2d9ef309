"""FastAPI/ASGI pieces: ``feature_gate`` (404 when off) and the maintenance middleware."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from headway.web.errors import HTTPError
from headway.web.responses import ORJSONResponse

if TYPE_CHECKING:
    from headway.flags.core import Flags

ContextOf = Callable[[Request], Mapping[str, Any]]


def request_context(request: Request) -> dict[str, Any]:
    """``tenant`` and ``user`` from ``request.state`` (``tenant``/``tenant_id``, ...)."""
    state = request.state
    ctx: dict[str, Any] = {}
    for name in ("tenant", "user"):
        value = getattr(state, name, None) or getattr(state, f"{name}_id", None)
        if value is not None:
            ctx[name] = str(getattr(value, "id", value))
    return ctx


def feature_gate(
    key: str, *, context: ContextOf | None = None
) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency: 404 unless flag ``key`` is on for this request."""

    async def gate(request: Request) -> None:
        from headway.hub import from_request

        try:
            flags: Any = from_request(request).capability("flags")
        except KeyError:
            flags = None
        ctx = dict((context or request_context)(request))
        tenant, user = ctx.pop("tenant", None), ctx.pop("user", None)
        on = (
            flags is not None
            and flags.evaluate_now(key, tenant=tenant, user=user, context=ctx).enabled
        )
        if not on:
            raise HTTPError(404, "not_found", "Not Found")

    return gate


class MaintenanceMiddleware:
    """503 + Retry-After for every request while the maintenance flag is on, except the
    exempt paths (health checks, admin, metrics)."""

    def __init__(self, app: ASGIApp, flags: Flags) -> None:
        self.app, self.flags = app, flags
        s = flags.settings
        self.key, self.retry_after = s.maintenance_flag, str(s.maintenance_retry_after)
        self.exempt = tuple(p.rstrip("/") for p in s.maintenance_exempt)

    def _exempt(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.flags.find(self.key) is not None
            and self.flags.evaluate_now(self.key).enabled
            and not self._exempt(scope["path"])
        ):
            body = {
                "error": {
                    "code": "maintenance",
                    "message": "The service is under maintenance; retry later.",
                    "details": None,
                }
            }
            headers = {"Retry-After": self.retry_after}
            response = ORJSONResponse(body, status_code=503, headers=headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
