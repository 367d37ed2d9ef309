"""``headway cache stats|clear|warm``: the cache's operations from a terminal.

Registered in ``headway.cli`` with ``app.add_typer(cache_app, name="cache")``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from headway.cli.common import run_with

cache_app = typer.Typer(help="The two-level cache: stats, clear, warm.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _run(action: Callable[[Any], Awaitable[T]]) -> T:
    """Build a hub from the environment, run ``action(cache)`` inside it."""
    return run_with("cache", action)


@cache_app.command("stats")
def stats(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Backend facts (entries, memory, eviction policy) and a warning when it matters."""
    from headway.cache.ops import describe

    report = _run(describe)
    if as_json:
        out.print_json(json.dumps(report, default=str))
    else:
        table = Table("field", "value", title=f"cache {report['url']}")
        for name, value in report["backend"].items():
            table.add_row(name, str(value))
        out.print(table)
    if report["warning"]:
        err.print(f"[yellow]warning:[/] {report['warning']}", highlight=False)


@cache_app.command("clear")
def clear(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's entries.")] = None,
    pattern: Annotated[
        str | None, typer.Option(help="Only keys matching this glob (slow path: SCAN).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete cached entries: all of them, one tenant's, or keys matching a pattern."""
    scope = f"tenant {tenant!r}" if tenant is not None else "every tenant"
    what = f"keys matching {pattern!r} of {scope}" if pattern else f"all entries of {scope}"
    if not yes and not typer.confirm(f"Delete {what}?"):
        raise typer.Exit(1)

    async def action(cache: Any) -> int:
        if pattern is not None:
            return int(await cache.invalidate_pattern(pattern, tenant=tenant))
        if tenant is not None:
            return int(await cache.invalidate_tenant(tenant))
        return int(await cache.clear())

    out.print(f"deleted {_run(action)} keys")


@cache_app.command("warm")
def warm(
    target: Annotated[
        str,
        typer.Argument(
            metavar="MODULE:ATTR",
            help="A mapping {key: loader}, a list of (key, loader), or a function returning one.",
        ),
    ],
    tenant: Annotated[str | None, typer.Option(help="Tenant of the keys.")] = None,
    ttl: Annotated[
        float | None, typer.Option(min=0.001, help="Seconds (default: presets).")
    ] = None,
) -> None:
    """Load and store a list of keys now (e.g. before traffic moves to a new deployment)."""
    items = _load_items(target)

    async def action(cache: Any) -> int:
        return int(await cache.warm(items, tenant=tenant, ttl=ttl))

    stored = _run(action)
    out.print(f"warmed {stored} of {len(items)} keys")
    if stored < len(items):
        raise typer.Exit(1)


def _load_items(target: str) -> list[tuple[str, Any]]:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        _usage(f"expected MODULE:ATTR, got {target!r}")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        _usage(f"cannot load {target!r}: {exc}")
    if callable(obj) and not isinstance(obj, dict):
        obj = obj()
    items = list(obj.items()) if isinstance(obj, dict) else list(obj)
    if not all(isinstance(i, tuple) and len(i) == 2 and isinstance(i[0], str) for i in items):
        _usage(f"{target} must give {{key: loader}} or [(key, loader), ...]")
    return items


def _usage(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


__all__ = ["cache_app"]
