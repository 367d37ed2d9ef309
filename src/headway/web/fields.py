"""Sparse fieldsets (``?fields=id,name``) and relation includes (``?include=owner``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from headway.web.errors import HTTPError

__all__ = ["parse_fields", "parse_include", "select_fields"]


def _split(raw: str | None) -> list[str]:
    if not raw:
        return []
    return [name for name in (part.strip() for part in raw.split(",")) if name]


def _check_known(names: list[str], allowed: Collection[str], code: str, what: str) -> None:
    unknown = list(dict.fromkeys(name for name in names if name not in allowed))
    if unknown:
        known = sorted(allowed)
        raise HTTPError(
            400,
            code,
            f"Unknown {what}(s): {', '.join(unknown)}. Allowed: {', '.join(known)}",
            details={"unknown": unknown, "allowed": known},
        )


def parse_fields(
    raw: str | None,
    allowed: Collection[str],
    *,
    always: Collection[str] = ("id",),
) -> frozenset[str] | None:
    """The fields asked for (plus `always`), or None for all fields."""
    names = _split(raw)
    if not names:
        return None
    _check_known(names, allowed, "invalid_fields", "field")
    return frozenset(names).union(always)


def parse_include(raw: str | None, allowed: Collection[str]) -> frozenset[str]:
    """The relations asked for (empty when none)."""
    names = _split(raw)
    _check_known(names, allowed, "invalid_include", "include")
    return frozenset(names)


def select_fields(data: Mapping[str, Any], fields: frozenset[str] | None) -> dict[str, Any]:
    """`data` restricted to `fields` (all of it when `fields` is None)."""
    if fields is None:
        return dict(data)
    return {name: value for name, value in data.items() if name in fields}
