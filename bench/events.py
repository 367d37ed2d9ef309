"""Realtime fan-out: one event to N WebSocket clients across 2 server processes on Redis.

    python bench/events.py [--clients 1000] [--servers 2] [--events 50] [--burst 200]

Starts ``--servers`` uvicorn processes on 127.0.0.1 (each a hub with ``hw.events`` on the
local Redis, keys under a random prefix), connects ``--clients`` WebSocket clients split
evenly across them, all on one channel, then publishes from this process through the
same Redis:

- latency: ``--events`` events 50 ms apart, each stamped with its send time; every
  client records receive time - send time: p50 / p99 / max over all deliveries;
- throughput: ``--burst`` events published back to back; events_per_s = burst / time
  until every client had every event, deliveries_per_s = that times the clients.

Baselines in the same run: the same clients and load on a bare relay (Starlette
WebSockets, one Redis pub/sub subscription per process, a plain send loop: no history,
offsets, authorization or per-client buffers), and raw Redis pub/sub latency with one
redis-py subscriber (the floor under both). Prints JSON. Every process started
here is stopped by its PID; the whole run is bounded (``--timeout`` seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

REDIS = "redis://127.0.0.1:6379/0"
CHANNEL = "bench.fanout"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- server process --------------------------------------------------------------------


def serve(port: int) -> None:
    """One server process: ``python bench/events.py --serve PORT`` (settings from env)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import HTTPConnection

    from headway import Headway

    hw = Headway()

    @hw.events.authorize
    def allow(conn: HTTPConnection, channel: str) -> bool:
        return channel.startswith("bench.")

    app = Starlette()
    hw.install(app)
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", ws_ping_interval=None,
        access_log=False, backlog=4096,
    )  # fmt: skip


def serve_bare(port: int, channel: str) -> None:
    """The baseline server: Starlette WebSockets relaying one Redis pub/sub channel to every
    client in a plain loop (no history, no authorization, no per-client buffer)."""
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    import uvicorn
    from redis.asyncio import Redis
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    clients: set[WebSocket] = set()

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text('{"type":"ready"}')
        clients.add(ws)
        try:
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            clients.discard(ws)

    async def relay() -> None:
        pubsub = Redis.from_url(REDIS).pubsub()
        await pubsub.subscribe(channel)
        async for message in pubsub.listen():
            if message["type"] == "message":
                text = message["data"].decode()
                for ws in list(clients):
                    await ws.send_text(text)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(relay())
        yield
        task.cancel()

    app = Starlette(routes=[WebSocketRoute("/realtime/ws", endpoint)], lifespan=lifespan)
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", ws_ping_interval=None,
        access_log=False, backlog=4096,
    )  # fmt: skip


def start_servers(
    count: int, prefix: str, data_dir: str, bare: bool = False
) -> list[tuple[subprocess.Popen[bytes], int]]:
    env = {
        **os.environ,
        "HEADWAY_EVENTS_URL": f"{REDIS}?prefix={prefix}",
        "HEADWAY_EVENTS_CLIENT_BUFFER": "4096",
        "HEADWAY_EVENTS_HISTORY_SIZE": "10",
        "HEADWAY_LOG_LEVEL": "WARNING",
        "HEADWAY_DATA_DIR": data_dir,
        "HEADWAY_JOBS_URL": "memory://",
    }
    procs = []
    for _ in range(count):
        port = free_port()
        mode = ["--serve-bare", str(port), "--channel", prefix] if bare else ["--serve", str(port)]
        cmd = [sys.executable, __file__, *mode]
        procs.append((subprocess.Popen(cmd, env=env), port))
    return procs


def stop_servers(procs: list[tuple[subprocess.Popen[bytes], int]]) -> None:
    for proc, _ in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    for proc, _ in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


async def wait_listening(port: int) -> None:
    for _ in range(600):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError(f"server on port {port} did not start")


# -- clients ---------------------------------------------------------------------------


class WSClient(asyncio.Protocol):
    """A minimal WebSocket client (raw asyncio): the bench measures the servers, so the
    1,000 clients sharing this process must cost as little as possible per frame."""

    def __init__(self, owner: Clients, index: int, path: str) -> None:
        self.owner, self.index, self.path = owner, index, path
        self.buf = bytearray()
        self.upgraded = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(bytes(self.buf[:200]).decode()))
                return
            del self.buf[: end + 4]
            self.upgraded = True
        self.frames()

    def frames(self) -> None:
        buf, now = self.buf, time.time()
        while len(buf) >= 2:
            length, start = buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, start = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, start = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < start + length:
                return
            if buf[0] & 0x0F == 1:
                self.owner.on_frame(self, bytes(buf[start : start + length]), now)
            del buf[: start + length]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before ready"))


