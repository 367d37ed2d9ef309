"""Overhead of headway.observe (metrics + request logs) and the cost of a scrape.

    python bench/observe.py [--seconds 4] [--rounds 3] [--connections 32]

1. In process: CPU microseconds per request of ``/ping`` driven straight through the
   ASGI app (32 concurrent callers, the event loop turning between requests so that the
   access lines' formatting and writing is counted), observe on and off, in
   alternating batches in one process: robust on a loaded machine.
2. Requests per second of a cheap endpoint (``bench/observe_app.py:/ping``) served by
   uvicorn (one process, 127.0.0.1, free port) with observe on (metrics middleware,
   JSON access log to stdout -> /dev/null) and off (``HEADWAY_OBSERVE_ENABLED=false``),
   measured in alternating rounds in the same run by ``wrk`` (one thread, another
   process) when installed, else by a keep-alive raw-socket asyncio client; with each
   server's CPU microseconds per request (from /proc), which a loaded machine disturbs
   less than requests per second.
3. Time of ``GET /metrics`` with 100 routes (each answered once) and 10 job queues
   (a capability exporting pending/running/failed gauges and a duration histogram per
   queue), median and max of 30 scrapes in process (the first one included), wall and
   CPU time; then 10 scrapes each after every route answered once more (every HTTP
   series changed since the previous scrape).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _asgi import asgi_batch, cpu_seconds, free_port, wrk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # the checkout this script is in, not an installed one


def start_server(observe: bool, data_dir: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWAY_")}
    env.update(
        PYTHONPATH=f"{ROOT / 'src'}:{ROOT / 'bench'}",
        HEADWAY_DATA_DIR=data_dir,
        HEADWAY_OBSERVE_ENABLED=str(observe).lower(),
        HEADWAY_OBSERVE_LOGS=str(observe).lower(),
        HEADWAY_OBSERVE_LOG_FORMAT="json",
        HEADWAY_OBSERVE_ALERTS="false",
    )
    cmd = [sys.executable, "-m", "uvicorn", "observe_app:app", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return proc, port
        except httpx.TransportError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError("server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _connection(port: int, until: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /ping HTTP/1.1\r\nHost: bench\r\n\r\n"
    done = 0
    try:
        while time.perf_counter() < until:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            done += 1
    finally:
        counts.append(done)
        writer.close()


async def load(port: int, seconds: float, connections: int) -> float:
    counts: list[int] = []
    start = time.perf_counter()
    until = start + seconds
    await asyncio.gather(*(_connection(port, until, counts) for _ in range(connections)))
    return sum(counts) / (time.perf_counter() - start)


def run_load(port: int, seconds: float, connections: int) -> tuple[float, int]:
    """Requests per second and requests done."""
    if shutil.which("wrk"):
        rps, done, _ = wrk(port, seconds, connections)
        return rps, done
    rps = asyncio.run(load(port, seconds, connections))
    return rps, round(rps * seconds)


def throughput(seconds: float, rounds: int, connections: int) -> dict[str, Any]:
    results: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {name: start_server(name == "on", tmp) for name in ("off", "on")}
        try:
            for _, port in servers.values():  # warm up
                run_load(port, 1.0, connections)
            for _ in range(rounds):
                for name, (proc, port) in servers.items():
                    before = cpu_seconds(proc.pid)
                    rps, done = run_load(port, seconds, connections)
                    results[name].append(rps)
                    cpu[name].append((cpu_seconds(proc.pid) - before) / max(done, 1) * 1e6)
        finally:
            for proc, _ in servers.values():
                stop(proc)
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    cpu_off, cpu_on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
    return {
        "client": "wrk -t1" if shutil.which("wrk") else "asyncio raw sockets",
        "connections": connections,
        "rps_off": round(off),
        "rps_on": round(on),
        "overhead_pct": round((off - on) / off * 100, 1),
        "server_cpu_us_per_request_off": round(cpu_off, 1),
        "server_cpu_us_per_request_on": round(cpu_on, 1),
        "cpu_overhead_pct": round((cpu_on / cpu_off - 1) * 100, 1),
        "rounds": {k: [round(v) for v in vs] for k, vs in results.items()},
    }


def _ping_app(observe: bool, data_dir: Path) -> tuple[Any, Any]:
    from fastapi import FastAPI

    from headway import Headway
    from headway.observe import Observe, ObserveSettings

    hw = Headway(data_dir=data_dir)
    settings = ObserveSettings(enabled=observe, logs=observe, log_format="json", alerts=False)
    hw.add(Observe(hw, settings))
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    hw.install(app)
    return hw, app


async def in_process(batches: int = 30, size: int = 640) -> dict[str, Any]:
    """Median CPU us per request, observe on and off, alternating batches."""
    from contextlib import AsyncExitStack

    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull:  # noqa: ASYNC230
        apps = {name: _ping_app(name == "on", Path(tmp, name)) for name in ("off", "on")}
        async with AsyncExitStack() as stack:
            for _, app in apps.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
            apps["on"][0].observe.configure_logging(devnull)
            for _, app in apps.values():
                await asgi_batch(app, size)
            times: dict[str, list[float]] = {name: [] for name in apps}
            for _ in range(batches):
                for name, (_, app) in apps.items():
                    times[name].append(await asgi_batch(app, size))
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    return {
        "cpu_us_per_request_off": round(off, 2),
        "cpu_us_per_request_on": round(on, 2),
        "added_us_per_request": round(on - off, 2),
        "batches": batches,
        "requests_per_batch": size,
    }


async def scrape_time(routes: int = 100, queues: int = 10, repeat: int = 30) -> dict[str, Any]:
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    from headway import Capability, Headway

    class FakeJobs(Capability):
        name = "fakejobs"

        def register_metrics(self, registry: CollectorRegistry) -> None:
            kw: dict[str, Any] = {"registry": registry, "multiprocess_mode": "mostrecent"}
            self.pending = Gauge("headway_jobs_pending", "Pending.", ["queue"], **kw)
            self.running = Gauge("headway_jobs_running", "Running.", ["queue"], **kw)
            self.failed = Counter("headway_jobs_failed", "Failed.", ["queue"], registry=registry)
            self.duration = Histogram(
                "headway_jobs_duration_seconds", "Duration.", ["queue"], registry=registry
            )

        async def refresh_metrics(self) -> None:
            for i in range(queues):
                self.pending.labels(f"q{i}").set(i * 10)
                self.running.labels(f"q{i}").set(i)

    with tempfile.TemporaryDirectory() as tmp:
        hw = Headway(data_dir=Path(tmp))
        jobs = hw.add(FakeJobs(hw))
        app = FastAPI()
        for i in range(routes):

            async def endpoint(item: int) -> dict[str, int]:
                return {"item": item}

            app.add_api_route(f"/r{i}/{{item}}", endpoint, methods=["GET"])
        hw.install(app)
        async with app.router.lifespan_context(app):
            hw.observe.configure_logging(open(os.devnull, "w"))  # noqa: SIM115, ASYNC230
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
                for i in range(routes):
                    await client.get(f"/r{i}/1")
                    await client.get(f"/r{i}/x")  # a 422 too
                for i in range(queues):
                    jobs.failed.labels(f"q{i}").inc()
                    jobs.duration.labels(f"q{i}").observe(0.1)
                times, cpu, size = [], [], 0
                for _ in range(repeat):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    response = await client.get("/metrics")
                    times.append((time.perf_counter() - start) * 1000)
                    cpu.append((time.process_time() - start_cpu) * 1000)
                    size = len(response.content)
                changed = []  # every route answered again between scrapes: no series cached
                for _ in range(repeat // 3):
                    for i in range(routes):
                        await client.get(f"/r{i}/1")
                    start = time.perf_counter()
                    await client.get("/metrics")
                    changed.append((time.perf_counter() - start) * 1000)
    return {
        "routes": routes,
        "queues": queues,
        "scrape_ms_median": round(statistics.median(times), 2),
        "scrape_ms_max": round(max(times), 2),
        "scrape_cpu_ms_median": round(statistics.median(cpu), 2),
        "scrape_cpu_ms_max": round(max(cpu), 2),
        "scrape_ms_all_routes_changed_median": round(statistics.median(changed), 2),
        "scrape_ms_all_routes_changed_max": round(max(changed), 2),
        "scrape_lines": response.text.count("\n"),
        "scrape_bytes": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    result = {
        "bench": "observe",
        "cpus": os.cpu_count(),
        "in_process": asyncio.run(in_process()),
        "throughput": throughput(args.seconds, args.rounds, args.connections),
        "scrape": asyncio.run(scrape_time()),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
