"""Helpers to run worker / scheduler subprocesses that the tests started (and only those)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.jobs.chaos_app:hw"


def env(jobs_url: str, log: Path, **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("HEADWAY_")}
    out.update(HEADWAY_JOBS_URL=jobs_url, CHAOS_LOG=str(log), PYTHONPATH=str(ROOT), **extra)
    return out


def start_worker(jobs_url: str, log: Path, *args: str, **extra: str) -> subprocess.Popen[bytes]:
    code = "import sys; from headway.cli.jobs import run_worker_cli; run_worker_cli(sys.argv[1:])"
    return subprocess.Popen(
        [sys.executable, "-c", code, APP, *args],
        env=env(jobs_url, log, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_scheduler(jobs_url: str, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    code = "import sys, typer; from headway.cli.jobs import scheduler; typer.run(scheduler)"
    return subprocess.Popen(
        [sys.executable, "-c", code, APP],
        env=env(jobs_url, log, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait: float = 10) -> int:
    """Signal one process we started and wait for it (SIGKILL if it does not stop)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)
