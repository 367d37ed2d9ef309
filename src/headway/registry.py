"""URL scheme -> backend class, per capability, imported lazily.

Each capability registers its backends in its (light) package ``__init__`` by naming the
module that holds the class, not by importing it, so that ``headway`` imports with only
its core dependencies installed::

    registry.register("jobs", "redis", "headway.jobs.backends.redis:RedisJobBackend",
                      extra="redis")

``registry.resolve("jobs", "redis://localhost/0")`` then imports the module; a missing
optional dependency becomes a :class:`MissingExtraError` naming the
``pip install 'headway[redis]'`` to run, and an unknown scheme an
:class:`UnknownBackendError` listing the known ones.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from headway.errors import MissingExtraError, UnknownBackendError


@dataclass(frozen=True, slots=True)
class BackendSpec:
    kind: str
    scheme: str
    target: str  # "package.module:ClassName"
    extra: str | None = None


_BACKENDS: dict[str, dict[str, BackendSpec]] = {}


def register(kind: str, scheme: str, target: str, *, extra: str | None = None) -> BackendSpec:
    """Register ``target`` ("module:attr") as the backend of ``kind`` for URLs ``scheme://``."""
    if ":" not in target:
        raise ValueError(f"target must be 'module:attr', got {target!r}")
    spec = BackendSpec(kind, scheme.lower(), target, extra)
    _BACKENDS.setdefault(kind, {})[spec.scheme] = spec
    return spec


def unregister(kind: str, scheme: str) -> None:
    _BACKENDS.get(kind, {}).pop(scheme.lower(), None)


def schemes(kind: str) -> list[str]:
    """The schemes registered for ``kind``, sorted."""
    return sorted(_BACKENDS.get(kind, {}))


def scheme_of(url: str) -> str:
    """``postgresql+asyncpg://...`` -> ``postgresql``; a URL without ``://`` -> ``""``."""
    if "://" not in url:
        return ""
    return urlsplit(url).scheme.lower().split("+", 1)[0]


def spec_for(kind: str, url: str) -> BackendSpec:
    known = _BACKENDS.get(kind, {})
    scheme = scheme_of(url)
    spec = known.get(scheme)
    if spec is None:
        listed = ", ".join(f"{s}://" for s in sorted(known)) or "none registered"
        raise UnknownBackendError(
            f"no {kind} backend for URL scheme {scheme + '://' if scheme else repr(url)}; "
            f"known schemes: {listed}"
        )
    return spec


def resolve(kind: str, url: str) -> type:
    """Import and return the backend class registered for ``url``'s scheme."""
    cls = resolve_callable(kind, url)
    if not isinstance(cls, type):
        raise TypeError(f"{spec_for(kind, url).target} is not a class")
    return cls


def resolve_callable(kind: str, url: str) -> object:
    """Import and return whatever ``target`` names (a class or a factory function)."""
    spec = spec_for(kind, url)
    module_name, _, attr = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or ""
        if spec.extra is not None and not missing.startswith("headway"):
            raise MissingExtraError(
                f"the {spec.scheme}:// backend for {kind} needs the {spec.extra!r} extra "
                f"(missing module {missing!r}); install it with: "
                f"pip install 'headway[{spec.extra}]'"
            ) from exc
        raise
    return getattr(module, attr)
