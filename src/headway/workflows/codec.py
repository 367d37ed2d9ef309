"""JSON in and out of the store: strict on the way in (TypeError names the value)."""

from __future__ import annotations

from typing import Any

import orjson

_STRICT = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any, what: str = "a workflow value") -> bytes:
    try:
        return orjson.dumps(value, default=_refuse, option=_STRICT)
    except TypeError as exc:
        raise TypeError(f"{what} must be JSON serializable: {exc}") from None


def loads(data: bytes | str | None) -> Any:
    return None if data is None else orjson.loads(data)


def normalize(value: Any, what: str = "a workflow value") -> Any:
    """``value`` as it will read back from any store (tuples become lists, ...)."""
    return orjson.loads(dumps(value, what))
