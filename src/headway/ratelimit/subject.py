"""What a scope can key on, for one request: resolved lazily, each at most once."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from starlette.routing import Match, Mount
from starlette.types import Scope

from headway.ratelimit.clientip import ClientIP
from headway.ratelimit.policy import Identity, ScopePart

_ROUTE_CACHE_MAX = 4096
_route_cache: dict[tuple[int, str, str], str] = {}


class Subject:
    """The caller and target of one request (or of a plain ``hit`` with a given key)."""

    __slots__ = ("_endpoint", "_ip", "client_ip", "identity", "scope")

    def __init__(self, scope: Scope, identity: Identity | None, client_ip: ClientIP) -> None:
        self.scope = scope
        self.identity = identity
        self.client_ip = client_ip
        self._ip: str | None = None
        self._endpoint: str | None = None

    @property
    def ip(self) -> str:
        if self._ip is None:
            client = self.scope.get("client")
            self._ip = self.client_ip.resolve(client[0] if client else None, self.scope["headers"])
        return self._ip

    @property
    def endpoint(self) -> str:
        """``METHOD /route/{template}``; the raw path only when no route matches."""
        if self._endpoint is None:
            self._endpoint = f"{self.scope.get('method', '')} {route_template(self.scope)}"
        return self._endpoint

    def header(self, name: bytes) -> str | None:
        for key, value in self.scope["headers"]:
            if key == name:
                return str(value.decode("latin-1"))
        return None

    @property
    def bearer(self) -> str | None:
        """A digest of the bearer token, so that a key never reaches the store."""
        auth = self.header(b"authorization")
        if auth is None or auth[:7].lower() != "bearer ":
            return None
        token = auth[7:].strip()
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32] or None

    def key(self, parts: Sequence[ScopePart]) -> str | None:
        """The joined key of ``parts``, or None when one of them does not apply."""
        if len(parts) == 1:
            return self._part(parts[0])
        keys = []
        for part in parts:
            value = self._part(part)
            if value is None:
                return None
            keys.append(value)
        return "|".join(keys)

    def _part(self, part: ScopePart) -> str | None:
        if not isinstance(part, str):
            return part(self)
        ident = self.identity
        if part == "ip":
            return self.ip
        if part == "global":
            return "*"
        if part == "endpoint":
            return self.endpoint
        if part == "tenant":
            return ident.tenant if ident else None
        if part == "user":
            return ident.user if ident else None
        return (ident.api_key if ident else None) or self.bearer  # api_key


def route_template(scope: Scope) -> str:
    """The path template of the route that serves ``scope`` (cached per app and path)."""
    route = scope.get("route")
    if route is not None and isinstance(getattr(route, "path", None), str):
        return str(scope.get("root_path", "")) + str(route.path)
    app = scope.get("app")
    path = str(scope.get("path", ""))
    cache_key = (id(app), str(scope.get("method", "")), path)
    found = _route_cache.get(cache_key)
    if found is None:
        routes = getattr(getattr(app, "router", None), "routes", None) or []
        found = _match(routes, dict(scope), "") or path
        if len(_route_cache) >= _ROUTE_CACHE_MAX:
            _route_cache.clear()
        _route_cache[cache_key] = found
    return found


def _match(routes: Sequence[Any], scope: dict[str, Any], prefix: str) -> str | None:
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = _match(route.routes, {**scope, **child}, prefix + route.path)
            template = inner or prefix + route.path
        else:
            template = prefix + str(getattr(route, "path", ""))
        if match == Match.FULL:
            return template
        partial = partial or template
    return partial


__all__ = ["Subject", "route_template"]
