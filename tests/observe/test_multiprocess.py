"""Two real uvicorn worker processes: every scrape reports both workers' requests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.observe.test_metrics import value

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_workers_share_their_metrics(tmp_path: Path) -> None:
    port = _free_port()
    mp_dir = tmp_path / "prom"
    mp_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWAY_")}
    env.update(
        PROMETHEUS_MULTIPROC_DIR=str(mp_dir),
        PYTHONPATH=str(ROOT),
        HEADWAY_DATA_DIR=str(tmp_path / "data"),
        HEADWAY_OBSERVE_ALERTS="false",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.observe.mp_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2", "--log-level", "warning"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    close = {"Connection": "close"}  # a new connection each time: the kernel picks a worker
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, "server exited"
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        pids: set[int] = set()
        sent = 0
        while len(pids) < 2 and sent < 400:
            pids.add(httpx.get(f"{base}/pid", headers=close, timeout=5).json()["pid"])
            sent += 1
        assert len(pids) == 2, "the requests all reached one worker"
        for _ in range(6):
            scrape = httpx.get(f"{base}/metrics", headers=close, timeout=5)
            assert scrape.status_code == 200
            assert value(scrape.text, "http_requests_total", route="/pid") == sent
            assert value(scrape.text, "http_requests_in_flight") == 1  # the scrape itself
        memory = value(scrape.text, "headway_process_resident_memory_bytes")
        assert memory > 2 * 10_000_000  # both workers' memory, summed
        assert any(mp_dir.iterdir())
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
