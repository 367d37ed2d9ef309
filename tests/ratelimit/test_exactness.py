"""Exactness on Redis: limit 100/min, 1,000 concurrent attempts from two processes.

Every algorithm admits exactly 100 (direct and coalesced checks), and lease mode stays
inside its documented bound: at most 100, at least 100 - P * (L - 1).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from headway.ratelimit import Algorithm, Check
from headway.ratelimit.lease import lease_size

WORKER = Path(__file__).with_name("burst_worker.py")
ROOT = Path(__file__).resolve().parents[2]
PROCESSES, PER_PROCESS = 2, 500

pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def run_burst(url: str, prefix: str, mode: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), url, prefix, mode, str(PER_PROCESS),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )
        for _ in range(PROCESSES)
    ]  # fmt: skip
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line.strip() == b"ready", line
        totals: dict[str, float] = {}
        for algorithm in Algorithm:
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            for proc in procs:
                assert proc.stdout is not None
                answer = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
                totals[algorithm.value] = totals.get(algorithm.value, 0) + answer["admitted"]
                key = f"{algorithm.value}.elapsed"
                totals[key] = max(totals.get(key, 0.0), answer["elapsed"])
        for proc in procs:
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        return totals
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


@pytest.mark.parametrize("mode", ["direct", "coalesce"])
async def test_exactly_100_of_1000_for_every_algorithm(
    redis_url: str, redis_prefix: str, mode: str
) -> None:
    totals = await run_burst(redis_url, redis_prefix, mode)
    admitted = {a.value: totals[a.value] for a in Algorithm}
    assert admitted == {a.value: 100 for a in Algorithm}, totals


async def test_lease_mode_stays_within_its_bound(redis_url: str, redis_prefix: str) -> None:
    totals = await run_burst(redis_url, redis_prefix, "lease")
    size = lease_size(Check(Algorithm.FIXED_WINDOW, "k", 100, 60_000), 16, -1)
    for algorithm in Algorithm:
        name = algorithm.value
        admitted = totals[name]
        # a bucket legitimately refills one unit per 0.6 s while the burst lasts
        refilled = int(totals[f"{name}.elapsed"] / 0.6)
        extra = refilled if name in ("token_bucket", "gcra") else 0
        assert 100 - PROCESSES * (size - 1) <= admitted <= 100 + extra, totals
