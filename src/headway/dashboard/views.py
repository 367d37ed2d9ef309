"""Template filters: times, durations, sizes and JSON, formatted for people."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

NONE = "\N{EN DASH}"  # shown for a missing value


def when(ts: float | None) -> str:
    """``2026-11-23 16:04:05 UTC``."""
    if ts is None:
        return NONE
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(ts: float | None, now: float | None = None) -> str:
    """``12 s ago`` / ``in 3 min``."""
    if ts is None:
        return NONE
    delta = (now or time.time()) - ts
    text = duration(abs(delta))
    return f"{text} ago" if delta >= 0 else f"in {text}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NONE
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def size(n: float | None) -> str:
    if n is None:
        return NONE
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def as_json(value: Any) -> str:
    """Pretty JSON (anything not JSON-able shown with its ``str``)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def number(value: float | None) -> str:
    if value is None:
        return NONE
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


FILTERS = {
    "when": when,
    "ago": ago,
    "duration": duration,
    "size": size,
    "as_json": as_json,
    "number": number,
}
