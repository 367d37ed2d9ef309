"""WebSocket and Server-Sent Events endpoints (``<path>/ws``, ``<path>/sse``).

Both take ``?channels=tenant.1,agent.7`` and a position to resume from: SSE's
``Last-Event-ID`` header (or ``?last_event_id=``), the WebSocket's ``?since=``; both are
the cursor ``channel=offset,...`` the server last sent. Every channel is checked by the
app's authorizer first (``@hw.events.authorize``); one refusal refuses the connection.

WebSocket frames (JSON text), server to client::

    {"type": "event", "channel": "tenant.1", "offset": "9f3a0c11-42", "event": "PostPublished",
     "data": {...}}
    {"type": "ready", "channels": [...], "cursor": "tenant.1=9f3a0c11-42"}
    {"type": "reset", "channel": "tenant.1", "reason": "history_lost", "offset": "..."}
    {"type": "ping"}
    {"type": "error", "code": "forbidden", "message": "..."}  (then close 4403 / 4400)

SSE: the same JSON as ``data:``, the event name (or ``ready`` / ``reset``) as ``event:``,
the connection's cursor as ``id:``, and ``: ping`` comments as heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from headway.events.base import CHANNEL, Message, Offset, Replay
from headway.events.fanout import SLOW_CONSUMER, Client, parse_cursor
from headway.web.errors import error_body
from headway.web.responses import ORJSONResponse

if TYPE_CHECKING:
    from headway.events.core import Events

log = logging.getLogger("headway.events")
CLOSE_BAD_REQUEST, CLOSE_FORBIDDEN, CLOSE_SLOW = 4400, 4403, 4008
PING = '{"type":"ping"}'


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@lru_cache(maxsize=1024)
def event_frame(msg: Message) -> str:
    """A message's frame, built once for every client that gets it."""
    return (
        f'{{"type":"event","channel":"{msg.channel}","offset":"{msg.offset}",'
        f'"event":"{msg.event}","data":{msg.data.decode()}}}'
    )


def reset_frame(channel: str, head: Offset | None) -> str:
    body = {"type": "reset", "channel": channel, "reason": "history_lost"}
    return orjson.dumps({**body, "offset": None if head is None else str(head)}).decode()


async def open_client(
    events: Events, conn: HTTPConnection, since_text: str, transport: str
) -> tuple[Client, dict[str, Offset]]:
    """Parse and authorize a connection's channels (Refused on any problem)."""
    raw = conn.query_params.get("channels", "")
    channels = tuple(dict.fromkeys(c.strip() for c in raw.split(",") if c.strip()))
    if not channels:
        raise Refused(400, "bad_request", "give ?channels=name[,name...]")
    if len(channels) > events.settings.max_channels:
        limit = events.settings.max_channels
        raise Refused(400, "bad_request", f"at most {limit} channels per connection")
    for channel in channels:
        if not CHANNEL.fullmatch(channel):
            raise Refused(400, "bad_request", f"invalid channel {channel[:100]!r}")
    try:
        since = parse_cursor(since_text, channels)
    except ValueError as exc:
        raise Refused(400, "bad_request", str(exc)) from None
    for channel in channels:
        if not await events.is_allowed(conn, channel):
            raise Refused(403, "forbidden", f"not allowed to join channel {channel!r}")
    tenant = events.tenant_label(conn)
    return Client(channels, events.settings.client_buffer, tenant, transport), since


class Stream:
    """Sends one client its replay, then its live messages, in offset order."""

    def __init__(
        self,
        events: Events,
        client: Client,
        write: Callable[[Message | None, str, str], Awaitable[None]],
    ) -> None:
        self.events, self.client, self.write = events, client, write

    async def start(self, since: dict[str, Offset]) -> None:
        for channel in self.client.channels:
            await self._replay(channel, since.get(channel), initial=True)

    async def run(self) -> None:
        client = self.client
        while not client.gone.is_set():
            if not client.queue and not client.catch_up and not client.ping_due:
                client.wake.clear()
                await client.wake.wait()
            if client.ping_due:
                client.ping_due = False
                await self.write(None, PING, "ping")
            while client.catch_up:
                channel = client.catch_up.pop()
                if client.last.get(channel) is not None:
                    await self._replay(channel, client.last[channel])
            while client.queue and not client.gone.is_set():
                await self._send(client.queue.popleft())

    async def _send(self, msg: Message) -> None:
        verdict = self.client.accept(msg)
        if verdict == "gap":
            await self._replay(msg.channel, self.client.last[msg.channel])
            verdict = self.client.accept(msg)
        if verdict == "send":
            self.client.last[msg.channel] = msg.offset  # first: SSE's id carries it
            await self.write(msg, event_frame(msg), msg.event)

    async def _replay(self, channel: str, after: Offset | None, initial: bool = False) -> None:
        try:
            replay = await self.events.backend.replay(channel, after)
        except Exception as exc:  # history unreadable: the client reloads instead
            log.warning(
                "could not read the history of %s (%s): client told to reload", channel, exc
            )
            replay = Replay(None, lost=after is not None)
        if after is None:
            self.client.last[channel] = replay.head
            return
        if replay.lost:
            self.events.count_reset()
            self.client.last[channel] = replay.head
            await self.write(None, reset_frame(channel, replay.head), "reset")
            return
        for msg in replay.messages:
            if self.client.accept(msg) == "send":
                self.client.last[channel] = msg.offset
                await self.write(msg, event_frame(msg), msg.event)
        if not replay.messages and initial:
            self.client.last[channel] = replay.head


