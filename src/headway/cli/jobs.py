"""``headway jobs ...``, ``headway worker`` and ``headway scheduler``.

Registered in :mod:`headway.cli` with::

    from headway.cli.jobs import jobs_app, scheduler, worker
    app.add_typer(jobs_app, name="jobs")
    app.command()(worker)
    app.command()(scheduler)

``APP`` is ``module:attribute`` naming the :class:`~headway.Headway` hub (or the
:class:`~headway.jobs.Jobs` capability, or an ASGI app the hub is installed on) whose
tasks the worker runs. The management commands do not need it: without ``--app`` they
open the job store configured by the ``HEADWAY_*`` variables.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import FrameType
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from headway.jobs import STATES, Jobs
from headway.jobs.models import JobError

jobs_app = typer.Typer(help="Inspect and manage background jobs.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")

AppOption = Annotated[
    str | None, typer.Option("--app", help="'module:attr' of the hub (default: from settings).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``90`` / ``90s`` / ``15m`` / ``1h`` / ``2d`` / ``1w`` -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration (e.g. 30s, 15m, 1h, 2d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def load_jobs(target: str | None) -> Jobs:
    """The Jobs capability of ``target`` (module:attr), or a fresh one from the settings."""
    from headway import Headway

    if target is None:
        hub = Headway()
        return hub.add(Jobs(hub))
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr.isidentifier():
        raise typer.BadParameter(f"APP must look like 'package.module:attribute', got {target!r}")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise typer.BadParameter(f"cannot load {target!r}: {exc}") from None
    if isinstance(obj, Jobs):
        return obj
    owner: object = obj
    if not isinstance(owner, Headway):
        owner = getattr(getattr(obj, "state", None), "headway", None)
    if not isinstance(owner, Headway):
        raise typer.BadParameter(f"{target!r} is not a Headway hub, a Jobs capability or an app")
    if "jobs" not in owner.capabilities:
        return owner.add(Jobs(owner))
    found = owner.capability("jobs")
    assert isinstance(found, Jobs)
    return found


def _run(jobs: Jobs, action: Callable[[Jobs], Awaitable[T]]) -> T:
    async def main() -> T:
        async with jobs.hw:
            return await action(jobs)

    try:
        return asyncio.run(main())
    except (JobError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


# -- management commands ---------------------------------------------------------------


@jobs_app.command()
def stats(app: AppOption = None, as_json: JsonOption = False) -> None:
    """Jobs per queue and state."""
    data = _run(load_jobs(app), lambda j: j.stats())
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table("queue", *STATES, "paused", title="headway jobs")
    for queue, row in data.items():
        table.add_row(queue, *(str(row[s]) for s in STATES), "yes" if row["paused"] else "")
    out.print(table)


@jobs_app.command("list")
def list_jobs(
    queue: Annotated[str, typer.Argument(help="Queue name.")] = "default",
    state: Annotated[str, typer.Option(help=f"One of: {', '.join(STATES)}.")] = "queued",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Jobs of a queue in a state."""
    found = _run(load_jobs(app), lambda j: j.list(queue, state, limit=limit))
    _print_jobs(found, as_json, f"{queue}: {state}")


