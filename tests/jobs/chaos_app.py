"""The app that worker / scheduler subprocesses of the tests load (``tests.jobs.chaos_app:hw``).

The job store comes from ``HEADWAY_JOBS_URL``; each run appends one line to ``CHAOS_LOG``:
``<job id> <attempt> <pid> <start> <end>``.
"""

from __future__ import annotations

import asyncio
import os
import time

from headway import Headway
from headway.jobs import Jobs, current_job

hw = Headway()
jobs = hw.add(Jobs(hw))


def _append(line: str) -> None:
    with open(os.environ["CHAOS_LOG"], "a", encoding="ascii") as fh:
        fh.write(line)


@jobs.task(name="record", retries=5)
async def record(n: int) -> int:
    ctx = current_job()
    start = time.time()
    await asyncio.sleep(float(os.environ.get("CHAOS_SLEEP", "0.005")))
    _append(f"{ctx.id} {ctx.attempt} {os.getpid()} {start:.6f} {time.time():.6f}\n")
    return n


if os.environ.get("CHAOS_CRON"):

    @jobs.cron("* * * * * *", name="tick")
    async def tick() -> None:
        ctx = current_job()
        _append(f"{ctx.meta['cron_tick']} {ctx.id} {os.getpid()}\n")
