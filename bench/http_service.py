"""HTTP figures of the reference service on Redis + PostgreSQL, next to a bare FastAPI app.

    python bench/http_service.py [--seconds 10] [--workers 2]

(Not ``bench/http.py``: a script of that name would shadow the standard library's
``http`` for every bench run from this folder.)

Both apps run under uvicorn with ``--workers N`` on 127.0.0.1 and are loaded by ``wrk``
(a separate process): the service's cheapest cached read (``GET /api/v2/posts/{id}``,
with every middleware on: API-key auth, rate limits with quotas far above the load,
metrics, the access log) and the bare app answering the same bytes from one Redis GET.
Then 1,000 concurrent connections on the service (target: 0 errors), and execution
submits (``POST /api/v1/agents/{id}/execute``, 202 + enqueue on Redis) from an httpx
client in its own process (target: p95 < 20 ms). Prints JSON. Targets from issue #14:
service >= 60 % of the bare app's req/s, p99 < 50 ms.

Needs ``wrk`` (``apt-get install wrk``), Redis at 127.0.0.1:6379 and PostgreSQL at
127.0.0.1:5432 (database ``test``); uses a schema and a key prefix of its own, removed
at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

from headway import Settings
from headway.connections import Connections
from headway.demo.seed import seed
from headway.loadtest.service import (
    HeadwayProcess,
    free_port,
    start_process,
    wait_ready,
)

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
BIG = "10000000/minute"
ADMIN = "bench-admin-token-0123456789abcdef"

BARE_APP = """
import os
from fastapi import FastAPI
from fastapi.responses import Response
from redis.asyncio import Redis

app = FastAPI()
redis = Redis.from_url(os.environ["BARE_REDIS_URL"])
KEY = os.environ["BARE_KEY"]


@app.get("/api/v2/posts/{post_id}")
async def post(post_id: int) -> Response:
    return Response(await redis.get(KEY), media_type="application/json")
"""

SUBMIT_CLIENT = """
import asyncio, json, sys, time
import httpx

url, key, total, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