@jobs_app.command()
def failed(
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """The failed store, newest first."""
    found = _run(load_jobs(app), lambda j: j.failed(queue, limit=limit))
    _print_jobs(found, as_json, "failed jobs")


def _print_jobs(found: list[Any], as_json: bool, title: str) -> None:
    if as_json:
        out.print_json(json.dumps([j.to_dict() for j in found], default=str))
        return
    table = Table("id", "queue", "task", "state", "attempts", "finished", "error", title=title)
    for j in found:
        error = (j.error or "")[:80]
        attempts = f"{j.attempts}/{j.max_attempts}"
        table.add_row(j.id, j.queue, j.task, j.state, attempts, _when(j.finished_at), error)
    out.print(table)


@jobs_app.command()
def show(
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    queue: Annotated[str | None, typer.Option()] = None,
    app: AppOption = None,
) -> None:
    """Everything recorded about one job (JSON)."""

    async def action(j: Jobs) -> dict[str, Any]:
        return (await j._require(job_id, queue)).to_dict()

    out.print_json(json.dumps(_run(load_jobs(app), action), default=str))


@jobs_app.command()
def retry(
    job_id: Annotated[str | None, typer.Argument(metavar="[ID]")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every failed job.")] = False,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    app: AppOption = None,
) -> None:
    """Requeue a failed job (ID) or every failed job (--all)."""
    if (job_id is None) == (not all_):
        raise typer.BadParameter("give a job ID or --all (not both)")
    jobs = load_jobs(app)
    if all_:
        count = _run(jobs, lambda j: j.retry_all(queue))
        out.print(f"requeued {count} job(s)")
        return
    assert job_id is not None
    if not _run(jobs, lambda j: j.retry(job_id, queue)):
        err.print(f"[red]error:[/] job {job_id} is not failed or cancelled", highlight=False)
        raise typer.Exit(2)
    out.print(f"requeued {job_id}")


@jobs_app.command()
def delete(
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    queue: Annotated[str | None, typer.Option()] = None,
    app: AppOption = None,
) -> None:
    """Delete a job that is not running."""
    if not _run(load_jobs(app), lambda j: j.delete(job_id, queue)):
        err.print(f"[red]error:[/] job {job_id} is running", highlight=False)
        raise typer.Exit(2)
    out.print(f"deleted {job_id}")


@jobs_app.command()
def cancel(
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    queue: Annotated[str | None, typer.Option()] = None,
    app: AppOption = None,
) -> None:
    """Cancel a queued job, or ask the worker running it to stop (state "cancelled")."""
    if not _run(load_jobs(app), lambda j: j.cancel(job_id, queue)):
        err.print(f"[red]error:[/] job {job_id} has already finished", highlight=False)
        raise typer.Exit(2)
    out.print(f"cancelled {job_id} (a running job stops at its worker's next heartbeat)")


@jobs_app.command()
def pause(queue: Annotated[str, typer.Argument()], app: AppOption = None) -> None:
    """Stop workers from taking jobs of QUEUE."""
    _run(load_jobs(app), lambda j: j.pause(queue))
    out.print(f"paused {queue}")


@jobs_app.command()
def resume(queue: Annotated[str, typer.Argument()], app: AppOption = None) -> None:
    """Let workers take jobs of QUEUE again."""
    _run(load_jobs(app), lambda j: j.resume(queue))
    out.print(f"resumed {queue}")


@jobs_app.command()
def clean(
    state: Annotated[str, typer.Option(help="succeeded, failed or cancelled.")] = "succeeded",
    older_than: Annotated[str | None, typer.Option(help="e.g. 1h, 7d.")] = None,
    keep: Annotated[int | None, typer.Option(min=0, help="Keep the newest N.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    app: AppOption = None,
) -> None:
    """Delete finished jobs (all of the state, or by age / beyond the newest N)."""
    age = None if older_than is None else parse_duration(older_than)
    count = _run(load_jobs(app), lambda j: j.clean(state, queue=queue, older_than=age, keep=keep))
    out.print(f"deleted {count} {state} job(s)")


# -- worker and scheduler --------------------------------------------------------------

AppArgument = Annotated[str, typer.Argument(metavar="APP", help="'module:attr' of the hub.")]


def worker(
    target: AppArgument,
    queues: Annotated[
        str, typer.Option("--queues", "-q", help="Comma-separated, in priority order.")
    ] = "default",
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", min=1, max=10000, help="[HEADWAY_JOBS_CONCURRENCY]"),
    ] = None,
    processes: Annotated[int, typer.Option("--processes", "-p", min=1, max=64)] = 1,
    weighted: Annotated[bool, typer.Option(help="Weighted queue order (low never starves).")] = (
        False
    ),
    with_scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="Also run the cron scheduler.")
    ] = False,
    grace: Annotated[
        float | None, typer.Option(min=0, help="Seconds to finish on SIGTERM [HEADWAY_JOBS_GRACE].")
    ] = None,
    lease: Annotated[
        float | None, typer.Option(min=0.5, help="Lease seconds [HEADWAY_JOBS_LEASE].")
    ] = None,
) -> None:
    """Run jobs of APP's tasks until SIGTERM (finish running jobs, put the rest back)."""
    names = [q.strip() for q in queues.split(",") if q.strip()]
    if processes > 1:
        raise typer.Exit(_supervise(_child_argv(sys.argv[1:]), processes))
    jobs = load_jobs(target)
    given = {"concurrency": concurrency, "grace": grace, "lease": lease}
    # options left out come from HEADWAY_JOBS_* (the worker's own defaults)
    options: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    options["weighted"] = weighted
    try:
        work = jobs.worker(names, scheduler=with_scheduler, **options)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    async def main() -> None:
        async with jobs.hw:
            out.print(f"headway worker {work.id}: queues {','.join(names)}")
            await work.run(handle_signals=True)

    run_loop(main())


def scheduler(target: AppArgument) -> None:
    """Enqueue APP's cron jobs on time (any number may run: each tick runs once)."""
    jobs = load_jobs(target)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with jobs.hw:
            out.print(f"headway scheduler: {len(jobs.crons)} cron job(s)")
            await jobs.scheduler().run(stop)

    run_loop(main())


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run a worker or scheduler process on uvloop when it is installed (faster I/O)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _child_argv(argv: list[str]) -> list[str]:
    """The worker's own arguments with ``--processes N`` removed."""
    cleaned, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("-p", "--processes"):
            skip = True
        elif not arg.startswith("--processes="):
            cleaned.append(arg)
    return cleaned


def _supervise(argv: list[str], processes: int) -> int:
    """Run ``processes`` worker processes; forward SIGTERM/SIGINT; return the worst code."""
    args = argv[argv.index("worker") + 1 :] if "worker" in argv else argv
    code = "import sys; from headway.cli.jobs import run_worker_cli; run_worker_cli(sys.argv[1:])"
    children = [subprocess.Popen([sys.executable, "-c", code, *args]) for _ in range(processes)]  # noqa: S603

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)


def run_worker_cli(argv: list[str]) -> None:
    """Entry point of one worker process (used by ``--processes`` and by tests)."""
    single = typer.Typer(add_completion=False)
    single.command()(worker)
    single(args=argv, standalone_mode=True)


__all__ = [
    "jobs_app",
    "load_jobs",
    "parse_duration",
    "run_loop",
    "run_worker_cli",
    "scheduler",
    "worker",
]
