"""The jobs benchmark's method applied to arq and saq, beside headway's, in one JSON.

    /tmp/hw-peers/bin/python bench/jobs_peers.py [--peers arq,saq] [--jobs 20000]
        [--headway /work/main/.venv/bin/python | --headway none]

Run it with a Python that has the peers installed (never headway's venv: they are not
headway dependencies), e.g. ``python -m venv /tmp/hw-peers && /tmp/hw-peers/bin/pip
install arq saq``. A peer that is not importable is skipped. ``--headway`` runs
``bench/jobs.py`` with headway's interpreter in a subprocess and merges its output, so one
run prints every figure.

Same method as bench/jobs.py, on the local Redis (127.0.0.1:6379), one in-process worker,
no-op task: enqueue_one_per_s (``await enqueue`` in one coroutine loop, median of
``--repeat`` runs of 5,000), enqueue_one_c10_per_s (10 coroutines at once),
enqueue_bulk_per_s (null: neither has a bulk enqueue), drain_c1_per_s / drain_c50_per_s
(the jobs queued first), latency_p50_ms / latency_p99_ms (enqueue-to-start at ``--rate``
jobs/s). Settings: the best documented ones for speed -- arq with ``poll_delay`` lowered to
5 ms (its default, 0.5 s, gives ~200 jobs/s), saq with its defaults (it blocks on the
queue, no polling). Keys: arq in Redis db 14, saq in db 15, deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import json
import logging
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HOST, PORT = "127.0.0.1", 6379
HERE = Path(__file__).resolve().parent


class Probe:
    """What the no-op and stamp tasks record."""

    def __init__(self) -> None:
        self.done = 0
        self.delays: list[float] = []


async def until(done: Callable[[], bool], limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish")
        await asyncio.sleep(0.005)


async def measure(
    enqueue: Callable[[], Awaitable[Any]],
    stamp: Callable[[float], Awaitable[Any]],
    start_worker: Callable[[int], Awaitable[Callable[[], Awaitable[None]]]],
    probe: Probe,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The figures of one peer, given how to enqueue, and start / stop a worker."""
    one = min(args.jobs, 5000)
    runs = []
    for _ in range(args.repeat):
        began = time.perf_counter()
        for _ in range(one):
            await enqueue()
        runs.append(round(one / (time.perf_counter() - began)))

    async def caller() -> None:
        for _ in range(one // 10):
            await enqueue()

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(10)))
    out: dict[str, Any] = {
        "enqueue_one_per_s": round(statistics.median(runs)),
        "enqueue_one_runs": runs,
        "enqueue_one_c10_per_s": round(one // 10 * 10 / (time.perf_counter() - began)),
        "enqueue_bulk_per_s": None,
    }
    queued = one * (args.repeat + 1)
    stop = await start_worker(50)  # empty the queue first
    await until(lambda: probe.done >= queued)
    await stop()
    for name, concurrency, n in (("drain_c1_per_s", 1, one), ("drain_c50_per_s", 50, args.jobs)):
        await asyncio.gather(*(enqueue() for _ in range(n)))
        probe.done = 0
        stop = await start_worker(concurrency)
        began = time.perf_counter()
        await until(lambda n=n: probe.done >= n)  # type: ignore[misc]
        out[name] = round(n / (time.perf_counter() - began))
        await stop()
    stop = await start_worker(50)
    await asyncio.sleep(0.2)
    total = int(args.rate * args.seconds)
    began = time.perf_counter()
    for i in range(total):
        await stamp(time.time())
        pause = began + (i + 1) / args.rate - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
    await until(lambda: len(probe.delays) >= total)
    await stop()
    cut = sorted(probe.delays)
    out["latency_p50_ms"] = round(statistics.median(cut) * 1000, 2)
    out["latency_p99_ms"] = round(cut[int(len(cut) * 0.99) - 1] * 1000, 2)
    return out


async def cleanup(db: int, pattern: str) -> None:
    from redis.asyncio import Redis

    client = Redis(host=HOST, port=PORT, db=db)
    keys = [k async for k in client.scan_iter(match=pattern, count=1000)]
    for i in range(0, len(keys), 1000):
        await client.delete(*keys[i : i + 1000])
    await client.aclose()


async def bench_arq(args: argparse.Namespace) -> dict[str, Any]:
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.worker import Worker, func

    logging.getLogger("arq").setLevel(logging.WARNING)
    probe, queue = Probe(), f"arq:bench-{uuid.uuid4().hex[:8]}"
    settings = RedisSettings(host=HOST, port=PORT, database=14)
    pool = await create_pool(settings)

    async def noop(ctx: dict[str, Any]) -> None:
        probe.done += 1

    async def stamp(ctx: dict[str, Any], sent: float) -> None:
        probe.delays.append(time.time() - sent)

    async def start_worker(concurrency: int) -> Callable[[], Awaitable[None]]:
        worker = Worker(  # its own pool: close() closes it
            functions=[func(noop, name="noop"), func(stamp, name="stamp")],
            redis_settings=settings,
            queue_name=queue,
            max_jobs=concurrency,
            poll_delay=0.005,
            handle_signals=False,
            keep_result=60,
        )
        task = asyncio.create_task(worker.async_run())

        async def stop() -> None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.gather(worker.close(), return_exceptions=True)

        return stop

    try:
        return await measure(
            lambda: pool.enqueue_job("noop", _queue_name=queue),
            lambda sent: pool.enqueue_job("stamp", sent, _queue_name=queue),
            start_worker,
            probe,
            args,
        )
    finally:
        await pool.aclose()
        await cleanup(14, "arq:*")


async def bench_saq(args: argparse.Namespace) -> dict[str, Any]:
    from saq import Queue, Worker

    probe = Probe()
    queue = Queue.from_url(f"redis://{HOST}:{PORT}/15", name=f"bench-{uuid.uuid4().hex[:8]}")
    await queue.connect()

    async def noop(ctx: dict[str, Any]) -> None:
        probe.done += 1

    async def stamp(ctx: dict[str, Any], *, sent: float) -> None:
        probe.delays.append(time.time() - sent)

    async def start_worker(concurrency: int) -> Callable[[], Awaitable[None]]:
        worker = Worker(
            queue, functions=[("noop", noop), ("stamp", stamp)], concurrency=concurrency
        )
        task = asyncio.create_task(worker.start())

        async def stop() -> None:
            await worker.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        return stop

    try:
        return await measure(
            lambda: queue.enqueue("noop"),
            lambda sent: queue.enqueue("stamp", sent=sent),
            start_worker,
            probe,
            args,
        )
    finally:
        await queue.disconnect()
        await cleanup(15, "saq:*")


def run_headway(python: str, args: argparse.Namespace) -> dict[str, Any]:
    argv = [python, str(HERE / "jobs.py"), "--jobs", str(args.jobs), "--rate", str(args.rate)]
    argv += ["--seconds", str(args.seconds), "--repeat", str(args.repeat)]
    argv += ["--backends", "redis,sqlite"]  # the peers run on Redis
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peers", default="arq,saq")
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    default_headway = HERE.parent / ".venv" / "bin" / "python"
    parser.add_argument(
        "--headway", default=str(default_headway) if default_headway.exists() else "none"
    )
    args = parser.parse_args()
    out: dict[str, Any] = {"jobs": args.jobs, "rate": args.rate, "peers_python": sys.version}
    if args.headway != "none":
        out["headway"] = run_headway(args.headway, args)
    benches = {"arq": bench_arq, "saq": bench_saq}
    for name in args.peers.split(","):
        if importlib.util.find_spec(name) is None:
            out[name] = {"skipped": f"{name} is not importable with {sys.executable}"}
            continue
        version = importlib.metadata.version(name)
        out[name] = {"version": version, **asyncio.run(benches[name](args))}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
