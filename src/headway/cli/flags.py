"""``headway flags list|set|rollout|eval``: feature flags from a terminal.

Registered in ``headway.cli`` with ``app.add_typer(flags_app, name="flags")``. Changes
are written to the database (with an audit entry, actor ``cli``) and reach every running
process within a second.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from headway.cli.common import run_with

flags_app = typer.Typer(help="Feature flags: list, set, rollout, eval.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")
TenantOpt = Annotated[str | None, typer.Option(help="A tenant's own flag.")]


def _usage(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def _run(action: Callable[[Any], Awaitable[T]]) -> T:
    try:
        return run_with("flags", action)
    except ValidationError as exc:
        _usage(f"invalid flag definition: {exc.errors()[0]['msg']}")


@flags_app.command("list")
def list_flags(
    tenant: TenantOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every flag (global, and the tenant's own with --tenant)."""

    async def action(flags: Any) -> list[dict[str, Any]]:
        return list(await flags.list(tenant))

    rows = _run(action)
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table("flag", "tenant", "enabled", "rollout", "variants")
    for r in rows:
        table.add_row(
            escape(r["key"]),
            escape(r["tenant"] or ""),
            "on" if r["enabled"] else "off",
            "" if r.get("rollout") is None else f"{r['rollout']:g} %",
            escape(", ".join(r["variants"])),
        )
    out.print(table)


@flags_app.command("set")
def set_flag(
    key: Annotated[str, typer.Argument(help="Flag key.")],
    state: Annotated[str, typer.Argument(metavar="on|off|JSON", help="on, off or a definition.")],
    tenant: TenantOpt = None,
) -> None:
    """Turn KEY on or off (created if absent), or store a full JSON definition."""
    if state in ("on", "off"):
        changes: dict[str, Any] = {"enabled": state == "on"}
        full = False
    else:
        try:
            changes = dict(json.loads(state))
        except (ValueError, TypeError):
            _usage(f"STATE must be on, off or a JSON object, got {state!r}")
        full = True

    async def action(flags: Any) -> dict[str, Any]:
        exists = flags.find(key, tenant) is not None
        if full or not exists:
            return dict(await flags.save({**changes, "key": key}, tenant=tenant, actor="cli"))
        return dict(await flags.update(key, changes, tenant=tenant, actor="cli"))

    result = _run(action)
    out.print(f"{key}: {'on' if result['enabled'] else 'off'}")


@flags_app.command("rollout")
def rollout(
    key: Annotated[str, typer.Argument(help="Flag key.")],
    percentage: Annotated[float, typer.Argument(help="0-100 % of users.")],
    tenant: TenantOpt = None,
) -> None:
    """Serve KEY to PERCENTAGE % of users (sticky; raising it keeps who had it)."""
    if not 0 <= percentage <= 100:
        _usage(f"PERCENTAGE must be between 0 and 100, got {percentage:g}")

    async def action(flags: Any) -> dict[str, Any]:
        if flags.find(key, tenant) is None:
            return dict(await flags.save({"key": key, "rollout": percentage}, tenant=tenant))
        return dict(await flags.update(key, {"rollout": percentage}, tenant=tenant, actor="cli"))

    _run(action)
    out.print(f"{key}: rollout {percentage:g} %")


@flags_app.command("eval")
def evaluate(
    key: Annotated[str, typer.Argument(help="Flag key.")],
    user: Annotated[str | None, typer.Option(help="User id (the stickiness key).")] = None,
    tenant: TenantOpt = None,
    attr: Annotated[
        list[str] | None, typer.Option("--attr", help="Context attribute NAME=VALUE.")
    ] = None,
) -> None:
    """Evaluate KEY for a context; prints value, variant and reason as JSON."""
    context: dict[str, Any] = {}
    for item in attr or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            _usage(f"--attr must be NAME=VALUE, got {item!r}")
        context[name] = value

    async def action(flags: Any) -> dict[str, Any]:
        ev = flags.evaluate_now(key, tenant=tenant, user=user, context=context, default=None)
        return dict(ev.public())

    out.print_json(json.dumps(_run(action), default=str))


__all__ = ["flags_app"]
