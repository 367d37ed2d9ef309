"""``headway serve`` with several processes that recycle without dropping requests.

uvicorn's own ``limit_max_requests`` makes a process stop accepting as soon as it reaches
its limit, and the supervisor replaces it only after it has exited: processes that
recycle together (same traffic, same limit) leave no one accepting, and a connection
accepted in the instant before the stop is closed unanswered. Here a process that
reaches its limit only *asks* to be replaced and keeps serving; the supervisor starts
the replacement, waits until it is ready, then stops the old process (SIGTERM: it
stops accepting, answers what it has accepted, finishes its requests in flight).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import random
import socket
import time
from typing import Any

from uvicorn import Config, Server
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("uvicorn.error")

# Seconds past the keep-alive timeout that a stopping process keeps its connections.
ACCEPTED_GRACE = 0.5
# Seconds a replacement has to start serving (imports and lifespan startup, on a busy
# machine); uvicorn's own 5 s health-check timeout is too short for that.
REPLACEMENT_READY = 120.0


def limit_for(max_requests: int, jitter: int) -> int:
    """One process's request limit: ``max_requests`` plus a random 0..``jitter``."""
    return max_requests + random.randint(0, jitter)  # noqa: S311 - spreading, not secrets


class RecyclingServer(Server):
    """A uvicorn server that sets ``retire`` after its request limit instead of exiting,
    and that closes its keep-alive connections cleanly when it stops."""

    def __init__(self, config: Config, retire: Any, limit: int | None) -> None:
        super().__init__(config)
        self.retire = retire
        self.limit = limit
        self.draining = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.config.loaded_app = _close_when_draining(self.config.loaded_app, self)
        await super().startup(sockets)

    async def on_tick(self, counter: int) -> bool:
        if await super().on_tick(counter):
            return True
        limit = self.limit
        if limit is not None and self.server_state.total_requests >= limit:
            log.info("served %d requests: asking the supervisor for a replacement", limit)
            self.retire.set()
            self.limit = None  # ask once, then serve until the supervisor stops us
        return False

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, then let open connections end instead of cutting them.

        uvicorn closes an idle keep-alive connection at once, which races with a client
        sending its next request on it. Here every response from now on says
        ``Connection: close`` (the client opens its next connection elsewhere); a
        connection that stays idle ends at the keep-alive timeout; then uvicorn's own
        shutdown runs (requests in flight finish within ``--graceful-timeout``)."""
        self.draining = True
        for server in self.servers:
            server.close()
        deadline = time.monotonic() + self.config.timeout_keep_alive + ACCEPTED_GRACE
        while self.server_state.connections and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)


def _close_when_draining(app: Any, server: RecyclingServer) -> Any:
    """ASGI wrapper: while ``server.draining``, responses carry ``Connection: close``."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_closing(message: Any) -> None:
            if message["type"] == "http.response.start" and server.draining:
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await app(scope, receive, send_closing)

    return wrapped


class RecyclingProcess(Process):
    """A supervised web process with its own request limit and a "replace me" event."""

    def __init__(self, config: Config, sockets: list[socket.socket], limit: int | None) -> None:
        self.retire = multiprocessing.get_context("spawn").Event()
        self.limit = limit
        super().__init__(config, sockets)

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = RecyclingServer(self.config, self.retire, self.limit)
        return self._server


class RecyclingSupervisor(Multiprocess):
    """uvicorn's supervisor, plus the replacement of processes that reached their limit."""

    def __init__(
        self, config: Config, sockets: list[socket.socket], max_requests: int | None, jitter: int
    ) -> None:
        super().__init__(config, sockets)
        self.max_requests = max_requests
        self.jitter = jitter

    def new_process(self) -> RecyclingProcess:
        limit = None if self.max_requests is None else limit_for(self.max_requests, self.jitter)
        return RecyclingProcess(self.config, self.sockets, limit)

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            process = self.new_process()
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        self.replace_retiring()
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.process.is_alive():
                continue
            # uvicorn's loop would start a plain Process: start ours instead
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("child process [%s] failed to start; stopping", process.pid)
                self.should_exit.set()
                return
            log.info("child process [%s] died; starting another", process.pid)
            self.processes[idx] = self.new_process()
            self.processes[idx].start()
        super().keep_subprocess_alive()  # hung processes (no answer to its ping)

    def restart_all(self) -> None:
        """SIGHUP: replace every process, one at a time, each new one serving first."""
        for process in self.processes:
            if isinstance(process, RecyclingProcess):
                process.retire.set()
        self.replace_retiring()

    def handle_ttin(self) -> None:
        log.info("Received SIGTTIN, adding a process.")
        self.processes_num += 1
        process = self.new_process()
        process.start()
        self.processes.append(process)

    def wait_ready(self, new: RecyclingProcess) -> bool:
        """Wait for ``new`` to serve, still answering signals (SIGTERM stops the wait)."""
        deadline = time.monotonic() + REPLACEMENT_READY
        while time.monotonic() < deadline:
            self.handle_signals()
            if self.should_exit.is_set() or not new.process.is_alive():
                return False
            if new.is_ready(timeout=1):
                return True
            time.sleep(0.1)
        return False

    def replace_retiring(self) -> None:
        for idx, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            if not isinstance(old, RecyclingProcess) or not old.retire.is_set():
                continue
            new = self.new_process()
            new.start()
            if not self.wait_ready(new):
                new.kill()
                new.join()
                log.error("replacement of [%s] was not ready in time; keeping it", old.pid)
                old.retire.clear()
                continue
            self.processes[idx] = new
            old.terminate()
            old.join()
            log.info("process [%s] replaced by [%s]", old.pid, new.pid)


__all__ = ["RecyclingServer", "RecyclingSupervisor", "limit_for"]
