"""``headway loadtest SCENARIO --host http://127.0.0.1:PORT``: run a scenario, print the
criteria, exit 1 when one fails (2 for bad input)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from headway.cli.common import usage_error
from headway.loadtest.scenarios import SCENARIOS

out = Console()


def loadtest(
    scenario: Annotated[str, typer.Argument(help=f"One of: {', '.join(SCENARIOS)}.")],
    host: Annotated[str, typer.Option(help="The running service (127.0.0.1 / localhost).")],
    duration: Annotated[
        float | None, typer.Option(min=5, max=86400, help="Seconds (shortens the scenario).")
    ] = None,
    users: Annotated[int | None, typer.Option(min=1, max=100_000, help="Peak users.")] = None,
    rate: Annotated[
        float | None, typer.Option(min=0.01, help="Actions per second of all users together.")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(help="Use these keys (repeatable) instead of seeding the database."),
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option(
            envvar="HEADWAY_ADMIN_TOKEN",
            show_envvar=False,
            help="The service's admin token: database pool readings [HEADWAY_ADMIN_TOKEN].",
        ),
    ] = None,
    p95_ms: Annotated[float, typer.Option(min=1, help="Criterion: p95 latency below.")] = 200.0,
    max_errors: Annotated[
        float, typer.Option(min=0, max=1, help="Criterion: error ratio below.")
    ] = 0.01,
    max_memory_growth_mb: Annotated[
        float, typer.Option(min=1, help="Criterion: service memory growth below.")
    ] = 150.0,
    drain_timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for executions still running at the end.")
    ] = 60.0,
    allow_remote_host: Annotated[
        bool, typer.Option(help="Allow a host other than 127.0.0.1/localhost.")
    ] = False,
) -> None:
    """Load-test a running service with Locust (headless) and check the pass criteria."""
    from headway.loadtest.criteria import Criteria
    from headway.loadtest.runner import LoadTest, LoadTestError, run
    from headway.loadtest.scenarios import scenario as find

    try:
        chosen = find(scenario).shortened(duration, users, rate)
        test = LoadTest(
            chosen,
            host,
            report=report,
            api_keys=api_key or [],
            admin_token=admin_token or None,
            criteria=Criteria(p95_ms, max_errors, max_memory_growth_mb),
            drain_timeout=drain_timeout,
            allow_remote=allow_remote_host,
        )
        out.print(
            f"loadtest {chosen.name}: {chosen.users} users, {chosen.rate:g} actions/s, "
            f"{chosen.duration:g} s against {escape(host)}"
        )
        result = run(test)
    except KeyError as exc:
        usage_error(str(exc.args[0]))
    except LoadTestError as exc:
        usage_error(str(exc))
    _print(result)
    if not result.ok:
        raise typer.Exit(1)


def _print(result: object) -> None:
    from headway.loadtest.runner import Result

    assert isinstance(result, Result)
    total = result.results["total"]
    out.print(
        f"{total['requests']} requests, {total['rps']} req/s, p50 {total['median_ms']} ms, "
        f"p95 {total['p95_ms']} ms, p99 {total['p99_ms']} ms, peak users "
        f"{result.results['max_users']}"
    )
    stress = result.results.get("stress") or {}
    if stress:
        out.print(f"stress: held {stress.get('held')}; broke at {stress.get('broke')}")
    table = Table("criterion", "measured", "limit", "", title="pass criteria")
    for o in result.outcomes:
        verdict = "[green]pass[/]" if o.ok else "[red]FAIL[/]"
        table.add_row(escape(o.name), escape(o.value), escape(o.limit), verdict)
    out.print(table)
    for error in result.results["errors"][:10]:
        out.print(
            f"[red]error[/] {error['count']}x {escape(error['name'])}: {escape(error['error'])}"
        )
    if result.report is not None:
        out.print(f"report: {escape(str(result.report))}")
    out.print("[green]PASSED[/]" if result.ok else "[red]FAILED[/]")
