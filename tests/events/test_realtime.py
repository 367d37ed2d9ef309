"""WebSocket and SSE endpoints on a real server: fan-out, authorization, recovery,
heartbeats, slow consumers, connection metrics."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from tests.conftest import backend_params
from tests.events.conftest import ALL, eventually
from tests.events.realtime_helpers import next_frame, served, sse_client, until_ready, ws_client
from websockets.exceptions import ConnectionClosed

from headway.events import Event


class Announced(Event):
    room: str
    text: str

    def channels(self) -> list[str]:
        return [f"room.{self.room}"]


@pytest.fixture
def memory_url() -> str:
    return f"memory://{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("backend", backend_params(*ALL))
async def test_broadcast_reaches_every_subscriber_across_processes(
    events_url: str, tmp_path: Path
) -> None:
    # two hubs = two processes: clients of one get what the other dispatches
    async with (
        served(events_url, tmp_path / "a") as (hw_a, server_a),
        served(events_url, tmp_path / "b") as (hw_b, server_b),
        ws_client(server_a, "channels=room.1") as one,
        ws_client(server_b, "channels=room.1,room.2") as two,
        ws_client(server_b, "channels=room.2") as other,
        sse_client(server_a, "channels=room.1") as sse,
    ):
        for ws in (one, two, other):
            await until_ready(ws)
        assert (await sse.next())["event"] == "ready"
        await hw_b.events.dispatch(Announced(room="1", text="hello"))
        await hw_a.events.dispatch(Announced(room="2", text="other room"))
        for ws in (one, two):
            frame = await next_frame(ws)
            assert frame["type"] == "event" and frame["channel"] == "room.1"
            assert frame["event"] == "Announced"
            assert frame["data"] == {"room": "1", "text": "hello"}
        assert (await next_frame(two))["data"]["text"] == "other room"
        assert (await next_frame(other))["data"]["text"] == "other room"  # never room.1
        got = await sse.next()
        assert got["event"] == "Announced" and got["data"]["data"]["text"] == "hello"
        assert got["id"] == f"room.1={got['data']['offset']}"


async def test_channels_need_the_authorizer(memory_url: str, tmp_path: Path) -> None:
    async with served(memory_url, tmp_path) as (_, server):
        async with ws_client(server, "channels=room.1,secret.9") as ws:
            frame = await next_frame(ws)
            assert frame == {
                "type": "error",
                "code": "forbidden",
                "message": "not allowed to join channel 'secret.9'",
            }
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        async with httpx.AsyncClient(base_url=f"http://{server.base}") as client:
            denied = await client.get("/realtime/sse?channels=secret.9")
            assert denied.status_code == 403
            assert denied.json()["error"]["code"] == "forbidden"
            for query in ("", "channels=", "channels=a%20b", "channels=a&last_event_id=x"):
                bad = await client.get(f"/realtime/sse?{query}")
                assert bad.status_code == 400, query
                assert bad.json()["error"]["code"] == "bad_request"


async def test_without_an_authorizer_every_channel_is_refused(
    memory_url: str, tmp_path: Path
) -> None:
    async with (
        served(memory_url, tmp_path, authorizer=None) as (_, server),
        httpx.AsyncClient(base_url=f"http://{server.base}") as client,
    ):
        assert (await client.get("/realtime/sse?channels=room.1")).status_code == 403


async def test_ws_reconnect_gets_what_it_missed_or_a_reset(memory_url: str, tmp_path: Path) -> None:
    async with served(memory_url, tmp_path, history_size=3) as (hw, server):
        async with ws_client(server, "channels=room.1,room.2") as ws:
            _, ready = await until_ready(ws)
            await hw.events.dispatch(Announced(room="1", text="a"))
            await hw.events.dispatch(Announced(room="2", text="b"))
            await next_frame(ws)
            last = await next_frame(ws)
        cursor = f"room.1={(await hw.events.backend.replay('room.1', None)).head}"
        cursor += f",room.2={last['offset']}"
        for text in ("c", "d"):
            await hw.events.dispatch(Announced(room="1", text=text))
        for text in ("e", "f", "g", "h"):
            await hw.events.dispatch(Announced(room="2", text=text))  # 4 > history of 3
        async with ws_client(server, f"channels=room.1,room.2&since={cursor}") as ws:
            replay, ready = await until_ready(ws)
            assert [(f["type"], f.get("data", {}).get("text")) for f in replay] == [
                ("event", "c"),
                ("event", "d"),
                ("reset", None),
            ]
            assert replay[2]["channel"] == "room.2" and replay[2]["reason"] == "history_lost"
            head2 = (await hw.events.backend.replay("room.2", None)).head
            assert ready["cursor"] == f"room.1={replay[1]['offset']},room.2={head2}"
            await hw.events.dispatch(Announced(room="2", text="live"))
            assert (await next_frame(ws))["data"]["text"] == "live"


async def test_sse_resumes_from_last_event_id(memory_url: str, tmp_path: Path) -> None:
    async with served(memory_url, tmp_path) as (hw, server):
        async with sse_client(server, "channels=room.1") as sse:
            assert (await sse.next())["event"] == "ready"
            await hw.events.dispatch(Announced(room="1", text="one"))
            seen = await sse.next()
        await hw.events.dispatch(Announced(room="1", text="two"))
        await hw.events.dispatch(Announced(room="1", text="three"))
        headers = {"Last-Event-ID": seen["id"]}
        async with sse_client(server, "channels=room.1", headers) as sse:
            texts = [(await sse.next())["data"]["data"]["text"] for _ in range(2)]
            assert texts == ["two", "three"]
            assert (await sse.next())["event"] == "ready"
        async with sse_client(server, "channels=room.1&last_event_id=room.1=abc-1") as sse:
            reset = await sse.next()
            assert reset["event"] == "reset" and reset["data"]["reason"] == "history_lost"


async def test_heartbeats_on_idle_connections(memory_url: str, tmp_path: Path) -> None:
    async with served(memory_url, tmp_path, heartbeat=0.05) as (_, server):
        async with ws_client(server, "channels=room.1") as ws:
            await until_ready(ws)
            assert (await next_frame(ws, skip_pings=False)) == {"type": "ping"}
        async with sse_client(server, "channels=room.1") as sse:
            assert (await sse.next())["event"] == "ready"
            assert (await sse.next()) == {"event": "ping"}


async def test_a_client_that_does_not_read_is_dropped_alone(
    memory_url: str, tmp_path: Path
) -> None:
    count, size = 300, 16_000
    async with served(memory_url, tmp_path, client_buffer=8) as (hw, server):
        tiny = socket.socket()  # a small receive buffer: the kernel absorbs little
        tiny.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        tiny.connect(("127.0.0.1", server.port))
        tiny.setblocking(False)
        # no compression (the padding would shrink to nothing), reading paused at 1 frame
        slow_options = {"max_queue": 1, "max_size": None, "sock": tiny, "compression": None}
        async with (
            ws_client(server, "channels=room.1", **slow_options) as slow,
            ws_client(server, "channels=room.1", max_size=None) as fast,
        ):
            await until_ready(slow)
            await until_ready(fast)
            received: list[int] = []

            async def read_fast() -> None:
                while len(received) < count:
                    received.append(orjson.loads(await fast.recv())["data"]["i"])

            reader = asyncio.create_task(read_fast())
            for i in range(count):
                await hw.events.publish("room.1", "Blob", {"i": i, "pad": "x" * size})
                await asyncio.sleep(0)
            await asyncio.wait_for(reader, 30)
            assert received == list(range(count))  # in order, nothing lost
            await eventually(
                lambda: len(hw.events.fanout.clients) == 1,
                message=lambda: [(c.dropped, len(c.queue)) for c in hw.events.fanout.clients],
            )
            got = 0
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    while True:
                        await slow.recv()
                        got += 1
            assert got < count
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
        async with httpx.AsyncClient(base_url=f"http://{server.base}") as client:
            metrics = (await client.get("/metrics")).text
        assert (
            'headway_events_dropped_clients_total{reason="slow_consumer",transport="ws"} 1.0'
            in (metrics)
        )


async def test_connections_are_counted_per_tenant(memory_url: str, tmp_path: Path) -> None:
    async with served(memory_url, tmp_path) as (hw, server):
        async with (
            ws_client(server, "channels=room.1&tenant=acme") as a,
            ws_client(server, "channels=room.1&tenant=acme") as b,
            ws_client(server, "channels=room.2&tenant=globex") as c,
        ):
            for ws in (a, b, c):
                await until_ready(ws)
            assert hw.events.connection_counts() == {"acme": 2, "globex": 1}
            async with httpx.AsyncClient(base_url=f"http://{server.base}") as client:
                metrics = (await client.get("/metrics")).text
                ready = (await client.get("/health/ready")).json()
            assert 'headway_events_connections{tenant="acme",transport="ws"} 2.0' in metrics
            assert 'headway_events_connections{tenant="globex",transport="ws"} 1.0' in metrics
            assert ready["status"] == "ok"
        await eventually(lambda: hw.events.connection_counts() == {})


async def test_clients_catch_up_after_the_feed_was_down(memory_url: str, tmp_path: Path) -> None:
    async with (
        served(memory_url, tmp_path) as (hw, server),
        ws_client(server, "channels=room.1") as ws,
    ):
        await until_ready(ws)
        await hw.events.publish("room.1", "E", {"n": 1})
        assert (await next_frame(ws))["data"] == {"n": 1}
        backend = hw.events.backend
        # the feed misses n=2 and n=3 (a lost Redis / PostgreSQL connection) ...
        backend._listeners.remove(hw.events.fanout.deliver)  # type: ignore[attr-defined]
        await hw.events.publish("room.1", "E", {"n": 2})
        await hw.events.publish("room.1", "E", {"n": 3})
        backend._listeners.append(hw.events.fanout.deliver)  # type: ignore[attr-defined]
        hw.events.fanout.resync()  # ... and is live again: what the backend calls
        assert [(await next_frame(ws))["data"]["n"] for _ in range(2)] == [2, 3]
        # one message missed, the next delivered: the gap is filled from history
        backend._listeners.remove(hw.events.fanout.deliver)  # type: ignore[attr-defined]
        await hw.events.publish("room.1", "E", {"n": 4})
        backend._listeners.append(hw.events.fanout.deliver)  # type: ignore[attr-defined]
        await hw.events.publish("room.1", "E", {"n": 5})
        assert [(await next_frame(ws))["data"]["n"] for _ in range(2)] == [4, 5]


async def test_an_sse_client_that_does_not_read_is_dropped(memory_url: str, tmp_path: Path) -> None:
    async with served(memory_url, tmp_path, client_buffer=8) as (hw, server):
        sock = socket.socket()  # a raw client that sends its request and never reads
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET /realtime/sse?channels=room.1 HTTP/1.1\r\nHost: t\r\n\r\n")
        try:
            await eventually(lambda: len(hw.events.fanout.clients) == 1)
            async with sse_client(server, "channels=room.1") as fast:
                assert (await fast.next())["event"] == "ready"
                got: list[int] = []

                async def read_fast() -> None:
                    while len(got) < 300:
                        got.append((await fast.next())["data"]["data"]["i"])

                reader = asyncio.create_task(read_fast())
                for i in range(300):
                    await hw.events.publish("room.1", "Blob", {"i": i, "pad": "x" * 16_000})
                    await asyncio.sleep(0)
                await asyncio.wait_for(reader, 30)
                assert got == list(range(300))
                await eventually(lambda: len(hw.events.fanout.clients) == 1)  # the fast one
        finally:
            sock.close()
        async with httpx.AsyncClient(base_url=f"http://{server.base}") as client:
            metrics = (await client.get("/metrics")).text
        assert (
            'headway_events_dropped_clients_total{reason="slow_consumer",transport="sse"} 1.0'
            in (metrics)
        )
