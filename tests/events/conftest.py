"""Events fixtures: backends on every URL kind, started hubs, and a real uvicorn server."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette

from headway import Headway
from headway.events import EventBackend, Events, EventsSettings
from headway.registry import resolve

ALL = ("memory", "redis", "cluster", "postgres")


@pytest.fixture
def events_url(backend: str, backend_url: str, redis_prefix: str) -> str:
    """The parametrized backend's URL; Redis keys under the test's own prefix, memory on
    a bus of the test's own."""
    if backend in ("redis", "cluster"):
        return f"{backend_url}?prefix={redis_prefix}"
    if backend == "memory":
        return f"memory://{uuid.uuid4().hex[:8]}"
    return backend_url


MakeBackend = Callable[..., Awaitable[EventBackend]]


@pytest.fixture
async def make_backend(events_url: str, tmp_path: Path) -> AsyncIterator[MakeBackend]:
    """``await make_backend(history_size=3)``: an opened backend on its own hub's pools."""
    opened: list[tuple[Headway, EventBackend]] = []

    async def make(**settings: Any) -> EventBackend:
        hw = Headway(data_dir=tmp_path / ".headway")
        cls = resolve("events", events_url)
        backend: EventBackend = cls(events_url, hw.connections, EventsSettings(**settings))
        await backend.open()
        opened.append((hw, backend))
        return backend

    yield make
    for hw, backend in reversed(opened):
        await backend.close()
        await hw.connections.close()


MakeHub = Callable[..., Awaitable[Headway]]


@pytest.fixture
async def make_hub(events_url: str, tmp_path: Path) -> AsyncIterator[MakeHub]:
    """``await make_hub(**events_settings)``: a started hub with ``hw.events`` (jobs in
    memory), stopped afterwards."""
    hubs: list[Headway] = []

    async def make(setup: Callable[[Headway], None] | None = None, **settings: Any) -> Headway:
        hw = Headway(data_dir=tmp_path / ".headway", jobs_url="memory://")
        hw.add(Events(hw, events_url, settings=EventsSettings(**settings)))
        if setup is not None:
            setup(hw)
        await hw.start()
        hubs.append(hw)
        return hw

    yield make
    for hw in reversed(hubs):
        await hw.stop()


async def eventually(
    predicate: Callable[[], Any], within: float = 10.0, message: Callable[[], Any] | None = None
) -> None:
    """Poll ``predicate`` until it is true; AssertionError after ``within`` seconds."""
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    detail = "" if message is None else f": {message()}"
    raise AssertionError(f"condition still false after {within} s{detail}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """uvicorn serving ``app`` on 127.0.0.1 inside the test's event loop."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
            ws_ping_interval=None,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> Server:
        self.task = asyncio.create_task(self.server.serve())
        await eventually(lambda: self.server.started)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        async with asyncio.timeout(15):
            await self.task


@pytest.fixture
def channel() -> str:
    return f"test.{uuid.uuid4().hex[:10]}"
