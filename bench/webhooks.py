"""Webhook dispatch throughput to a local receiver, next to raw httpx POSTs (JSON).

    python bench/webhooks.py [--messages 2000] [--concurrency 50] [--jobs sqlite,redis]

- baseline_httpx_posts_per_s: ``--messages`` POSTs of the same signed body with one
  ``httpx.AsyncClient`` and ``--concurrency`` requests in flight: what the network
  and the receiver allow, with nothing else;
- per job store (``sqlite``: a temporary file; ``redis``: the local server, keys under a
  random prefix): ``send_per_s`` (``hw.webhooks.send`` of ``--messages`` messages to one
  endpoint, one after the other: store the message + enqueue its delivery job), then
  ``deliveries_per_s``: a worker at ``--concurrency`` starts and drains them; each delivery
  reads endpoint + message, checks the URL again, signs, POSTs and writes its log row.

The receiver is a separate process (a raw asyncio HTTP/1.1 server answering 200), started
on a free 127.0.0.1 port and stopped by its PID. Endpoints and messages live in a
temporary SQLite database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from headway import Headway, Settings
from headway.notify import Notify, NotifySettings
from headway.webhooks import Webhooks, WebhooksSettings, generate_secret
from headway.webhooks.signing import headers as signed_headers
from headway.webhooks.store import deliveries

REDIS = "redis://127.0.0.1:6379/0"
RECEIVER = r"""
import asyncio, sys

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    async with server:
        await asyncio.sleep(float(sys.argv[2]))

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_receiver(port: int, lifetime: float) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port), str(lifetime)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the receiver did not start")


async def baseline(url: str, messages: int, concurrency: int) -> float:
    secret = generate_secret()
    body = json.dumps({"type": "bench.event", "data": {"n": 1, "pad": "x" * 200}}).encode()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

        async def post(i: int) -> None:
            async with gate:
                sent = signed_headers([secret], f"msg_{i}", int(time.time()), body)
                response = await client.post(url, content=body, headers=sent)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(post(i) for i in range(messages)))
        return messages / (time.perf_counter() - started)


async def wait_logged(hw: Headway, expected: int) -> None:
    count = select(func.count()).select_from(deliveries)
    while True:
        async with hw.connections.engine().connect() as conn:
            if int(await conn.scalar(count) or 0) >= expected:
                return
        await asyncio.sleep(0.05)


async def dispatch(url: str, jobs_url: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    settings = Settings(data_dir=tmp / ".headway", jobs_url=jobs_url)
    hw = Headway(settings)
    hw.add(Notify(hw, NotifySettings()))
    hook_settings = WebhooksSettings(allow_hosts=["127.0.0.1"], retry_schedule=[0])
    webhooks = hw.add(Webhooks(hw, hook_settings))
    async with hw:
        endpoint = await webhooks.create_endpoint("bench", url)
        started = time.perf_counter()
        for n in range(args.messages):
            await webhooks.send("bench", "bench.event", {"n": n, "pad": "x" * 200})
        sent_s = time.perf_counter() - started
        worker = hw.jobs.worker(["webhooks"], concurrency=args.concurrency, poll_interval=0.01)
        started = time.perf_counter()
        task = asyncio.create_task(worker.run())
        await wait_logged(hw, args.messages)
        drain_s = time.perf_counter() - started
        worker.stop()
        await task
        failed = [d for d in await webhooks.deliveries("bench", endpoint.id, limit=500)
                  if d.outcome != "succeeded"]  # fmt: skip
    return {
        "send_per_s": round(args.messages / sent_s, 1),
        "deliveries_per_s": round(args.messages / drain_s, 1),
        "failed_in_last_500": len(failed),
    }


async def drop_keys(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS)
    try:
        keys = [k async for k in client.scan_iter(match=f"*{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    receiver = start_receiver(port, lifetime=600)
    url = f"http://127.0.0.1:{port}/hook"
    out: dict[str, Any] = {
        "messages": args.messages, "concurrency": args.concurrency,
        "python": platform.python_version(), "cpus": os.cpu_count(),
    }  # fmt: skip
    try:
        out["baseline_httpx_posts_per_s"] = round(
            await baseline(url, args.messages, args.concurrency), 1
        )
        for kind in args.jobs.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                prefix = f"hwbench-{uuid.uuid4().hex[:8]}"
                if kind == "redis":
                    jobs_url = f"{REDIS}?prefix={prefix}"
                else:
                    jobs_url = f"sqlite:///{Path(tmp) / 'jobs.db'}"
                try:
                    out[f"webhooks_{kind}"] = await dispatch(url, jobs_url, args, Path(tmp))
                finally:
                    if kind == "redis":
                        await drop_keys(prefix)
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--jobs", default="sqlite,redis", help="job stores: sqlite,redis")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
