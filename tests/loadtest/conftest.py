"""The reference service on the embedded defaults (SQLite file, memory, local files, the
in-process job worker), served by ``headway serve`` (uvicorn) on a free 127.0.0.1 port in
a temp data directory, once per module; stopped by PID."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from headway.loadtest.service import HeadwayProcess, free_port, start_process, wait_ready

ADMIN_TOKEN = "loadtest-admin-token-0123456789"
# Quotas far above the load: a load test measures the service, not its 429s.
UNLIMITED = "100000/minute"
LOADTEST_ENV = {
    "HEADWAY_ADMIN_TOKEN": ADMIN_TOKEN,
    "HEADWAY_RATELIMIT_PLANS": json.dumps(
        {p: UNLIMITED for p in ("free", "default", "professional", "enterprise")}
    ),
    "HEADWAY_RATELIMIT_POLICIES": json.dumps({"upload": UNLIMITED}),
    "HEADWAY_OBSERVE_ACCESS_LOG": "false",
}


@dataclass
class Service:
    url: str
    data_dir: Path
    process: HeadwayProcess

    def env(self) -> dict[str, str]:
        """What a process needs to reach the same database (to seed keys)."""
        return {"HEADWAY_DATA_DIR": str(self.data_dir), **LOADTEST_ENV}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("loadtest-service")
    data_dir = root / "data"
    port = free_port()
    env = {"HEADWAY_DATA_DIR": str(data_dir), "HEADWAY_INPROCESS_WORKER": "true", **LOADTEST_ENV}
    process = start_process(
        ["serve", "--port", str(port)], env=env, cwd=root, log_path=root / "serve.log"
    )
    try:
        wait_ready(process, f"http://127.0.0.1:{port}")
        yield Service(process.url, data_dir, process)
    finally:
        process.stop()