class Clients:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.counts: dict[int, int] = {}
        self.last_at: dict[int, float] = {}
        self.conns: list[WSClient] = []

    def on_frame(self, client: WSClient, payload: bytes, now: float) -> None:
        if b'"type":"event"' in payload:
            if b'"kind":"latency"' in payload:
                self.latencies.append(now - orjson.loads(payload)["data"]["t"])
            self.counts[client.index] += 1
            self.last_at[client.index] = now
        elif b'"type":"ready"' in payload and not client.ready.done():
            client.ready.set_result(None)

    async def connect(self, ports: list[int], n: int) -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(50)

        async def one(i: int) -> None:
            path = f"/realtime/ws?channels={CHANNEL}"
            async with gate:
                client = WSClient(self, i, path)
                self.counts[i] = 0
                await loop.create_connection(lambda: client, "127.0.0.1", ports[i % len(ports)])
                await asyncio.wait_for(client.ready, 30)
            self.conns.append(client)

        await asyncio.gather(*(one(i) for i in range(n)))

    async def until_each_has(self, total: int, limit: float) -> None:
        for _ in range(int(limit / 0.01)):
            if min(self.counts.values()) >= total:
                return
            await asyncio.sleep(0.01)
        short = sum(1 for c in self.counts.values() if c < total)
        raise RuntimeError(f"{short} clients did not get all {total} events in {limit} s")

    async def close(self) -> None:
        for client in self.conns:
            if client.transport is not None:
                client.transport.close()
        await asyncio.sleep(0.1)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


# -- runs ------------------------------------------------------------------------------


Publish = Callable[[dict[str, Any]], Awaitable[Any]]


async def fanout(
    args: argparse.Namespace, prefix: str, data_dir: str, bare: bool = False
) -> dict[str, Any]:
    """One run: servers (headway's, or the bare relay), clients, latency, then a burst."""
    from redis.asyncio import Redis

    from headway import Headway

    procs = start_servers(args.servers, prefix, data_dir, bare)
    clients = Clients()
    hw = Headway(events_url=f"{REDIS}?prefix={prefix}", log_level="WARNING", jobs_url="memory://",
                 data_dir=data_dir)  # fmt: skip
    hw.events  # noqa: B018
    raw = Redis.from_url(REDIS)

    async def publish(data: dict[str, Any]) -> Any:
        if not bare:
            return await hw.events.publish(CHANNEL, "Tick", data)
        frame = {"type": "event", "channel": CHANNEL, "event": "Tick", "data": data}
        return await raw.publish(prefix, orjson.dumps(frame))

    try:
        ports = [port for _, port in procs]
        await asyncio.gather(*(wait_listening(p) for p in ports))
        started = time.perf_counter()
        await clients.connect(ports, args.clients)
        connect_s = time.perf_counter() - started
        async with hw:
            elapsed = await measure(args, clients, publish)
    finally:
        await clients.close()
        stop_servers(procs)
        await raw.aclose()
    lat = clients.latencies
    return {
        "clients": args.clients,
        "servers": args.servers,
        "connect_s": round(connect_s, 2),
        "latency_deliveries": len(lat),
        "latency_p50_ms": pct(lat, 0.50),
        "latency_p99_ms": pct(lat, 0.99),
        "latency_max_ms": round(max(lat) * 1000, 2),
        "burst_events": args.burst,
        "events_per_s": round(args.burst / elapsed, 1),
        "deliveries_per_s": round(args.burst * args.clients / elapsed),
    }


async def measure(args: argparse.Namespace, clients: Clients, publish: Publish) -> float:
    """Latency events 50 ms apart, then a burst; returns the burst's seconds."""
    for _ in range(args.events):
        await publish({"kind": "latency", "t": time.time()})
        await asyncio.sleep(0.05)
    await clients.until_each_has(args.events, 60)
    first = time.time()
    for i in range(args.burst):
        await publish({"kind": "burst", "i": i})
    await clients.until_each_has(args.events + args.burst, 120)
    return max(clients.last_at.values()) - first


async def redis_baseline(events: int) -> dict[str, Any]:
    from redis.asyncio import Redis

    channel = f"hwbench-{uuid.uuid4().hex[:8]}"
    pub, sub_client = Redis.from_url(REDIS), Redis.from_url(REDIS)
    pubsub = sub_client.pubsub()
    await pubsub.subscribe(channel)
    lat: list[float] = []

    async def read() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                lat.append(time.time() - orjson.loads(message["data"])["t"])

    reader = asyncio.create_task(read())
    try:
        for _ in range(events):
            await pub.publish(channel, orjson.dumps({"t": time.time()}))
            await asyncio.sleep(0.05)
        for _ in range(500):
            if len(lat) >= events:
                break
            await asyncio.sleep(0.01)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await pubsub.aclose()
        await pub.aclose()
        await sub_client.aclose()
    return {
        "deliveries": len(lat),
        "latency_p50_ms": pct(lat, 0.5),
        "latency_p99_ms": pct(lat, 0.99),
    }


async def main(args: argparse.Namespace) -> None:
    prefix = f"hwbench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as data_dir:
        try:
            async with asyncio.timeout(args.timeout):
                baseline = await redis_baseline(args.events)
                bare = await fanout(args, prefix + "-bare", data_dir, bare=True)
                result = await fanout(args, prefix, data_dir)
        finally:
            await cleanup(prefix)
    out = {
        "bench": "events_fanout",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "websocket_fanout_redis": result,
        "baseline_bare_starlette_relay": bare,
        "baseline_raw_redis_pubsub_1_subscriber": baseline,
    }
    print(json.dumps(out, indent=2))


async def cleanup(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--channel", default="", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    if arguments.serve:
        serve(arguments.serve)
    elif arguments.serve_bare:
        serve_bare(arguments.serve_bare, arguments.channel)
    else:
        asyncio.run(main(arguments))
