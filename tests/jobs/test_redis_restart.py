"""Redis restarting under a running worker: the worker backs off, reconnects and carries on.

A private ``redis-server`` (127.0.0.1, a free port, no persistence) is started by the test,
stopped by its PID while the worker runs, and started again on the same port. Bounded:
every wait has a deadline and only the server this test started is signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from headway import Headway
from headway.jobs import Jobs

REDIS_SERVER = shutil.which("redis-server")
pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise AssertionError("private redis-server did not start within 10s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()  # by PID: only the server this test started
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def until(predicate: object, what: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out ({within}s) waiting for {what}")
        await asyncio.sleep(0.02)


async def test_worker_survives_a_redis_restart(
    private_redis: PrivateRedis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="headway.jobs")
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    hub = Headway(jobs_url=url, data_dir=tmp_path, connect_timeout=0.5)
    jobs = hub.add(Jobs(hub))
    done: list[int] = []

    @jobs.task(name="mark", retries=0)
    async def mark(n: int) -> None:
        done.append(n)

    async with hub:
        worker = jobs.worker(["default"], concurrency=10, grace=1)
        running = asyncio.create_task(worker.run())
        try:
            await jobs.enqueue_many([mark.call(i) for i in range(10)])
            await until(lambda: len(done) == 10, "the jobs before the restart", 10)

            private_redis.stop()
            await asyncio.sleep(1.0)  # the worker fails to claim meanwhile and backs off
            assert not running.done(), "the worker must not die with its server"
            private_redis.start()  # same port, empty (no persistence)

            await until(lambda: "retrying in" in caplog.text, "a backoff warning", 10)
            await jobs.enqueue_many([mark.call(i) for i in range(100, 120)])
            await until(lambda: len(done) == 30, "the jobs after the restart", 20)
            assert sorted(done[10:]) == list(range(100, 120))
            handle = await mark.enqueue(999)
            assert await handle.result(timeout=10) is None
            stats = await jobs.stats()
            assert stats["default"]["succeeded"] == 21  # after the restart: 20 + 1
        finally:
            worker.stop()
            await asyncio.wait_for(running, timeout=10)
