"""Rate-limit throughput on Redis and the middleware's cost, printed as JSON.

    python bench/ratelimit.py [--seconds 2] [--redis redis://127.0.0.1:6379/0]
                              [--limits-python /tmp/limits-venv/bin/python]

1. Checks per second at concurrency 1 and 50: raw redis-py GET and EVALSHA (the same
   fixed-window script), then ``hw.limits.hit`` in direct, coalesce and lease mode, all
   in this run. Commands per check come from ``INFO commandstats`` (the Redis is shared:
   other clients' commands would count too); round trips per check from the client.
2. The ``limits`` library's async Redis strategies, run with the interpreter of a
   separate venv (``--limits-python``); skipped when it cannot import ``limits``.
3. Middleware overhead, in process: CPU microseconds per request of the cheap endpoint
   driven straight through the ASGI app (32 concurrent callers), without the middleware
   and with it in each mode (lease also with a lease size of 64), alternating batches
   in one process (robust on a loaded machine).
4. Middleware overhead, end to end: uvicorn (one worker each, 127.0.0.1, free ports)
   serving the endpoint without the middleware and with it in each mode, all running at
   once and loaded in alternating rounds (median of ``--rounds``) by ``wrk`` when
   installed, else by a bounded raw HTTP/1.1 keep-alive load generator, in another
   process; with each server's CPU microseconds per request (from /proc), which a
   loaded machine disturbs less than requests per second.

Every key lives under a ``hwbench-<random>`` prefix and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _asgi import asgi_batch, cpu_seconds, free_port, wrk
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from headway import Headway  # noqa: E402
from headway.ratelimit import Algorithm, RateLimits, RateLimitSettings  # noqa: E402
from headway.ratelimit.backends.redis import SCRIPTS, RedisLimitBackend  # noqa: E402

BIG = "1000000000/minute"  # never denies: the bench measures the check, not the denial


async def rate(fn: Callable[[int], Awaitable[None]], concurrency: int, seconds: float) -> float:
    """Operations per second of ``fn`` run in a loop by ``concurrency`` tasks."""
    deadline = time.perf_counter() + seconds
    counts = [0] * concurrency

    async def worker(i: int) -> None:
        while time.perf_counter() < deadline:
            await fn(i)
            counts[i] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return round(sum(counts) / (time.perf_counter() - start))


async def command_calls(client: Redis) -> int:
    stats: dict[str, Any] = await client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


async def bench_raw(url: str, prefix: str, seconds: float) -> dict[str, Any]:
    client = Redis.from_url(url, max_connections=64)
    source, sha = SCRIPTS[Algorithm.FIXED_WINDOW]
    await client.script_load(source)
    key = f"{prefix}:rl:{{raw}}"
    await client.set(f"{prefix}:get", "1")

    async def get(_: int) -> None:
        await client.get(f"{prefix}:get")

    async def evalsha(_: int) -> None:
        await client.evalsha(sha, 1, key, 10**9, 60_000, 1, 10**9)

    out = {}
    for c in (1, 50):
        out[f"get_c{c}"] = await rate(get, c, seconds)
        out[f"evalsha_c{c}"] = await rate(evalsha, c, seconds)
    await client.aclose()
    return out


async def bench_headway(url: str, prefix: str, mode: str, seconds: float) -> dict[str, Any]:
    hw = Headway(limits_url=url, pool_max=64)
    settings = RateLimitSettings(key_prefix=prefix, mode=mode)  # type: ignore[arg-type]
    limits = hw.add(RateLimits(hw, settings))
    limits.policy("bench", BIG, algorithm=Algorithm.FIXED_WINDOW, scope="global")
    out: dict[str, Any] = {}
    async with hw:
        probe = Redis.from_url(url)
        backend = limits.backend
        assert isinstance(backend, RedisLimitBackend)
        done = [0]

        async def hit(_: int) -> None:
            await limits.hit("bench", "k")
            done[0] += 1

        for c in (1, 50):
            before, trips = await command_calls(probe), backend.round_trips
            done[0] = 0
            out[f"checks_c{c}"] = await rate(hit, c, seconds)
            commands = await command_calls(probe) - before
            out[f"commands_per_check_c{c}"] = round(commands / max(done[0], 1), 3)
            out[f"round_trips_per_check_c{c}"] = round(
                (backend.round_trips - trips) / max(done[0], 1), 3
            )
        await probe.aclose()
    return out


LIMITS_SCRIPT = r"""
import asyncio, json, sys, time
from limits import parse
from limits.storage import storage_from_string
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

async def rate(fn, c, seconds):
    deadline = time.perf_counter() + seconds
    counts = [0] * c
    async def w(i):
        while time.perf_counter() < deadline:
            await fn()
            counts[i] += 1
    start = time.perf_counter()
    await asyncio.gather(*(w(i) for i in range(c)))
    return round(sum(counts) / (time.perf_counter() - start))

