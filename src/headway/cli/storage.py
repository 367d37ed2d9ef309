"""``headway storage stats|recount|migrate``: file storage from a terminal.

Registered in ``headway.cli`` with ``app.add_typer(storage_app, name="storage")``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from headway.cli.common import usage_error

storage_app = typer.Typer(help="File storage: stats, recount, migrate.", no_args_is_help=True)
out = Console()
T = TypeVar("T")
TenantOpt = Annotated[str | None, typer.Option(help="One tenant only.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def run_storage(action: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``action(storage)`` in a started hub (adds Storage if not built in yet)."""
    from headway import Headway
    from headway.errors import HeadwayError
    from headway.storage import Storage

    async def main() -> T:
        hw = Headway()
        storage = hw.add(Storage(hw))
        async with hw:
            return await action(storage)

    try:
        return asyncio.run(main())
    except HeadwayError as exc:
        usage_error(str(exc))


def _print_stats(stats: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(stats))
        return
    table = Table("tenant", "category", "files", "bytes")
    for tenant, entry in stats.items():
        for category, cell in entry["categories"].items():
            table.add_row(escape(tenant), escape(category), str(cell["files"]), str(cell["bytes"]))
        table.add_row(escape(tenant), "[b]total[/]", str(entry["files"]), str(entry["bytes"]))
    out.print(table)


@storage_app.command()
def stats(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Files and bytes per tenant and category (kept incrementally)."""
    _print_stats(run_storage(lambda s: s.stats(tenant)), as_json)


@storage_app.command()
def recount(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild the per-tenant totals from a listing of the store."""
    _print_stats(run_storage(lambda s: s.recount(tenant)), as_json)


@storage_app.command()
def migrate(
    from_url: Annotated[str, typer.Option("--from", help="Source URL (file:///..., s3://...).")],
    to_url: Annotated[str, typer.Option("--to", help="Target URL.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Compare sizes and SHA-256.")] = False,
) -> None:
    """Copy every object (with metadata) to another store; resumable, source untouched."""
    from headway.errors import HeadwayError
    from headway.settings import load_section, load_settings
    from headway.storage import StorageSettings, open_backend
    from headway.storage.migrate import MigrateReport
    from headway.storage.migrate import migrate as run_migrate

    if from_url.rstrip("/") == to_url.rstrip("/"):
        usage_error("--from and --to are the same store")
    try:
        section, secret = load_section(StorageSettings), load_settings().secret_bytes()
        source = open_backend(from_url, section, secret)
        target = open_backend(to_url, section, secret)
    except (HeadwayError, ValueError) as exc:
        usage_error(str(exc))

    async def main(bar: Progress) -> MigrateReport:
        task = bar.add_task("migrating", total=None)
        await source.start()
        await target.start()
        try:
            return await run_migrate(
                source,
                target,
                dry_run=dry_run,
                verify=verify,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        finally:
            await source.close()
            await target.close()

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=out) as bar:
        try:
            report = asyncio.run(main(bar))
        except (HeadwayError, OSError) as exc:
            usage_error(str(exc))
    verb = "would copy" if dry_run else "copied"
    out.print(
        f"{report.total} objects: {verb} {report.copied} ({report.bytes} bytes), "
        f"{report.skipped} already there"
    )
    if report.mismatched:
        for key in report.mismatched:
            out.print(f"[red]mismatch:[/] {escape(key)}")
        raise typer.Exit(1)
