"""Cron parsing, the scheduler's exactly-once ticks (in process and across processes), backoff."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import backend_params
from tests.jobs import procs
from tests.jobs.conftest import ALL_BACKENDS, eventually

from headway.jobs import Backoff, Cron, CronError, Jobs


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 * * * *", at(2024, 1, 1, 10, 30), at(2024, 1, 1, 11, 0)),
        ("@daily", at(2024, 12, 31, 23, 59), at(2025, 1, 1)),
        ("*/15 9-17 * * mon-fri", at(2024, 1, 6, 10, 30), at(2024, 1, 8, 9, 0)),
        ("30 2 1,15 * *", at(2024, 1, 2), at(2024, 1, 15, 2, 30)),
        ("0 0 29 2 *", at(2024, 3, 1), at(2028, 2, 29)),
        ("0 12 13 * 5", at(2024, 1, 1), at(2024, 1, 5, 12, 0)),  # day OR weekday
        ("0 0 * jan-mar/2 7", at(2024, 1, 8), at(2024, 1, 14)),  # 7 = Sunday
        ("*/10 * * * * *", at(2024, 1, 1, 0, 0, 5), at(2024, 1, 1, 0, 0, 10)),
    ],
)
def test_next_tick(expr: str, after: datetime, expected: datetime) -> None:
    assert Cron.parse(expr).next_after(after) == expected


@pytest.mark.parametrize(
    "expr", ["", "* * * *", "60 * * * *", "* 24 * * *", "5-1 * * * *", "*/0 * * * *", "x * * * *"]
)
def test_bad_expressions_are_refused(expr: str) -> None:
    with pytest.raises(CronError):
        Cron.parse(expr)


def test_backoff_grows_caps_and_jitters() -> None:
    plain = Backoff(base=1, factor=2, cap=10, jitter=False)
    assert [plain.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    jittered = Backoff(base=4, factor=2, cap=100)
    samples = {jittered.delay(2) for _ in range(50)}
    assert all(4 <= s <= 8 for s in samples) and len(samples) > 1
    with pytest.raises(ValueError):
        Backoff(factor=0.5)


@pytest.mark.parametrize("backend", backend_params(*ALL_BACKENDS))
async def test_two_schedulers_enqueue_each_tick_once(jobs: Jobs) -> None:
    @jobs.cron("*/5 * * * *", name="report")
    async def report() -> None: ...

    a, b = jobs.scheduler(), jobs.scheduler()
    start = at(2024, 1, 1, 10, 0, 30).timestamp()
    assert await a.run_pending(start) == 0 and await b.run_pending(start) == 0
    created = 0
    for minute in range(1, 16):  # ticks at 10:05, 10:10, 10:15
        now = start + minute * 60
        created += sum(await asyncio.gather(a.run_pending(now), b.run_pending(now)))
    assert created == 3 and a.enqueued + b.enqueued == 3
    queued = await jobs.list("default", "queued")
    assert sorted(j.id for j in queued) == [
        f"cron:report:{int(at(2024, 1, 1, 10, m).timestamp())}" for m in (5, 10, 15)
    ]


@pytest.mark.parametrize("backend", backend_params("memory"))
async def test_late_ticks_beyond_grace_are_skipped(jobs: Jobs) -> None:
    @jobs.cron("* * * * *", name="minutely")
    async def minutely() -> None: ...

    sched = jobs.scheduler(misfire_grace=30)
    start = at(2024, 1, 1).timestamp()
    await sched.run_pending(start)
    assert await sched.run_pending(start + 600) == 1  # 10 ticks missed; only the last ran


@pytest.mark.slow
@pytest.mark.parametrize("backend", backend_params("sqlite", "redis"))
async def test_two_scheduler_processes_run_each_tick_once(
    jobs: Jobs, jobs_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "ticks.log"
    schedulers = [procs.start_scheduler(jobs_url, log, CHAOS_CRON="1") for _ in range(2)]
    worker = procs.start_worker(jobs_url, log, "-c", "5", CHAOS_CRON="1")
    try:
        await eventually(lambda: len(_ticks(log)) >= 4, within=30, step=0.1)
    finally:
        codes = [procs.stop(p) for p in [*schedulers, worker]]
    ticks = _ticks(log)
    assert len(ticks) >= 4
    assert len(ticks) == len(set(ticks)), "a tick ran twice"
    ordered = sorted(ticks)
    assert all(b - a == 1 for a, b in itertools.pairwise(ordered)), "a tick was missed"
    assert codes == [0, 0, 0]


def _ticks(log: Path) -> list[int]:
    if not log.exists():
        return []
    return [int(float(line.split()[0])) for line in log.read_text().splitlines() if line]
