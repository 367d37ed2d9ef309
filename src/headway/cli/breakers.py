"""``headway breakers list|reset|open|close NAME``: circuit breakers from a terminal.

Registered in ``headway.cli`` with ``app.add_typer(breakers_app, name="breakers")``.
The CLI reads the shared state (``HEADWAY_RESILIENCE_URL`` / ``HEADWAY_REDIS_URL``); with
``memory://`` the state lives inside each server process: use ``/admin/breakers`` there.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from headway.cli.common import run_with

breakers_app = typer.Typer(
    help="Circuit breakers: list, reset, force open, force close.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _run(action: Callable[[Any], Awaitable[T]]) -> T:
    return run_with("breakers", action)


def _show(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table("breaker", "state", "forced", "calls", "failures", "slow", "consecutive")
    for r in rows:
        w = r["window"]
        table.add_row(
            escape(r["name"]),
            r["state"],
            "yes" if r["forced"] else "",
            str(w["calls"]),
            str(w["failures"]),
            str(w["slow"]),
            str(r["consecutive_failures"]),
        )
    out.print(table)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The breaker's name.")]


@breakers_app.command("list")
def list_breakers(as_json: JsonOpt = False) -> None:
    """Every known breaker with its shared state and window counts."""

    async def action(breakers: Any) -> list[dict[str, Any]]:
        return list(await breakers.list())

    rows = _run(action)
    if not rows and not as_json:
        out.print("no breakers known (memory:// state lives in each server process)")
        return
    _show(rows, as_json)


def _force(name: str, method: str, as_json: bool) -> None:
    async def action(breakers: Any) -> dict[str, Any]:
        return dict(await getattr(breakers, method)(name))

    _show([_run(action)], as_json)


@breakers_app.command("reset")
def reset(name: NameArg, as_json: JsonOpt = False) -> None:
    """Close NAME, empty its window and end any forced state."""
    _force(name, "reset", as_json)


@breakers_app.command("open")
def force_open(name: NameArg, as_json: JsonOpt = False) -> None:
    """Force NAME open (every process refuses calls) until reset."""
    _force(name, "force_open", as_json)


@breakers_app.command("close")
def force_close(name: NameArg, as_json: JsonOpt = False) -> None:
    """Force NAME closed (it never trips) until reset."""
    _force(name, "force_close", as_json)


__all__ = ["breakers_app"]
