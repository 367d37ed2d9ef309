"""``headway serve --workers 2 --max-requests N``: processes are replaced under load and no
request fails across a replacement (new connections and keep-alive connections alike);
SIGHUP replaces every process the same way (a rolling restart)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from headway.loadtest.service import free_port, start_process, wait_ready

pytestmark = pytest.mark.slow

REPLACEMENTS_WANTED = 2
BOUND_SECONDS = 60


def _replacements(log: Path) -> int:
    return log.read_text().count("replaced by")


async def _hammer(url: str, log: Path, keepalive: int) -> tuple[int, list[str]]:
    """Requests from 16 concurrent clients until 2 replacements more are logged (bounded)."""
    start = _replacements(log)
    served, failures = 0, []
    limits = httpx.Limits(max_keepalive_connections=keepalive)
    deadline = time.monotonic() + BOUND_SECONDS
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one(path: str) -> None:
            nonlocal served
            try:
                response = await client.get(path)
            except httpx.HTTPError as exc:
                failures.append(f"{path}: {type(exc).__name__} {exc}")
                return
            if response.status_code != 200:
                failures.append(f"{path}: HTTP {response.status_code}")
            served += 1

        while time.monotonic() < deadline:
            await asyncio.gather(*(one("/health") for _ in range(16)))
            if _replacements(log) >= start + REPLACEMENTS_WANTED:
                break
    return served, failures


@pytest.mark.parametrize("keepalive", [0, 16], ids=["new-connections", "keep-alive"])
async def test_no_request_fails_while_processes_recycle(tmp_path: Path, keepalive: int) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    args = ["serve", "--workers", "2", "--port", str(port)]
    args += ["--max-requests", "40", "--max-requests-jitter", "10", "--graceful-timeout", "10"]
    env = {
        "HEADWAY_DATA_DIR": str(tmp_path / "data"),
        # flags on memory: two processes creating the SQLite flag tables at once still
        # race ("table headway_flag_audit already exists"; reported to the flags owner)
        "HEADWAY_FLAGS_URL": "memory://",
    }
    proc = start_process(args, env=env, cwd=tmp_path, log_path=log, name="serve")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(proc, url)
        served, failures = await _hammer(url, log, keepalive)
        assert failures == [], failures[:5]
        assert _replacements(log) >= REPLACEMENTS_WANTED, proc.log_tail()
        assert served > 80
        assert proc.running()  # the supervisor outlives its processes
    finally:
        assert proc.stop() is not None


async def test_sighup_restarts_every_process_without_failures(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {"HEADWAY_DATA_DIR": str(tmp_path / "data"), "HEADWAY_FLAGS_URL": "memory://"}
    args = ["serve", "--workers", "2", "--port", str(port), "--graceful-timeout", "10"]
    proc = start_process(args, env=env, cwd=tmp_path, log_path=log, name="serve")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(proc, url)
        os.kill(proc.pid, signal.SIGHUP)  # the supervisor: replace both processes
        served, failures = await _hammer(url, log, keepalive=16)
        assert failures == [], failures[:5]
        assert _replacements(log) == 2, proc.log_tail()
        assert served > 0
    finally:
        assert proc.stop() is not None