async def _until_gone(client: Client, *aws: Awaitable[None]) -> None:
    """Run the connection's tasks until the client is gone (any task ending ends it)."""

    async def guard(aw: Awaitable[None]) -> None:
        try:
            await aw
        except Exception as exc:
            if not isinstance(exc, WebSocketDisconnect | OSError | RuntimeError):
                log.exception("realtime connection failed")
        finally:
            client.drop(client.dropped or "disconnected")

    tasks = [asyncio.ensure_future(guard(aw)) for aw in aws]
    try:
        await client.gone.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def websocket_endpoint(events: Events, ws: WebSocket) -> None:
    await ws.accept()
    try:
        client, since = await open_client(events, ws, ws.query_params.get("since", ""), "ws")
    except Refused as exc:
        await ws.send_bytes(orjson.dumps({"type": "error", "code": exc.code,
                                          "message": exc.message}))  # fmt: skip
        await ws.close(CLOSE_FORBIDDEN if exc.status == 403 else CLOSE_BAD_REQUEST)
        return

    async def write(_msg: Message | None, frame: str, _kind: str) -> None:
        await ws.send_text(frame)

    async def sender() -> None:
        await stream.start(since)
        ready = {"type": "ready", "channels": list(client.channels), "cursor": client.cursor()}
        await ws.send_text(orjson.dumps(ready).decode())
        await stream.run()

    async def receiver() -> None:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass

    stream = Stream(events, client, write)
    events.fanout.add(client)
    try:
        await _until_gone(client, sender(), receiver())
    finally:
        events.fanout.remove(client)
        if client.dropped == SLOW_CONSUMER:
            events.count_drop(client)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await ws.close(CLOSE_SLOW, "slow consumer")


class SSEEndpoint:
    """A raw ASGI app: the response streams until the client leaves or is dropped."""

    def __init__(self, events: Events) -> None:
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        since = request.headers.get("last-event-id") or request.query_params.get(
            "last_event_id", ""
        )
        try:
            client, offsets = await open_client(self.events, request, since, "sse")
        except Refused as exc:
            body = error_body(exc.code, exc.message)
            await ORJSONResponse(body, status_code=exc.status)(scope, receive, send)
            return
        await self._stream(client, offsets, receive, send)

    async def _stream(
        self, client: Client, since: dict[str, Offset], receive: Receive, send: Send
    ) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"),
                   (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]  # fmt: skip
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = {"type": "http.response.body", "more_body": True}
        await send({**body, "body": b"retry: 2000\n\n"})

        async def write(_msg: Message | None, frame: str, kind: str) -> None:
            if kind == "ping":
                chunk = b": ping\n\n"
            else:
                chunk = f"id: {client.cursor()}\nevent: {kind}\ndata: {frame}\n\n".encode()
            await send({**body, "body": chunk})

        async def sender() -> None:
            await stream.start(since)
            ready = {"type": "ready", "channels": list(client.channels), "cursor": client.cursor()}
            await write(None, orjson.dumps(ready).decode(), "ready")
            await stream.run()

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        stream = Stream(self.events, client, write)
        self.events.fanout.add(client)
        try:
            await _until_gone(client, sender(), watch_disconnect())
        finally:
            self.events.fanout.remove(client)
            if client.dropped == SLOW_CONSUMER:
                self.events.count_drop(client)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})


def routes(events: Events) -> list[Any]:
    from starlette.routing import Route, WebSocketRoute

    async def ws(websocket: WebSocket) -> None:
        await websocket_endpoint(events, websocket)

    path = events.settings.path.rstrip("/")
    return [WebSocketRoute(f"{path}/ws", ws), Route(f"{path}/sse", SSEEndpoint(events))]
