"""Cache figures, printed as JSON: ``python bench/cache.py [--redis URL] [--quick]``.

- L1 hit: ns per ``await cache.get`` (in-process), best and median of many short runs
  (``time.perf_counter_ns``), next to a baseline measured in the same run and the same
  way: ``await`` of a bare ``async def`` that does one dict lookup. The baseline shows
  the machine's state: on a quiet machine it is about 110 ns.
- L2 hit on Redis (L1 off) vs raw redis-py ``GET`` on the same pool, at concurrency
  1 and 50, in the same run: short rounds, raw and ours back to back (the order
  alternates), ``ratio_median`` = the median of the rounds' ours / raw, ``ratio_best``
  = best rate / best rate.
- ``get_or_set`` on a hot key, through L1 and with L1 off (best and median).
- Stampede: loader calls for 1,000 concurrent cold ``get_or_set`` (one process, and
  split over two caches sharing Redis).
- L1 invalidation delay to another process (pub/sub), median and max of 20.
- Peers (cashews, aiocache) on the same Redis when importable (they are bench-only
  dependencies: install them in a separate virtualenv, never in the project's).

Keys live under a ``hwbench-<random>`` prefix and are deleted at the end (no FLUSHDB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from headway import Headway
from headway.cache import Cache, CacheSettings

VALUE = {"id": 1, "name": "ann", "plan": "pro"}
Op = Callable[[], Awaitable[Any]]


def summary(samples: list[float]) -> dict[str, float]:
    return {"best": round(min(samples)), "median": round(statistics.median(samples))}


async def ns_per_op(ops: dict[str, Op], n: int, runs: int = 40) -> dict[str, dict[str, float]]:
    """ns per ``await op()``: ``runs`` short runs of ``n // runs`` calls, ops interleaved."""
    per = max(1, n // runs)
    samples: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(runs):
        for name, op in ops.items():
            started = time.perf_counter_ns()
            for _ in range(per):
                await op()
            samples[name].append((time.perf_counter_ns() - started) / per)
    return {name: summary(values) for name, values in samples.items()}


async def compare(
    ops: dict[str, Op], total: int, concurrency: int, rounds: int = 3
) -> dict[str, float]:
    best = dict.fromkeys(ops, 0.0)
    for _ in range(rounds):
        for name, op in ops.items():
            best[name] = max(best[name], await rate(op, total, concurrency))
    return {name: round(value) for name, value in best.items()}


def make_cache(hw: Headway, url: str, prefix: str, **settings: Any) -> Cache:
    return hw.add(Cache(hw, CacheSettings(prefix=prefix, **settings), url=url))


L1_TARGET_NS = 1000
L2_TARGET_RATIO = 0.9


async def l1_hit_ns(n: int) -> dict[str, Any]:
    hw = Headway()
    cache = make_cache(hw, "memory://", "hwbench", l1_ttl=600)
    async with hw:
        await cache.set("user:1", VALUE, ttl=600)
        full = cache.keys.entry("user:1")
        plain = {full: VALUE}

        async def bare_async_dict_get(key: str) -> Any:
            return plain.get(key)

        for _ in range(1000):
            await cache.get("user:1")
        # both called the same way: a partial (C) with one argument
        ops = {"get": partial(cache.get, "user:1"), "baseline": partial(bare_async_dict_get, full)}
        got = await ns_per_op(ops, n)
        hits = cache.stats()["l1_hits"]
    return {
        "ns_per_get": got["get"],
        "baseline_bare_async_dict_get_ns": got["baseline"],
        "l1_hits_counted": hits,
        "target_ns": L1_TARGET_NS,
        "met": got["get"]["median"] <= L1_TARGET_NS,
    }


async def rate(op: Op, total: int, concurrency: int) -> float:
    """Operations per second of ``op`` run ``total`` times by ``concurrency`` workers."""
    per = max(1, total // concurrency)

    async def worker() -> None:
        for _ in range(per):
            await op()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return per * concurrency / (time.perf_counter() - started)


async def paired(raw: Op, ours: Op, total: int, concurrency: int, rounds: int) -> dict[str, Any]:
    """Rounds of ``raw`` and ``ours`` back to back (order alternating): rates and ratios."""
    raws: list[float] = []
    oursl: list[float] = []
    for i in range(rounds):
        if i % 2:
            b = await rate(ours, total, concurrency)
            a = await rate(raw, total, concurrency)
        else:
            a = await rate(raw, total, concurrency)
            b = await rate(ours, total, concurrency)
        raws.append(a)
        oursl.append(b)
    ratios = [b / a for a, b in zip(raws, oursl, strict=True)]
    return {
        "raw_redis_py_get": {"best": round(max(raws)), "median": round(statistics.median(raws))},
        "headway_l2_get": {"best": round(max(oursl)), "median": round(statistics.median(oursl))},
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_best": round(max(oursl) / max(raws), 3),
        "rounds": rounds,
    }


async def interleaved_latency(raw: Op, ours: Op, n: int) -> dict[str, Any]:
    """Concurrency 1: raw and ours alternate call by call (the order flips each time), each
    call timed; the ratio of median latencies is the throughput ratio, and a load spike
    on the machine lands on both sides alike."""
    lat: dict[Op, list[int]] = {raw: [], ours: []}
    clock = time.perf_counter_ns
    for i in range(n):
        for op in (raw, ours) if i % 2 else (ours, raw):
            started = clock()
            await op()
            lat[op].append(clock() - started)
    raw_us, ours_us = (statistics.median(lat[op]) / 1000 for op in (raw, ours))
    return {
        "raw_redis_py_get_median_us": round(raw_us, 1),
        "headway_l2_get_median_us": round(ours_us, 1),
        "ratio": round(raw_us / ours_us, 3),
        "calls_each": n,
    }


async def l2_vs_raw(url: str, prefix: str, n1: int, n50: int) -> dict[str, Any]:
    hw = Headway()
    cache = make_cache(hw, url, prefix, l1_max_entries=0)
    async with hw:
        client = hw.connections.redis(url)
        await cache.set("user:1", VALUE, ttl=600)
        raw_key = f"{prefix}:raw"
        await client.set(raw_key, json.dumps(VALUE), ex=600)
        out: dict[str, Any] = {"target_ratio": L2_TARGET_RATIO}
        for conc, total in ((1, n1), (50, n50)):
            # warm both paths (connections in the pool, the code's caches)
            await rate(lambda: client.get(raw_key), total // 10, conc)
            await rate(lambda: cache.get("user:1"), total // 10, conc)
            got = await paired(
                lambda: client.get(raw_key), lambda: cache.get("user:1"), total // 10, conc, 20
            )
            if conc == 1:
                got["interleaved"] = await interleaved_latency(
                    lambda: client.get(raw_key), lambda: cache.get("user:1"), total // 2
                )
            got["met"] = got["ratio_median"] >= L2_TARGET_RATIO
            out[f"concurrency_{conc}_ops_per_s"] = got
        return out


async def hot_get_or_set(url: str, prefix: str, n: int) -> dict[str, Any]:
    async def load() -> dict[str, Any]:
        return VALUE

    out: dict[str, Any] = {}
    for label, settings in (("l1", {"l1_ttl": 600}), ("l2_only", {"l1_max_entries": 0})):
        hw = Headway()
        cache = make_cache(hw, url, prefix, **settings)
        async with hw:
            await cache.get_or_set("hot", load, ttl=600)
            runs = 40 if label == "l1" else 10
            op = partial(cache.get_or_set, "hot", load, ttl=600)
            got = await ns_per_op({"op": op}, n, runs)
            out[f"{label}_ns_per_op"] = got["op"]
    return out


async def stampede(url: str, prefix: str) -> dict[str, int]:
    calls = 0

    async def load() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return VALUE

    hw_a, hw_b = Headway(), Headway()
    a, b = make_cache(hw_a, url, prefix), make_cache(hw_b, url, prefix)
    async with hw_a, hw_b:
        await asyncio.gather(*(a.get_or_set("cold:1", load) for _ in range(1000)))
        one_process = calls
        calls = 0
        await asyncio.gather(*(c.get_or_set("cold:2", load) for _ in range(500) for c in (a, b)))
        return {
            "requests": 1000,
            "loader_calls_one_process": one_process,
            "loader_calls_two_caches": calls,
        }


async def propagation(url: str, prefix: str, rounds: int = 20) -> dict[str, float]:
    hw = Headway()
    cache = make_cache(hw, url, prefix)
    async with hw:
        for i in range(rounds):
            await cache.set(f"probe:{i}", i, ttl=600)
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--probe-child",
            "--redis",
            url,
            "--prefix",
            prefix,
            "--rounds",
            str(rounds),
            stdout=subprocess.PIPE,
        )
        assert child.stdout is not None
        delays = []
        for i in range(rounds):
            await asyncio.wait_for(child.stdout.readline(), 30)
            started = time.time()
            await cache.delete(f"probe:{i}")
            line = await asyncio.wait_for(child.stdout.readline(), 10)
            delays.append(float(line.split()[2]) - started)
        await child.wait()
    return {
        "median_ms": round(statistics.median(delays) * 1000, 3),
        "max_ms": round(max(delays) * 1000, 3),
        "rounds": rounds,
    }


async def probe_child(url: str, prefix: str, rounds: int) -> None:
    hw = Headway()
    cache = make_cache(hw, url, prefix, l1_ttl=600)
    async with hw:
        while not cache.stats()["coherence"]["listening"]:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        for i in range(rounds):
            key = f"probe:{i}"
            await cache.get(key)
            full = cache.keys.entry(key)
            print("ready", i, flush=True)
            while full in cache.l1:  # noqa: ASYNC110 (a spin: the delay is the figure)
                await asyncio.sleep(0)
            print("gone", i, repr(time.time()), flush=True)


async def peers(url: str, prefix: str, n1: int, n50: int, n_mem: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, run in (("cashews", _cashews), ("aiocache", _aiocache)):
        try:
            out[name] = await run(url, prefix, n1, n50, n_mem)
        except ImportError:
            out[name] = "not installed"
        except Exception as exc:  # a peer's failure is reported, not fatal
            out[name] = f"failed: {type(exc).__name__}: {exc}"
    return out


async def _cashews(url: str, prefix: str, n1: int, n50: int, n_mem: int) -> dict[str, Any]:
    from cashews import Cache as Cashews

    key = f"{prefix}:cashews:user:1"
    redis_c, mem_c = Cashews(), Cashews()
    redis_c.setup(url)
    mem_c.setup("mem://")
    await redis_c.set(key, VALUE, expire=600)
    await mem_c.set(key, VALUE, expire=600)
    try:
        return await _peer(lambda: redis_c.get(key), lambda: mem_c.get(key), n1, n50, n_mem)
    finally:
        await redis_c.delete(key)
        await redis_c.close()


async def _aiocache(url: str, prefix: str, n1: int, n50: int, n_mem: int) -> dict[str, Any]:
    from aiocache import RedisCache, SimpleMemoryCache

    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    redis_a = RedisCache(endpoint=host, port=int(port or 6379), namespace=f"{prefix}:aiocache")
    mem_a = SimpleMemoryCache()
    await redis_a.set("user:1", VALUE, ttl=600)
    await mem_a.set("user:1", VALUE, ttl=600)
    try:
        return await _peer(
            lambda: redis_a.get("user:1"), lambda: mem_a.get("user:1"), n1, n50, n_mem
        )
    finally:
        await redis_a.delete("user:1")
        await redis_a.close()


async def _peer(redis_get: Op, mem_get: Op, n1: int, n50: int, n_mem: int) -> dict[str, Any]:
    assert await redis_get() == VALUE and await mem_get() == VALUE
    c1 = await compare({"get": redis_get}, n1, 1)
    c50 = await compare({"get": redis_get}, n50, 50)
    started = time.perf_counter_ns()
    for _ in range(n_mem):
        await mem_get()
    return {
        "redis_get_ops_per_s_c1": c1["get"],
        "redis_get_ops_per_s_c50": c50["get"],
        "memory_hit_ns": round((time.perf_counter_ns() - started) / n_mem),
    }


async def cleanup(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"hwbench-{uuid.uuid4().hex[:8]}"
    scale = 0.2 if args.quick else 1.0
    n1, n50, n_mem = int(20_000 * scale), int(100_000 * scale), int(200_000 * scale)
    try:
        return {
            "python": sys.version.split()[0],
            "l1_hit": await l1_hit_ns(n_mem),
            "l2_redis_hit_vs_raw_get": await l2_vs_raw(args.redis, prefix, n1, n50),
            "get_or_set_hot_key": await hot_get_or_set(args.redis, prefix, n1),
            "stampede": await stampede(args.redis, prefix),
            "l1_invalidation_delay_other_process": await propagation(args.redis, prefix),
            "peers": await peers(args.redis, prefix, n1, n50, n_mem),
        }
    finally:
        await cleanup(args.redis, prefix)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--quick", action="store_true", help="Fewer iterations.")
    parser.add_argument("--probe-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=20, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.probe_child:
        asyncio.run(probe_child(ns.redis, ns.prefix, ns.rounds))
    else:
        print(json.dumps(asyncio.run(main(ns)), indent=2))
