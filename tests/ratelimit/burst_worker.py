"""Subprocess of test_exactness: fire N concurrent checks per algorithm, print admitted.

Usage: python burst_worker.py URL PREFIX MODE N. Prints "ready" once its scripts are
loaded; then, for each algorithm in turn, waits for a line on stdin (so that every
process starts each burst at once), fires N concurrent checks on one key and prints
{"algorithm": name, "admitted": count, "elapsed": seconds} as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from headway import Headway
from headway.ratelimit import Algorithm, RateLimits, RateLimitSettings


async def burst(limits: RateLimits, algorithm: Algorithm, n: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    started = time.perf_counter()
    decisions = await asyncio.gather(*(limits.hit(algorithm.value, "one-key") for _ in range(n)))
    elapsed = time.perf_counter() - started
    admitted = sum(d.allowed for d in decisions)
    line = {"algorithm": algorithm.value, "admitted": admitted, "elapsed": elapsed}
    print(json.dumps(line), flush=True)


async def main(url: str, prefix: str, mode: str, n: int) -> None:
    hw = Headway(limits_url=url)
    settings = RateLimitSettings(key_prefix=prefix, mode=mode)  # type: ignore[arg-type]
    limits = hw.add(RateLimits(hw, settings))
    for algorithm in Algorithm:
        limits.policy(algorithm.value, "100/minute", algorithm=algorithm, scope="global")
    async with hw:
        await limits.backend.ping()
        print("ready", flush=True)
        for algorithm in Algorithm:
            await burst(limits, algorithm, n)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
