"""``headway db stats|slow|explain|indexes``: the query monitor and the database's own view.

Registered in ``headway.cli`` with ``app.add_typer(db_app, name="db")``. The monitor's
numbers live in the serving processes: ``--url http://host:8000`` (with the admin token
from ``--token`` or ``HEADWAY_ADMIN_TOKEN``) reads them from a running service's
``/admin/db/*``; without ``--url`` the commands ask the database directly (statistics,
EXPLAIN, index advice from ``pg_stat_statements``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from headway.errors import HeadwayError

db_app = typer.Typer(help="Database: query stats, slow queries, EXPLAIN, index advice.",
                     no_args_is_help=True)  # fmt: skip
out = Console()
err = Console(stderr=True)
T = TypeVar("T")
UrlOpt = Annotated[
    str | None, typer.Option("--url", help="A running service (reads its /admin/db/*).")
]
TokenOpt = Annotated[str | None, typer.Option("--token", help="Admin token (else the setting).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _usage(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def _local(action: Callable[[Any], Awaitable[T]]) -> T:
    from headway import Headway
    from headway.db import Database, UnsafeStatement

    async def main() -> T:
        hw = Headway()
        db = hw.capability("db") if "db" in hw.capabilities else hw.add(Database(hw))
        async with hw:
            return await action(db)

    try:
        return asyncio.run(main())
    except UnsafeStatement as exc:
        _usage(f"not explained: {exc}")
    except HeadwayError as exc:
        _usage(str(exc))
    except Exception as exc:
        if type(exc).__module__.startswith(("sqlalchemy", "asyncpg", "sqlite3")):
            _usage(f"the database refused it: {str(exc).splitlines()[0][:300]}")
        raise


def _remote(url: str, token: str | None, method: str, path: str, body: Any = None) -> Any:
    import httpx

    from headway.settings import load_settings

    if token is None:
        try:
            secret = load_settings().admin_token
        except HeadwayError as exc:
            _usage(str(exc))
        token = secret.get_secret_value() if secret is not None else None
    if not token:
        _usage("an admin token is needed: --token or HEADWAY_ADMIN_TOKEN")
    try:
        resp = httpx.request(method, url.rstrip("/") + path, json=body, timeout=30,
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    except httpx.HTTPError as exc:
        _usage(f"cannot reach {url}: {exc}")
    data = resp.json() if resp.headers.get("content-type", "").startswith("application/") else {}
    if resp.status_code >= 400:
        _usage(str(data.get("error", {}).get("message") or f"HTTP {resp.status_code}"))
    return data


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


@db_app.command("stats")
def stats(url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
          limit: int = 20) -> None:  # fmt: skip
    """Top fingerprints of a running service (--url), else the database's statistics."""
    if url:
        data = _remote(url, token, "GET", f"/admin/db/metrics?limit={limit}")
        if as_json:
            return _print_json(data)
        table = Table("count", "total ms", "mean", "p95", "p99", "rows", "fingerprint")
        for r in data["fingerprints"]:
            table.add_row(str(r["count"]), f"{r['total_ms']:.1f}", f"{r['mean_ms']:.2f}",
                          f"{r['p95_ms']:.2f}", f"{r['p99_ms']:.2f}", str(r["rows"]),
                          escape(r["fingerprint"][:120]))  # fmt: skip
        out.print(table)
        return None

    async def action(db: Any) -> dict[str, Any]:
        return dict(await db.statistics())

    data = _local(action)
    if as_json:
        return _print_json(data)
    out.print(f"database: {data['dialect']}, {data['database_bytes']} bytes, "
              f"cache hit ratio {data.get('cache_hit_ratio')}")  # fmt: skip
    table = Table("table", "rows", "bytes", "seq scans", "index scans")
    for t in data["tables"][:limit]:
        table.add_row(escape(t["table"]), str(t["rows"]), str(t.get("total_bytes", "")),
                      str(t.get("seq_scans", "")), str(t.get("index_scans", "")))  # fmt: skip
    out.print(table)
    return None


@db_app.command("slow")
def slow(url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
         limit: int = 20) -> None:  # fmt: skip
    """Slow statements logged by a running service (needs --url)."""
    if not url:
        _usage("slow statements live in the serving processes: pass --url http://host:port")
    data = _remote(url, token, "GET", f"/admin/db/slow?limit={limit}")
    if as_json:
        return _print_json(data)
    table = Table("ms", "caller", "statement")
    for e in data["slow"]:
        table.add_row(f"{e['duration_ms']:.1f}", escape(str(e["caller"])),
                      escape(e["statement"][:160]))  # fmt: skip
    out.print(table)
    return None


@db_app.command("explain")
def explain(
    sql: Annotated[str, typer.Argument(help="One SELECT.")],
    analyze: Annotated[bool, typer.Option(help="EXPLAIN (ANALYZE, BUFFERS).")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """The plan of a single SELECT (anything else is refused, exit 2)."""
    if url:
        _print_json(_remote(url, token, "POST", "/admin/db/explain",
                            {"sql": sql, "analyze": analyze})["plan"])  # fmt: skip
        return

    async def action(db: Any) -> Any:
        return await db.explain(sql, analyze=analyze)

    _print_json(_local(action))


@db_app.command("indexes")
def indexes(url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Suggested CREATE INDEX CONCURRENTLY statements, with their evidence."""
    if url:
        data = _remote(url, token, "GET", "/admin/db/indexes")
    else:

        async def action(db: Any) -> dict[str, Any]:
            return dict(await db.index_advice())

        data = _local(action)
    if as_json:
        return _print_json(data)
    if not data["suggestions"]:
        out.print(f"no suggestion (source: {data.get('source')}). {data.get('note', '')}")
        return None
    for s in data["suggestions"]:
        ev = s["evidence"]
        distinct = ev["column"]["estimated_distinct"]
        line = f"  rows={ev['table_rows']} distinct={distinct} source={ev['source']}"
        out.print(f"{escape(s['statement'])}\n{line}")
    return None
