"""The ``headway`` command line (typer + rich).

Every usage error (bad option, bad setting, unknown app) prints one message and exits 2;
``check`` exits 1 when a backend is down. No traceback reaches the terminal for an error
the user can fix.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from headway import __version__
from headway.cli.breakers import breakers_app
from headway.cli.cache import cache_app
from headway.cli.db import db_app
from headway.cli.flags import flags_app
from headway.cli.jobs import jobs_app, scheduler, worker
from headway.cli.loadtest import loadtest
from headway.cli.storage import storage_app
from headway.constants import DEFAULT_APP
from headway.errors import ConfigError, HeadwayError
from headway.settings import Settings, load_settings

app = typer.Typer(
    name="headway",
    help="headway: jobs, cache, limits, breakers, flags, events and more for async services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
demo_app = typer.Typer(help="The reference service (multi-tenant AI-agent platform).")
app.add_typer(demo_app, name="demo")
app.add_typer(jobs_app, name="jobs")
app.add_typer(cache_app, name="cache")
app.add_typer(breakers_app, name="breakers")
app.add_typer(flags_app, name="flags")
app.add_typer(db_app, name="db")
app.add_typer(storage_app, name="storage")
app.command()(worker)
app.command()(scheduler)
app.command()(loadtest)

out = Console()
err = Console(stderr=True)


class UsageError(HeadwayError):
    """Raised by a command for bad input: printed, exit code 2."""


def _settings(**overrides: Any) -> Settings:
    return load_settings({k: v for k, v in overrides.items() if v is not None})


def _import_app(target: str) -> Any:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr.isidentifier():
        raise UsageError(f"APP must look like 'package.module:attribute', got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    if not hasattr(module, attr):
        raise UsageError(f"module {module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)


@app.command()
def version() -> None:
    """Print headway's version."""
    out.print(f"headway {__version__}")


@app.command()
def config(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective settings (secrets and URL passwords masked)."""
    from headway.admin import config_view

    view = config_view(_settings())
    if as_json:
        out.print_json(json.dumps(view, default=str))
        return
    table = Table("variable", "value", title="headway settings")
    table.columns[1].overflow = "fold"
    for name, value in view.items():
        table.add_row(escape(name), "" if value is None else escape(str(value)))
    out.print(table)


@app.command()
def check() -> None:
    """Connect to every configured backend; exit 1 if one is down."""
    from headway.connections import Connections

    async def run() -> tuple[list[Any], list[str]]:
        settings = _settings()
        conns = Connections(settings)
        try:
            results = await conns.check_all()
            return results, await _cache_warnings(conns, settings, results)
        finally:
            await conns.close()

    results, warnings = asyncio.run(run())
    table = Table("backend", "url", "status", "latency ms", "error")
    for r in results:
        status = "[green]up[/]" if r.ok else "[red]down[/]"
        table.add_row(r.name, escape(r.url), status, f"{r.latency_ms:.1f}", escape(r.error or ""))
    out.print(table)
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


async def _cache_warnings(conns: Any, settings: Settings, results: list[Any]) -> list[str]:
    """A cache on Redis needs an evicting maxmemory-policy; say so when it has not."""
    from headway.cache.ops import eviction_warning
    from headway.settings import mask_url

    url = settings.backend_url("cache")
    up = {r.url for r in results if r.ok}
    if not url.startswith(("redis", "unix")) or mask_url(url) not in up:
        return []
    reply = await conns.redis(url).config_get("maxmemory-policy")
    policy = reply.get(b"maxmemory-policy", reply.get("maxmemory-policy"))
    policy = policy.decode() if isinstance(policy, bytes) else policy
    warning = eviction_warning(policy)
    return [warning] if warning else []


@app.command()
def serve(
    target: Annotated[
        str, typer.Argument(metavar="APP", help="'module:attr' of an ASGI app.")
    ] = DEFAULT_APP,
    host: Annotated[str | None, typer.Option(help="Bind address [HEADWAY_HOST].")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port [HEADWAY_PORT].")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Processes [HEADWAY_WORKERS].")
    ] = None,
    max_requests: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Replace a web process after it served this many requests (it finishes the "
            "requests in flight first; the others keep serving). Default: never.",
        ),
    ] = None,
    max_requests_jitter: Annotated[
        int,
        typer.Option(
            min=0, help="Add 0..N to --max-requests per process, so they do not recycle together."
        ),
    ] = 0,
    graceful_timeout: Annotated[
        int,
        typer.Option(
            min=1,
            max=3600,
            help="Seconds a stopping process waits for requests in flight before cancelling.",
        ),
    ] = 30,
) -> None:
    """Serve an ASGI app (default: the reference service, migrated and seeded first)."""
    import uvicorn

    settings = _settings(host=host, port=port, workers=workers)
    _import_app(target)  # fail here, with a message, rather than inside uvicorn
    if target == DEFAULT_APP:
        _prepare_demo(settings, seed_if_empty=settings.demo_seed)
    out.print(f"headway serving {target} on http://{settings.host}:{settings.port}")
    config = uvicorn.Config(
        target,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level.lower(),
        lifespan="on",
        access_log=False,  # headway.observe writes the access log (request id, route, tenant)
        timeout_graceful_shutdown=graceful_timeout,
    )
    if settings.workers > 1 or max_requests is not None:
        _run_supervised(config, max_requests, max_requests_jitter)
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise typer.Exit(3)  # uvicorn's startup-failure code (it has logged why)


def _run_supervised(config: Any, max_requests: int | None, jitter: int) -> None:
    """Web processes under a supervisor that replaces one that dies or reached
    ``--max-requests`` (the replacement serves before the old one stops; see serving.py)."""
    from headway.cli.serving import RecyclingSupervisor

    _share_metrics_across_workers()
    RecyclingSupervisor(config, [config.bind_socket()], max_requests, jitter).run()


def _share_metrics_across_workers() -> None:
    """prometheus_client's multiprocess mode: every worker writes to one temp directory."""
    import atexit
    import os
    import shutil
    import tempfile

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return  # the user's own directory: theirs to empty between runs
    directory = tempfile.mkdtemp(prefix="headway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # inherited by every worker
    atexit.register(shutil.rmtree, directory, ignore_errors=True)


def _prepare_demo(settings: Settings, *, seed_if_empty: bool, force_seed: bool = False) -> None:
    from headway.connections import Connections
    from headway.demo.seed import prepare, seed

    async def run() -> list[Any]:
        conns = Connections(settings)
        try:
            engine = conns.engine()
            keys = await prepare(engine, seed_if_empty=seed_if_empty and not force_seed)
            return await seed(engine) if force_seed else keys
        finally:
            await conns.close()

    keys = asyncio.run(run())
    if keys:
        table = Table("tenant", "plan", "API key", title="demo API keys (shown once)")
        for k in keys:
            table.add_row(escape(k.tenant), k.plan, k.key)
        out.print(table)
        base = f"http://{settings.host}:{settings.port}"
        url = f"{base}/api/v2/posts?limit=5&fields=id,title&include=author"
        out.print(f"try: curl -H 'Authorization: Bearer {keys[0].key}' '{url}'", soft_wrap=True)


@demo_app.command("seed")
def demo_seed() -> None:
    """Migrate the database, create the demo tenants if absent and print a new key for each."""
    _prepare_demo(_settings(), seed_if_empty=True, force_seed=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``headway`` console script."""
    try:
        app(args=argv, standalone_mode=True)
    except (ConfigError, UsageError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except HeadwayError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(1)


__all__ = ["app", "main"]