async def main():
    times, errors, left = [], 0, total
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        async def one(i):
            nonlocal errors
            start = time.perf_counter()
            r = await c.post(url, json={"prompt": f"bench {i}"})
            times.append(time.perf_counter() - start)
            errors += r.status_code != 202
        async def worker(w):
            nonlocal left
            while left > 0:
                left -= 1
                await one(left)
        await c.post(url, json={"prompt": "warm"})
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    times.sort()
    pct = lambda q: round(times[min(len(times) - 1, int(q * len(times)))] * 1000, 2)
    print(json.dumps({"requests": len(times), "errors": errors, "concurrency": concurrency,
                      "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99)}))

asyncio.run(main())
"""

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return round(float(number) * _UNITS[unit], 3)


def parse_wrk(output: str) -> dict[str, Any]:
    """req/s, latency percentiles (ms) and error counts from ``wrk --latency`` output."""
    out: dict[str, Any] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])}  # type: ignore[index]
    for pct, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", output, re.M):
        out[f"p{pct}_ms"] = _ms(value)
    requests = re.search(r"(\d+) requests in", output)
    out["requests"] = int(requests[1]) if requests else 0
    socket = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    out["socket_errors"] = sum(map(int, socket.groups())) if socket else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    out["non_2xx"] = int(non2xx[1]) if non2xx else 0
    out["errors"] = out["socket_errors"] + out["non_2xx"]
    if "p50_ms" not in out:  # wrk printed no distribution: keep its words for the reader
        out["wrk_output"] = " ".join(output.split())[-400:]
    return out


def wrk(url: str, connections: int, seconds: int, headers: dict[str, str]) -> dict[str, Any]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    done = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    return {"connections": connections, "seconds": seconds, **parse_wrk(done.stdout)}


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_BASE, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _seed(pg_url: str, data_dir: Path) -> dict[str, str]:
    conns = Connections(Settings(database_url=pg_url, data_dir=data_dir))
    try:
        return {k.tenant: k.key for k in await seed(conns.engine())}
    finally:
        await conns.close()


async def _redis(action: str, prefix: str, value: bytes = b"") -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS)
    try:
        if action == "set":
            await client.set(f"{prefix}:bare", value)
        else:
            keys = [k async for k in client.scan_iter(match=f"*{prefix}*", count=1000)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()


def service_env(tmp: Path, pg_url: str, prefix: str) -> dict[str, str]:
    plans = {p: BIG for p in ("free", "default", "professional", "enterprise")}
    env = {
        "HEADWAY_DATA_DIR": str(tmp / "data"),
        "HEADWAY_DATABASE_URL": pg_url,
        "HEADWAY_REDIS_URL": REDIS,
        "HEADWAY_INPROCESS_WORKER": "false",
        "HEADWAY_DEMO_SEED": "false",
        "HEADWAY_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "HEADWAY_ADMIN_TOKEN": ADMIN,
        "HEADWAY_ENV": "production",  # JSON access log, as deployed
        "HEADWAY_RATELIMIT_PLANS": json.dumps(plans),
    }
    for name in ("CACHE", "FLAGS", "BREAKERS"):
        env[f"HEADWAY_{name}_PREFIX"] = prefix
    for name in ("JOBS_REDIS", "EVENTS_REDIS", "WORKFLOWS_REDIS"):
        env[f"HEADWAY_{name}_PREFIX"] = prefix
    env["HEADWAY_RATELIMIT_KEY_PREFIX"] = prefix
    return env


def measure_service(tmp: Path, pg_url: str, prefix: str, args: Any) -> dict[str, Any]:
    port = free_port()
    cmd = ["serve", "--workers", str(args.workers), "--port", str(port)]
    env = service_env(tmp, pg_url, prefix)
    proc = start_process(cmd, env=env, cwd=tmp, log_path=tmp / "service.log", name="service")
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}", timeout=120)
        keys = asyncio.run(_seed(pg_url, tmp / "data"))
        auth = {"Authorization": f"Bearer {keys['acme']}"}
        base = proc.url
        with httpx.Client(base_url=base, headers=auth, timeout=10) as client:
            post = client.get("/api/v2/posts?limit=1&fields=id").json()["data"][0]["id"]
            agent = client.get("/api/v2/agents?limit=1&fields=id").json()["data"][0]["id"]
            path = f"/api/v2/posts/{post}?fields=id,title,status"
            body = b""
            for _ in range(4 * args.workers):  # every process caches it
                body = client.get(path).content
        asyncio.run(_redis("set", prefix, body))
        read = wrk(base + path, args.connections, args.seconds, auth)
        many = wrk(base + path, args.many, args.seconds, auth)
        submit = _submits(f"{base}/api/v1/agents/{agent}/execute", keys["acme"], args)
        return {"cached_read": read, "many_clients": many, "submit": submit, "path": path}
    finally:
        _stop(proc)


def _submits(url: str, key: str, args: Any) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SUBMIT_CLIENT, url, key, str(args.submits), "10"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure_bare(tmp: Path, prefix: str, args: Any, workers: int) -> dict[str, Any]:
    app_dir = tmp / "bare"
    app_dir.mkdir(exist_ok=True)
    (app_dir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env |= {"BARE_REDIS_URL": REDIS, "BARE_KEY": f"{prefix}:bare"}
    log = (tmp / f"bare{workers}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(app_dir),
         "--port", str(port), "--workers", str(workers), "--no-access-log",
         "--log-level", "warning"],
        env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    bare = HeadwayProcess(proc, tmp / f"bare{workers}.log", name="bare", _log=log)
    try:
        wait_ready(bare, f"http://127.0.0.1:{port}", path="/api/v2/posts/1", timeout=60)
        return {
            "workers": workers,
            **wrk(bare.url + "/api/v2/posts/1", args.connections, args.seconds, {}),
        }
    finally:
        _stop(bare)


def _stop(proc: HeadwayProcess) -> None:
    proc.stop(grace=30)


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found[1].strip() if found else ""
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--many", type=int, default=1000)
    parser.add_argument("--submits", type=int, default=400)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/http_service.py needs wrk (apt-get install wrk)")
    schema, prefix = f"bench_http_{uuid.uuid4().hex[:8]}", f"benchhttp-{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg(f'CREATE SCHEMA "{schema}"'))
    try:
        with tempfile.TemporaryDirectory(prefix="headway-bench-http-") as tmp:
            service = measure_service(Path(tmp), f"{PG_BASE}?schema={schema}", prefix, args)
            bare = measure_bare(Path(tmp), prefix, args, args.workers)
            bare_one = measure_bare(Path(tmp), prefix, args, 1)
    finally:
        asyncio.run(_pg(f'DROP SCHEMA "{schema}" CASCADE'))
        asyncio.run(_redis("delete", prefix))
    read = service["cached_read"]
    ratio = read["rps"] / bare["rps"] if bare["rps"] else 0.0
    print(
        json.dumps(
            {
                "bench": "http_service",
                "machine": machine(),
                "workers": args.workers,
                "service_cached_read": read,
                "bare_fastapi_redis": bare,
                "bare_fastapi_redis_1_worker": bare_one,
                "service_vs_bare": round(ratio, 3),
                "many_clients": service["many_clients"],
                "execution_submit": service["submit"],
                "endpoint": "GET " + service["path"],
                "targets": {
                    "service_vs_bare >= 0.6": ratio >= 0.6,
                    "cached read p99 < 50 ms": read.get("p99_ms", 1e9) < 50,
                    "1000 clients, 0 errors": service["many_clients"]["errors"] == 0,
                    "submit p95 < 20 ms": service["submit"]["p95_ms"] < 20,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
