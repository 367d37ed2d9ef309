"""``@hw.cache.cached(...)``: cache a function's result under a key built from its arguments.

Keys are ``<module>.<qualname>:<args as canonical JSON>`` (``self``/``cls`` left out;
positional and keyword spellings of one call give one key; long ones are hashed), or
``key="user:{user_id}"`` (a template over the bound arguments) or ``key=callable`` (called
with the function's arguments). ``tags`` and ``tenant`` take templates or callables too.
A sync function becomes an async one whose body runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, overload

from headway.cache.codec import dumps

if TYPE_CHECKING:
    from headway.cache.core import TTL, Cache
    from headway.cache.keys import Tenant

P = ParamSpec("P")
R = TypeVar("R")
KeySpec = str | Callable[..., str] | None
TagSpec = Sequence[str] | Callable[..., Sequence[str]]
TenantSpec = str | Callable[..., Any] | None
_SKIP = frozenset({"self", "cls"})
MAX_ARGS_IN_KEY = 150


class CachedFactory:
    """What ``hw.cache.cached(...)`` returns: apply it to a function."""

    def __init__(
        self,
        cache: Cache,
        *,
        ttl: TTL = None,
        key: KeySpec = None,
        tags: TagSpec = (),
        tenant: TenantSpec = None,
        model: Any = None,
        stale_while_revalidate: float | None = None,
        stale_if_error: float | None = None,
        early_refresh: float | None = None,
        thread: bool = True,
    ) -> None:
        self.cache = cache
        self.ttl = ttl
        self.key = key
        self.tags = tags
        self.tenant = tenant
        self.model = model
        self.swr = stale_while_revalidate
        self.sie = stale_if_error
        self.beta = early_refresh
        self.thread = thread

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> CachedFunction[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> CachedFunction[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> CachedFunction[P, Any]:
        return CachedFunction(self, fn)


class CachedFunction(Generic[P, R]):
    """A cached function: await it like the original; ``.invalidate(*args)`` drops a call."""

    def __init__(self, options: CachedFactory, fn: Callable[P, Any]) -> None:
        self.options = options
        self.fn = fn
        self.signature = inspect.signature(fn)
        self.is_async = inspect.iscoroutinefunction(fn)
        self.prefix = f"{fn.__module__}.{fn.__qualname__}"
        functools.update_wrapper(self, fn)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        o = self.options
        bound = self._bind(args, kwargs)
        return await o.cache.get_or_set(
            self._key(bound, args, kwargs),
            lambda: self._run(args, kwargs),
            ttl=o.ttl,
            tags=self._tags(bound, args, kwargs),
            tenant=self._tenant(bound, args, kwargs),
            model=o.model,
            stale_while_revalidate=o.swr,
            stale_if_error=o.sie,
            early_refresh=o.beta,
        )

    async def _run(self, args: Any, kwargs: Any) -> R:
        if self.is_async:
            return cast("R", await self.fn(*args, **kwargs))
        if self.options.thread:
            return cast("R", await asyncio.to_thread(self.fn, *args, **kwargs))
        return cast("R", self.fn(*args, **kwargs))

    def key_for(self, *args: Any, **kwargs: Any) -> str:
        """The cache key (before tenant scoping) one call with these arguments uses."""
        return self._key(self._bind(args, kwargs), args, kwargs)

    async def invalidate(self, *args: Any, **kwargs: Any) -> int:
        """Drop the cached result of the call with these arguments."""
        bound = self._bind(args, kwargs)
        tenant = self._tenant(bound, args, kwargs)
        return await self.options.cache.delete(self._key(bound, args, kwargs), tenant=tenant)

    # -- key building -------------------------------------------------------------------

    def _bind(self, args: Any, kwargs: Any) -> dict[str, Any]:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def _key(self, bound: dict[str, Any], args: Any, kwargs: Any) -> str:
        spec = self.options.key
        if callable(spec):
            return str(spec(*args, **kwargs))
        if isinstance(spec, str):
            return spec.format(**bound)
        shown = {k: v for k, v in bound.items() if k not in _SKIP}
        if not shown:
            return self.prefix
        try:
            text = dumps(shown).decode()
        except TypeError as exc:
            raise TypeError(
                f"cannot build a cache key for {self.prefix} from its arguments ({exc}); "
                "pass key= (a template or a function)"
            ) from None
        if len(text) > MAX_ARGS_IN_KEY:
            text = "#" + hashlib.sha256(text.encode()).hexdigest()[:32]
        return f"{self.prefix}:{text}"

    def _tags(self, bound: dict[str, Any], args: Any, kwargs: Any) -> list[str]:
        spec = self.options.tags
        if callable(spec):
            return list(spec(*args, **kwargs))
        return [t.format(**bound) for t in spec]

    def _tenant(self, bound: dict[str, Any], args: Any, kwargs: Any) -> Tenant:
        spec = self.options.tenant
        if spec is None:
            return None
        if callable(spec):
            return cast("Tenant", spec(*args, **kwargs))
        return spec.format(**bound)


__all__ = ["CachedFactory", "CachedFunction"]
