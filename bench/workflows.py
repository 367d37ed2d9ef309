"""Workflow overhead on Redis, printed as JSON (issue 5's figure).

    python -P bench/workflows.py [--steps 10] [--runs 30] [--claims 300] [--loop uvloop]

Target: a chain of ``--steps`` no-op steps finishes within 10 ms + one claim round trip
per step. Both figures come from the same run, against the local Redis
(127.0.0.1:6379), with one in-process worker serving the ``workflows`` queue:

- claim_rtt_ms: the median time of one ``claim`` call of the job backend (the round
  trip a worker makes to take a job), measured on an empty queue, ``--claims`` times;
- chain_ms: from ``hw.workflows.start()`` to the ``on_completed`` hook, per run
  (median, p90, best, worst of ``--runs`` runs, after 3 warm-up runs);
- budget_ms = 10 + steps x claim_rtt_ms; ``within_budget`` compares the median with it;
- jobs_only_ms: the same number of hops through the job system alone (each job enqueues
  the next one from its task), the floor the workflow engine adds its work to;
- cpu_ms_per_chain / jobs_only_cpu_ms: the process CPU time per chain / per 10 hops
  (the part a busy machine cannot stretch; this benchmark shares its cores).

Workflow state and jobs both live in Redis (keys under a random prefix, deleted after).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
import uuid
from typing import Any

from headway import Headway
from headway.workflows import RunRecord, Workflows
from headway.workflows.settings import WorkflowsSettings

REDIS = "redis://127.0.0.1:6379/0"


async def claim_rtt(hub: Headway, count: int) -> float:
    backend = hub.jobs.backend
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        await backend.claim("bench-empty", "bench", 1, 30.0)
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1000


async def job_hops(hub: Headway, steps: int, runs: int) -> list[float]:
    durations = []
    for _ in range(runs + 3):
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        HOPS["done"] = done
        began = time.perf_counter()
        await hub.jobs.submit("bench.hop", [steps - 1], queue="workflows")
        await asyncio.wait_for(done, 30)
        durations.append((time.perf_counter() - began) * 1000)
    return durations[3:]


HOPS: dict[str, asyncio.Future[None]] = {}


async def chain_runs(flows: Workflows, steps: int, runs: int) -> list[float]:
    waiting: dict[str, asyncio.Future[None]] = {}
    finished: set[str] = set()

    def completed(run: RunRecord) -> None:
        finished.add(run.id)
        future = waiting.get(run.id)
        if future is not None and not future.done():
            future.set_result(None)

    flows.on_completed(completed)
    durations = []
    for i in range(runs + 3):
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        began = time.perf_counter()
        run = await flows.start("bench-chain", i)
        waiting[run.id] = future
        if run.id not in finished:
            await asyncio.wait_for(future, 30)
        if i >= 3:
            durations.append((time.perf_counter() - began) * 1000)
    return durations


async def cleanup(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"hwbench{uuid.uuid4().hex[:8]}"
    url = f"{REDIS}?prefix={prefix}"
    hub = Headway(jobs_url=url, log_level="WARNING")
    flows = hub.add(Workflows(hub, url, settings=WorkflowsSettings(sweep_interval=0)))

    @hub.jobs.task(name="bench.noop", retries=0)
    async def noop(value: Any) -> Any:
        return value

    @hub.jobs.task(name="bench.hop", retries=0, queue="workflows")
    async def hop(left: int) -> None:
        if left:
            await hub.jobs.submit("bench.hop", [left - 1], queue="workflows")
        else:
            HOPS["done"].set_result(None)

    flows.chain("bench-chain", *[noop] * args.steps)
    try:
        async with hub:
            rtt = await claim_rtt(hub, args.claims)
            worker = hub.jobs.worker(["workflows"])
            task = asyncio.create_task(worker.run())
            try:
                hop_cpu = time.process_time()
                hops = await job_hops(hub, args.steps, args.runs)
                hop_cpu = (time.process_time() - hop_cpu) * 1000 / (args.runs + 3)
                cpu = time.process_time()
                durations = await chain_runs(flows, args.steps, args.runs)
                cpu = (time.process_time() - cpu) * 1000 / (args.runs + 3)
            finally:
                worker.stop()
                await task
    finally:
        await cleanup(prefix)
    ordered = sorted(durations)
    budget = 10 + args.steps * rtt
    median = statistics.median(durations)
    return {
        "bench": "workflows",
        "backend": "redis",
        "loop": args.loop,
        "python": platform.python_version(),
        "steps": args.steps,
        "runs": args.runs,
        "claim_rtt_ms": round(rtt, 3),
        "chain_ms_median": round(median, 2),
        "chain_ms_p90": round(ordered[int(len(ordered) * 0.9) - 1], 2),
        "chain_ms_best": round(ordered[0], 2),
        "chain_ms_worst": round(ordered[-1], 2),
        "per_step_ms_median": round(median / args.steps, 3),
        "budget_ms": round(budget, 2),
        "jobs_only_ms_median": round(statistics.median(hops), 2),
        "cpu_ms_per_chain": round(cpu, 2),
        "jobs_only_cpu_ms": round(hop_cpu, 2),
        "within_budget": median <= budget,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    options = parser.parse_args()
    if options.loop == "uvloop":
        import uvloop

        result = uvloop.run(main(options))
    else:
        result = asyncio.run(main(options))
    print(json.dumps(result, indent=2))