async def main(url, prefix, seconds):
    storage = storage_from_string("async+" + url, key_prefix=prefix, implementation="redispy")
    item = parse("1000000000/minute")
    out = {}
    strategies = (("fixed_window", FixedWindowRateLimiter),
                  ("moving_window", MovingWindowRateLimiter))
    for name, cls in strategies:
        limiter = cls(storage)
        async def hit():
            await limiter.hit(item, "bench", name)
        for c in (1, 50):
            out[f"{name}_c{c}"] = await rate(hit, c, seconds)
    print(json.dumps(out))

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


def bench_limits_library(python: str, url: str, prefix: str, seconds: float) -> dict[str, Any]:
    if not Path(python).exists():
        return {"skipped": f"{python} not found"}
    check = subprocess.run(
        [python, "-c", "import limits; print(limits.__version__)"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if check.returncode != 0:
        return {"skipped": "the limits library is not importable there"}
    run = subprocess.run(
        [python, "-c", LIMITS_SCRIPT, url, prefix, str(seconds)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if run.returncode != 0:
        return {"error": run.stderr.strip().splitlines()[-1:]}
    return {"version": check.stdout.strip(), **json.loads(run.stdout)}


# -- the HTTP part ------------------------------------------------------------------


def make_app() -> Any:
    """uvicorn factory: BENCH_MODE = none | direct | coalesce | lease[:lease size]."""
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/ping", response_class=PlainTextResponse)
    async def ping() -> str:
        return "pong"

    mode = os.environ.get("BENCH_MODE", "none")
    if mode != "none":
        url, prefix = os.environ["BENCH_REDIS"], os.environ["BENCH_PREFIX"]
        hw = Headway(limits_url=url, pool_max=64)
        mode, _, size = mode.partition(":")  # "lease:64": a lease size other than the default
        extra = {"lease_size": int(size)} if size else {}
        settings = RateLimitSettings(key_prefix=prefix, mode=mode, **extra)  # type: ignore[arg-type]
        limits = hw.add(RateLimits(hw, settings))
        limits.policy("bench", BIG, algorithm=Algorithm.FIXED_WINDOW, scope="ip")
        limits.protect("/", "bench")
        limits.install(app)
        app.state.limits = limits

        @app.on_event("startup")
        async def start() -> None:
            await hw.start()

        @app.on_event("shutdown")
        async def stop() -> None:
            await hw.stop()

    return app


LOADGEN = r"""
import asyncio, sys, time
async def conn(host, port, deadline, counts, i, statuses):
    reader, writer = await asyncio.open_connection(host, port)
    req = b"GET /ping HTTP/1.1\r\nHost: bench\r\n\r\n"
    while time.perf_counter() < deadline:
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        status = head[9:12]
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await reader.readexactly(length)
        counts[i] += 1
        statuses[status] = statuses.get(status, 0) + 1
    writer.close()

async def main(port, seconds, connections):
    counts = [0] * connections
    statuses = {}
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    await asyncio.gather(*(conn("127.0.0.1", port, deadline, counts, i, statuses)
                           for i in range(connections)))
    rps = round(sum(counts) / (time.perf_counter() - start))
    print(rps, dict((k.decode(), v) for k, v in statuses.items()))

asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])))
"""


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not listen on {port}")


async def cleanup(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    keys = [k async for k in client.scan_iter(match=f"*{prefix}*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--limits-python", default="/tmp/limits-venv/bin/python")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-checks", action="store_true", help="only the HTTP parts")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    prefix = f"hwbench-{uuid.uuid4().hex[:10]}"
    out: dict[str, Any] = {"redis": args.redis, "seconds": args.seconds}
    try:
        if args.skip_checks:
            out["in_process"] = await in_process(args.redis, prefix)
            out["http"] = await asyncio.to_thread(
                http_part, args.redis, prefix, max(args.seconds, 4.0), args.rounds
            )
            return
        out["raw_redis_py"] = await bench_raw(args.redis, prefix, args.seconds)
        out["headway"] = {
            m: await bench_headway(args.redis, prefix, m, args.seconds)
            for m in ("direct", "coalesce", "lease")
        }
        raw = out["raw_redis_py"]
        out["headway_vs_raw_evalsha"] = {
            f"{m}_c{c}": round(out["headway"][m][f"checks_c{c}"] / raw[f"evalsha_c{c}"], 2)
            for m in ("direct", "coalesce", "lease")
            for c in (1, 50)
        }
        out["limits_library"] = bench_limits_library(
            args.limits_python, args.redis, prefix, args.seconds
        )
        if not args.skip_http:
            out["in_process"] = await in_process(args.redis, prefix)
            out["http"] = await asyncio.to_thread(
                http_part, args.redis, prefix, max(args.seconds, 4.0), args.rounds
            )
    finally:
        await cleanup(args.redis, prefix)
        print(json.dumps(out, indent=2))


# "lease" runs the default lease size (256); "lease:64" the size before the default was
# raised: at 32 concurrent requests on one key a share of 64 lasts about two loop turns,
# less than a refill's round trip, so requests keep waiting for refills.
MODES = ("none", "coalesce", "lease", "lease:64")


def start_server(mode: str, url: str, prefix: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "BENCH_MODE": mode, "BENCH_REDIS": url, "BENCH_PREFIX": prefix}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "bench")])
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ratelimit:make_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log", "--app-dir", str(ROOT / "bench")],
        env=env,
    )  # fmt: skip
    wait_listening(port)
    return server, port


def load_once(port: int, seconds: float, connections: int = 32) -> tuple[float, int, str]:
    """Requests per second, requests done, statuses."""
    if shutil.which("wrk"):
        return wrk(port, seconds, connections)
    run = subprocess.run(
        [sys.executable, "-c", LOADGEN, str(port), str(seconds), str(connections)],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    )  # fmt: skip
    rps, statuses = run.stdout.split(" ", 1)
    return float(rps), round(float(rps) * seconds), statuses.strip()


def http_part(url: str, prefix: str, seconds: float, rounds: int = 3) -> dict[str, Any]:
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    results: dict[str, list[float]] = {m: [] for m in MODES}
    cpu: dict[str, list[float]] = {m: [] for m in MODES}
    statuses: dict[str, str] = {}
    try:
        for mode in MODES:
            servers[mode] = start_server(mode, url, prefix)
        for _, port in servers.values():
            load_once(port, 1.0)  # warm up
        for _ in range(rounds):
            for mode, (server, port) in servers.items():
                before = cpu_seconds(server.pid)
                rps, done, statuses[mode] = load_once(port, seconds)
                results[mode].append(rps)
                cpu[mode].append((cpu_seconds(server.pid) - before) / max(done, 1) * 1e6)
    finally:
        for server, _ in servers.values():
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return _http_summary(results, cpu, statuses)


def _http_summary(
    results: dict[str, list[float]], cpu: dict[str, list[float]], statuses: dict[str, str]
) -> dict[str, Any]:
    med = {m: statistics.median(v) for m, v in results.items()}
    cpu_med = {m: statistics.median(v) for m, v in cpu.items()}
    out: dict[str, Any] = {
        "client": "wrk -t1 -c32" if shutil.which("wrk") else "asyncio raw sockets, 32 connections"
    }
    for m in MODES:
        out[m] = {"rps": round(med[m]), "rounds": [round(v) for v in results[m]]}
        out[m]["server_cpu_us_per_request"] = round(cpu_med[m], 1)
        out[m]["statuses"] = statuses.get(m)
        if m != "none":
            out[m]["overhead"] = round(1 - med[m] / med["none"], 3) if med["none"] else None
            out[m]["cpu_overhead"] = round(cpu_med[m] / cpu_med["none"] - 1, 3)
    return out


async def in_process(url: str, prefix: str, batches: int = 30, size: int = 640) -> dict[str, Any]:
    """Median CPU us per request without the middleware and with it in each mode."""
    from contextlib import AsyncExitStack

    apps = {}
    for mode in MODES:
        os.environ.update(BENCH_MODE=mode, BENCH_REDIS=url, BENCH_PREFIX=prefix)
        apps[mode] = make_app()
    times: dict[str, list[float]] = {m: [] for m in MODES}
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        for app in apps.values():
            await asgi_batch(app, size, settle=0.002)
        before = {m: _backend_calls(app) for m, app in apps.items()}
        for _ in range(batches):
            for mode, app in apps.items():
                times[mode].append(await asgi_batch(app, size, settle=0.002))
        calls = {m: _backend_calls(app) - before[m] for m, app in apps.items()}
    med = {m: statistics.median(v) for m, v in times.items()}
    requests = batches * (size // 32) * 32
    return {
        "cpu_us_per_request": {m: round(v, 2) for m, v in med.items()},
        "added_us_per_request": {m: round(med[m] - med["none"], 2) for m in MODES[1:]},
        # round trips to Redis (pipelined batches; in lease mode, leases) per 1,000 requests
        "round_trips_per_1000_requests": {
            m: round(calls[m] * 1000 / requests, 1) for m in MODES[1:]
        },
        "batches": batches,
        "requests_per_batch": size,
    }


def _backend_calls(app: Any) -> int:
    """The round trips the app's rate limiter made to Redis so far."""
    limits = getattr(app.state, "limits", None)
    return 0 if limits is None else int(limits.backend.round_trips)


if __name__ == "__main__":
    asyncio.run(main())
