"""Job system throughput and latency, printed as JSON (issue 4's figures).

    python bench/jobs.py [--backends redis,sqlite,postgres] [--loops asyncio,uvloop]
                         [--jobs 20000] [--rate 500] [--pg-rate 200] [--seconds 5] [--repeat 3]

Per backend and event loop, with one in-process worker and a no-op task:
- enqueue_one_per_s: ``await task.enqueue()`` in one coroutine loop (concurrency 1: each
  call waits for its round trip); the median of ``--repeat`` runs of 5,000 calls, every
  run in enqueue_one_runs. enqueue_one_c10_per_s is the same with 10 coroutines calling
  at once (their calls share one pipelined connection) -- a different figure;
- enqueue_bulk_per_s: one ``enqueue_many`` call for all the jobs;
- drain_c1_per_s / drain_c50_per_s: the time to run ``--jobs`` jobs queued beforehand,
  at concurrency 1 and 50;
- latency_p50_ms / latency_p99_ms: enqueue-to-start at a steady ``--rate`` jobs/s, the
  worker at its default poll interval (50 ms): it is woken by the enqueue, not a poll;
  after_enqueue_p50_ms / _p99_ms: from the return of the enqueue call (on PostgreSQL,
  after its durable COMMIT) to the start -- the wake-up and claim alone.
"redis" runs on the default asyncio loop, "redis_uvloop" on uvloop (when installed).
Redis: the local server (127.0.0.1:6379), keys under a random prefix deleted afterwards.
SQLite: a temporary file.
PostgreSQL: the local server (database ``test``, or ``HEADWAY_BENCH_PG_URL``), the job
tables in a schema of their own dropped afterwards; latency at ``--pg-rate`` jobs/s (issue
5's 200/s), woken by LISTEN/NOTIFY, and again as polling_latency_* with NOTIFY off (the
worker then polls every 50 ms, its default poll interval).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from headway import Headway
from headway.jobs import Jobs, current_job

STARTED: dict[str, float] = {}  # job id -> when the stamp task started
REDIS = "redis://127.0.0.1:6379/0"
PG = "postgresql://postgres@127.0.0.1:5432/test"


def make_hub(url: str) -> tuple[Headway, Jobs, list[float]]:
    hub = Headway(jobs_url=url, log_level="WARNING")
    jobs = hub.add(Jobs(hub))
    delays: list[float] = []

    @jobs.task(name="noop", retries=0)
    async def noop() -> None:
        return None

    @jobs.task(name="stamp", retries=0)
    async def stamp(sent: float) -> None:
        now = time.time()
        delays.append(now - sent)
        STARTED[current_job().id] = now

    return hub, jobs, delays


async def until(done: Callable[[], bool], step: float = 0.005) -> None:
    for _ in range(int(120 / step)):  # 2 minutes at most
        if done():
            return
        await asyncio.sleep(step)
    raise TimeoutError("benchmark step did not finish")


async def enqueue_rates(jobs: Jobs, n: int, repeat: int) -> dict[str, Any]:
    noop = jobs.tasks["noop"]
    one = min(n, 5000)
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(one):
            await noop.enqueue()
        runs.append(round(one / (time.perf_counter() - start)))

    async def caller() -> None:
        for _ in range(one // 10):
            await noop.enqueue()

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(10)))
    c10 = one // 10 * 10 / (time.perf_counter() - start)
    start = time.perf_counter()
    await jobs.enqueue_many([noop.call() for _ in range(n)])
    bulk_rate = n / (time.perf_counter() - start)
    return {
        "enqueue_one_per_s": round(statistics.median(runs)),
        "enqueue_one_runs": runs,
        "enqueue_one_c10_per_s": round(c10),
        "enqueue_bulk_per_s": round(bulk_rate),
    }


async def drain(jobs: Jobs, n: int, concurrency: int, *, enqueue: bool = True) -> float:
    noop = jobs.tasks["noop"]
    for start in range(0, n if enqueue else 0, 5000):
        await jobs.enqueue_many([noop.call() for _ in range(min(5000, n - start))])
    worker = jobs.worker(["default"], concurrency=concurrency)
    began = time.perf_counter()
    task = asyncio.create_task(worker.run())
    await until(lambda: worker.stats.succeeded >= n)
    elapsed = time.perf_counter() - began
    worker.stop()
    await task
    return round(n / elapsed)


async def latency(jobs: Jobs, delays: list[float], rate: int, seconds: float) -> dict[str, float]:
    stamp = jobs.tasks["stamp"]
    worker = jobs.worker(["default"], concurrency=50)  # default poll: wake-up is pushed
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.2)
    total = int(rate * seconds)
    returned: dict[str, float] = {}
    began = time.perf_counter()
    for i in range(total):
        handle = await stamp.enqueue(time.time())
        returned[handle.id] = time.time()
        pause = began + (i + 1) / rate - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
    await until(lambda: len(delays) >= total)
    worker.stop()
    await task
    # From the end of the enqueue call (its commit / round trip done) to the start.
    after = [max(STARTED[i] - t, 0.0) for i, t in returned.items() if i in STARTED]
    return {**_percentiles("latency", delays), **_percentiles("after_enqueue", after)}


def _percentiles(name: str, values: list[float]) -> dict[str, float]:
    cut = sorted(values)
    return {
        f"{name}_p50_ms": round(statistics.median(cut) * 1000, 2),
        f"{name}_p99_ms": round(cut[int(len(cut) * 0.99) - 1] * 1000, 2),
    }


async def bench(url: str, args: argparse.Namespace, rate: int | None = None) -> dict[str, Any]:
    hub, jobs, delays = make_hub(url)
    async with hub:
        out: dict[str, Any] = await enqueue_rates(jobs, args.jobs, args.repeat)
        queued = min(args.jobs, 5000) * (args.repeat + 1) + args.jobs
        await drain(jobs, queued, 50, enqueue=False)  # empty it
        out["drain_c1_per_s"] = await drain(jobs, min(args.jobs, 5000), 1)
        out["drain_c50_per_s"] = await drain(jobs, args.jobs, 50)
        out["latency_rate"] = rate or args.rate
        await jobs.apply_retention(["default"])  # as a running worker would have by now
        out.update(await latency(jobs, delays, rate or args.rate, args.seconds))
    return out


async def cleanup_redis(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    for i in range(0, len(keys), 1000):
        await client.delete(*keys[i : i + 1000])
    await client.aclose()


def run_loop(loop: str, coro: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


async def bench_redis(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"hwbench-{uuid.uuid4().hex[:8]}"
    try:
        return await bench(f"{REDIS}?prefix={prefix}", args)
    finally:
        await cleanup_redis(prefix)


async def bench_postgres(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    schema = f"hwbench_{uuid.uuid4().hex[:8]}"
    url = f"{os.environ.get('HEADWAY_BENCH_PG_URL', PG)}?jobs_schema={schema}"
    try:
        out = await bench(url, args, rate=args.pg_rate)
        hub, jobs, delays = make_hub(f"{url}&notify=0")
        async with hub:
            polled = await latency(jobs, delays, args.pg_rate, args.seconds)
        out.update({f"polling_{name}": value for name, value in polled.items()})
        return out
    finally:
        conn = await asyncpg.connect(url.partition("?")[0])
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def bench_sqlite(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return await bench(f"sqlite:///{Path(tmp) / 'jobs.db'}", args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="redis,sqlite,postgres")
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--pg-rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "jobs": args.jobs,
        "rate": args.rate,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    loops = args.loops.split(",")
    if "uvloop" in loops and importlib.util.find_spec("uvloop") is None:
        loops.remove("uvloop")
    for kind in args.backends.split(","):
        run = {"redis": bench_redis, "sqlite": bench_sqlite, "postgres": bench_postgres}[kind]
        for loop in loops:
            name = kind if loop == "asyncio" else f"{kind}_{loop}"
            try:
                results[name] = run_loop(loop, run(args))
            except OSError as exc:  # the server is not there: say so, run the others
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
