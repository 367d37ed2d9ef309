"""Helpers the HTTP benches share: a free port, CPU time per request through an app, a
``wrk`` run, and a server process's CPU time (so that a loaded machine, which lowers
requests per second, can be told from a slower server: CPU per request moves less).

Imported as ``from _asgi import ...`` by the bench scripts (run as ``python bench/x.py``,
so this folder is on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/ping", "raw_path": b"/ping", "query_string": b"",
    "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, seconds: float, connections: int, path: str = "/ping") -> tuple[float, int, str]:
    """``wrk -t1`` on ``path``: requests per second, requests done, and the errors line."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    rps = next(float(x.split()[1]) for x in out.splitlines() if x.startswith("Requests/sec"))
    done = next(int(x.split()[0]) for x in out.splitlines() if "requests in" in x)
    errors = [x.strip() for x in out.splitlines() if "Non-2xx" in x or "Socket errors" in x]
    return rps, done, "; ".join(errors) or "all 2xx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def asgi_batch(app: Any, n: int, concurrency: int = 32, settle: float = 0.0) -> float:
    """CPU microseconds per request of ``n`` GET /ping requests through ``app``.

    ``concurrency`` callers; the loop turns between requests so that deferred work is
    counted; ``settle`` seconds let work the batch left behind (round trips on the wire)
    finish before the clock stops (idle time is not CPU time).
    """
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    async def caller(count: int) -> None:
        for _ in range(count):
            await app({**SCOPE, "headers": list(SCOPE["headers"])}, receive, send)
            await asyncio.sleep(0)

    per = max(1, n // concurrency)
    start = time.process_time_ns()
    await asyncio.gather(*(caller(per) for _ in range(concurrency)))
    await asyncio.sleep(settle)
    return (time.process_time_ns() - start) / (per * concurrency) / 1000
