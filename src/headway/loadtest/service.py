"""Start ``headway`` processes (``serve``, ``worker``) on a free 127.0.0.1 port and stop
them by PID: what the load-test suite, the scale tests and ``bench/http.py`` run against.

Each process runs in a session of its own, so that stopping it (SIGTERM, then SIGKILL
after a grace period) also reaches the web processes a ``serve --workers N`` supervisor
started, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["HeadwayProcess", "free_port", "headway_command", "start_process", "wait_ready"]

_ENTRY = "from headway.cli import main; main()"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def headway_command(*args: str) -> list[str]:
    """``headway ARGS...`` run by this interpreter (no dependency on the console script)."""
    return [sys.executable, "-c", _ENTRY, *args]


@dataclass
class HeadwayProcess:
    """One started process, its log file and (for ``serve``) its base URL."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    name: str = "headway"
    _log: object = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM to the process group, SIGKILL after ``grace`` seconds; the exit code."""
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        _signal_group(self.proc.pid, signal.SIGKILL)  # any web process left behind
        close = getattr(self._log, "close", None)
        if callable(close):
            close()
        return self.proc.returncode


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # the session started for this process only: its own group


def start_process(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    name: str = "headway",
) -> HeadwayProcess:
    """Start ``headway ARGS`` in a new session with exactly ``env`` (plus PATH/HOME)."""
    full_env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    full_env.update(env)
    log = log_path.open("wb")
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        headway_command(*args),
        cwd=cwd,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return HeadwayProcess(proc, log_path, name=name, _log=log)


def wait_ready(
    process: HeadwayProcess, url: str, *, path: str = "/health", timeout: float = 60
) -> None:
    """Poll ``url + path`` until it answers 200; raise RuntimeError (with the log) if the
    process exits or ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if not process.running():
                raise RuntimeError(f"{process.name} exited early:\n{process.log_tail()}")
            try:
                if client.get(url + path).status_code == 200:
                    process.url = url
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    process.stop()
    raise RuntimeError(f"{process.name} not ready after {timeout:.0f} s:\n{process.log_tail()}")
