"""The hub: one object that owns the settings, the shared connections and the capabilities.

hw = Headway()                 # settings from HEADWAY_* variables
hw.install(app)                # lifespan, error handlers, middleware, admin router
async with hw: ...             # or start/stop it yourself (scripts, workers)
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request

from headway.admin import add_core_routes
from headway.capability import Capability
from headway.connections import Connections
from headway.constants import BUILTIN_CAPABILITIES
from headway.settings import Settings, load_settings
from headway.web.errors import HTTPError, install_error_handlers
from headway.web.middleware import CompressionMiddleware, ETagMiddleware
from headway.web.pagination import CursorCodec

if TYPE_CHECKING:
    from headway.cache import Cache
    from headway.db import Database
    from headway.events import Events
    from headway.flags import Flags
    from headway.jobs import Jobs
    from headway.notify import Notify
    from headway.observe import Observe
    from headway.ratelimit import RateLimits
    from headway.resilience import Breakers
    from headway.storage import Storage
    from headway.webhooks import Webhooks
    from headway.workflows import Workflows

C = TypeVar("C", bound=Capability)

# Added by every ``install(app)`` (metrics, health, request logs) and not listed in
# ``capabilities``: infrastructure, like the error handlers.
ALWAYS_ON = frozenset({"observe"})


class Headway:
    """Settings + connections + capabilities, started and stopped together."""

    if TYPE_CHECKING:  # the built-in capabilities, created on first use by __getattr__
        jobs: Jobs
        cache: Cache
        limits: RateLimits
        breakers: Breakers
        flags: Flags
        observe: Observe
        db: Database
        storage: Storage
        events: Events
        webhooks: Webhooks
        notify: Notify
        workflows: Workflows

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        if settings is not None and overrides:
            # validated again, like any other source of settings
            settings = load_settings({**settings.model_dump(), **overrides})
        self.settings = settings or load_settings(overrides)
        self.connections = Connections(self.settings)
        self._capabilities: dict[str, Capability] = {}
        self._started: list[Capability] = []
        self.running = False
        self.admin_router = APIRouter(
            prefix="/admin", tags=["admin"], dependencies=[Depends(self.require_admin)]
        )
        add_core_routes(self)

    # -- capabilities -----------------------------------------------------------------

    def add(self, capability: C) -> C:
        """Add a capability; it starts with the hub (``name`` must be unique)."""
        if not capability.name:
            raise ValueError(f"{type(capability).__name__} has no name")
        if capability.name in self._capabilities:
            raise ValueError(f"capability {capability.name!r} is already added")
        self._capabilities[capability.name] = capability
        return capability

    def capability(self, name: str) -> Capability:
        try:
            return self._capabilities[name]
        except KeyError:
            raise KeyError(
                f"no capability {name!r}; added: {sorted(self._capabilities) or 'none'}"
            ) from None

    @property
    def capabilities(self) -> Mapping[str, Capability]:
        return {n: c for n, c in self._capabilities.items() if n not in ALWAYS_ON}

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: ``hw.jobs`` and friends.
        caps: dict[str, Capability] | None = self.__dict__.get("_capabilities")
        if caps is None or name.startswith("_"):
            raise AttributeError(name)
        if name in caps:
            return caps[name]
        target = BUILTIN_CAPABILITIES.get(name)
        if target is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if self.running:
            raise RuntimeError(
                f"hw.{name} was first used after the hub started; touch it (declare tasks, "
                "policies...) before `async with hw` / `hw.install(app)`"
            )
        module_name, _, attr = target.partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        return self.add(cls(self))

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self.running:
            return
        try:
            for capability in self._capabilities.values():
                await capability.start()
                self._started.append(capability)
        except BaseException:
            await self.stop()
            raise
        self.running = True

    async def stop(self) -> None:
        while self._started:
            await self._started.pop().stop()
        await self.connections.close()
        self.running = False

    async def __aenter__(self) -> Headway:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- web integration --------------------------------------------------------------

    @cached_property
    def cursors(self) -> CursorCodec:
        """Signs and checks pagination cursors with the configured secret."""
        return CursorCodec(self.settings.secret_bytes())

    def install(self, app: Starlette) -> None:
        """Wire ``app``: the hub's lifespan, error shape, compression/ETag, admin routes and
        the admin dashboard (``/admin/ui``)."""
        if getattr(app.state, "headway", None) is self:
            return
        app.state.headway = self
        app.router.lifespan_context = self._wrap_lifespan(app.router.lifespan_context)
        install_error_handlers(app)
        observe: Capability = self.observe
        for capability in self._capabilities.values():
            if capability is not observe:
                capability.install(app)
        from headway.dashboard import Dashboard  # the admin UI, at /admin/ui

        app.state.headway_dashboard = dashboard = Dashboard(self)
        if isinstance(app, FastAPI):
            app.include_router(dashboard.router)
            app.include_router(self.admin_router)
        else:
            sub = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
            sub.include_router(dashboard.router)
            sub.include_router(self.admin_router)
            app.mount("/", sub)
        app.add_middleware(ETagMiddleware)
        app.add_middleware(CompressionMiddleware)
        observe.install(app)  # last: its middleware is outermost and sees every answer

    def _wrap_lifespan(
        self, inner: Callable[[Any], AbstractAsyncContextManager[Any]]
    ) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
        @asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[Any]:
            async with self, inner(app) as state:
                yield state

        return lifespan

    # -- admin access -----------------------------------------------------------------

    @cached_property
    def _admin_digest(self) -> bytes | None:
        token = self.settings.admin_token
        return None if token is None else _digest(token.get_secret_value())

    def require_admin(self, request: Request) -> None:
        """FastAPI dependency guarding every management endpoint.

        No ``HEADWAY_ADMIN_TOKEN`` configured: the endpoints do not exist (404). Otherwise
        the request must carry it as ``Authorization: Bearer`` or ``X-Headway-Admin-Token``;
        digests are compared in constant time.
        """
        expected = self._admin_digest
        if expected is None:
            raise HTTPError(404, "not_found", "Not Found")
        supplied = request.headers.get("x-headway-admin-token", "")
        auth = request.headers.get("authorization", "")
        if not supplied and auth[:7].lower() == "bearer ":
            supplied = auth[7:].strip()
        if not supplied:
            raise HTTPError(
                401, "unauthorized", "admin token required", headers={"WWW-Authenticate": "Bearer"}
            )
        if not hmac.compare_digest(_digest(supplied), expected):
            raise HTTPError(403, "forbidden", "invalid admin token")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def from_request(request: Request) -> Headway:
    """The hub installed on the request's app."""
    hw = getattr(request.app.state, "headway", None)
    if not isinstance(hw, Headway):
        raise RuntimeError("no Headway installed on this app: call hw.install(app)")
    return hw
