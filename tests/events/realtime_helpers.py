"""A served hub for realtime tests, and small WebSocket / SSE clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from tests.events.conftest import Server
from websockets.asyncio.client import ClientConnection, connect

from headway import Headway
from headway.events import Events, EventsSettings


def allow_all(conn: HTTPConnection, channel: str) -> bool:
    conn.state.headway_tenant = conn.query_params.get("tenant", "acme")
    return not channel.startswith("secret.")


@asynccontextmanager
async def served(
    url: str,
    tmp_path: Path,
    authorizer: Callable[[HTTPConnection, str], Any] | None = allow_all,
    **settings: Any,
) -> AsyncIterator[tuple[Headway, Server]]:
    hw = Headway(data_dir=tmp_path / ".headway", jobs_url="memory://")
    events = hw.add(Events(hw, url, settings=EventsSettings(**settings)))
    if authorizer is not None:
        events.authorize(authorizer)
    app = Starlette()
    hw.install(app)
    async with Server(app) as server:
        yield hw, server


@asynccontextmanager
async def ws_client(server: Server, query: str, **options: Any) -> AsyncIterator[ClientConnection]:
    async with connect(f"ws://{server.base}/realtime/ws?{query}", **options) as ws:
        yield ws


async def next_frame(ws: ClientConnection, skip_pings: bool = True) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            frame: dict[str, Any] = orjson.loads(await ws.recv())
            if not (skip_pings and frame["type"] == "ping"):
                return frame


async def until_ready(ws: ClientConnection) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The frames before ``ready`` (a replay) and the ``ready`` frame."""
    before = []
    while (frame := await next_frame(ws))["type"] != "ready":
        before.append(frame)
    return before, frame


class SSE:
    """Reads a text/event-stream response into ``{id, event, data}`` dicts."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self) -> dict[str, Any]:
        event: dict[str, Any] = {}
        async with asyncio.timeout(10):
            async for line in self.lines:
                if line == "":
                    if "data" in event:
                        event["data"] = orjson.loads(event["data"])
                        return event
                    continue
                if line.startswith(":"):
                    self.comments.append(line)
                    if line == ": ping":
                        return {"event": "ping"}
                    continue
                field, _, value = line.partition(": ")
                event[field] = value
        raise EOFError("stream ended")


@asynccontextmanager
async def sse_client(
    server: Server, query: str, headers: dict[str, str] | None = None
) -> AsyncIterator[SSE]:
    async with (
        httpx.AsyncClient(base_url=f"http://{server.base}", timeout=10) as client,
        client.stream("GET", f"/realtime/sse?{query}", headers=headers or {}) as response,
    ):
        yield SSE(response)
