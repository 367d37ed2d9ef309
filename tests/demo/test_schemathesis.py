"""Schemathesis over the live reference service: no input may produce a 5xx.

Starts ``headway serve`` (the README's command) on a free 127.0.0.1 port in a temp dir,
gets API keys from ``headway demo seed``, runs the schemathesis CLI with a bounded number
of examples per operation, then stops the server it started (by PID).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

ADMIN = "schemathesis-admin-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} not installed"
    return found


def test_no_server_error_for_any_generated_request(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWAY_")}
    env.update(COLUMNS="200", HEADWAY_SECRET_KEY="s" * 32, HEADWAY_ADMIN_TOKEN=ADMIN)
    seeded = subprocess.run(
        [_bin("headway"), "demo", "seed"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=60, check=True,
    )  # fmt: skip
    key = re.findall(r"hw_[A-Za-z0-9_-]{40,}", seeded.stdout)[0]
    server = subprocess.Popen(
        [_bin("headway"), "serve", "--port", str(port)], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            assert server.poll() is None, "server exited"
            time.sleep(0.2)
        # The tenant API with a tenant key; the admin and health routes with the admin token.
        for pattern, token in (("^/api/", key), ("^/(admin|health|metrics)", ADMIN)):
            run = subprocess.run(
                [
                    _bin("schemathesis"), "run", f"{base}/openapi.json",
                    "--include-path-regex", pattern,
                    "-H", f"Authorization: Bearer {token}",
                    "--max-examples", "20", "--seed", "1", "--workers", "1",
                    "--checks", "not_a_server_error", "--request-timeout", "10",
                ],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
            )  # fmt: skip
            summary = run.stdout[-3000:]
            assert run.returncode == 0, summary
            selected = re.search(r"Selected: (\d+)/", summary)
            tested = re.search(r"Tested: (\d+)", summary)
            assert selected and tested and selected.group(1) == tested.group(1), summary
            assert int(tested.group(1)) >= 5, summary
            assert re.search(r"\d+ generated, \d+ passed", summary), summary
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
