"""Every fan-out backend (memory, Redis, PostgreSQL) behaves the same (``EventBackend``)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from tests.conftest import backend_params
from tests.events.conftest import ALL, MakeBackend, eventually

from headway.events import EventBackend, Message, Offset

pytestmark = pytest.mark.parametrize("backend", backend_params(*ALL))


async def listening(backend: EventBackend) -> tuple[list[Message], asyncio.Task[None]]:
    got: list[Message] = []
    ready = asyncio.Event()
    task = asyncio.create_task(backend.listen(got.append, ready.set))
    async with asyncio.timeout(10):
        await ready.wait()
    return got, task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_offsets_increase_per_channel(make_backend: MakeBackend, channel: str) -> None:
    be = await make_backend()
    a1 = await be.publish(channel, "E", b'{"n":1}')
    a2 = await be.publish(channel, "E", b'{"n":2}')
    b1 = await be.publish(channel + "b", "E", b'{"n":3}')
    assert (a1.offset.seq, a2.offset.seq, b1.offset.seq) == (1, 2, 1)
    assert a1.offset.epoch == a2.offset.epoch
    assert Offset.parse(str(a2.offset)) == a2.offset
    assert a2.data == b'{"n":2}' and a2.event == "E" and a2.channel == channel


async def test_listeners_of_every_instance_get_every_message(
    make_backend: MakeBackend, channel: str
) -> None:
    publisher, other = await make_backend(), await make_backend()
    got, task = await listening(other)
    mine, task2 = await listening(publisher)
    try:
        sent = [await publisher.publish(channel, "E", orjson.dumps({"i": i})) for i in range(5)]
        await eventually(lambda: len(got) == 5 and len(mine) == 5)
        assert [(m.channel, m.offset, m.event, m.data) for m in got] == [
            (m.channel, m.offset, m.event, m.data) for m in sent
        ]
    finally:
        await stop(task)
        await stop(task2)


async def test_replay_after_an_offset(make_backend: MakeBackend, channel: str) -> None:
    be = await make_backend()
    sent = [await be.publish(channel, "E", orjson.dumps(i)) for i in range(4)]
    head = (await be.replay(channel, None)).head
    assert head == sent[-1].offset
    replay = await be.replay(channel, sent[1].offset)
    assert not replay.lost
    assert [m.data for m in replay.messages] == [b"2", b"3"]
    assert [m.offset for m in replay.messages] == [sent[2].offset, sent[3].offset]
    up_to_date = await be.replay(channel, sent[-1].offset)
    assert not up_to_date.lost and up_to_date.messages == ()


async def test_history_is_bounded_by_count(make_backend: MakeBackend, channel: str) -> None:
    be = await make_backend(history_size=3)
    sent = [await be.publish(channel, "E", orjson.dumps(i)) for i in range(6)]
    kept = await be.replay(channel, sent[2].offset)  # seq 3: 4, 5, 6 are kept
    assert not kept.lost and [m.data for m in kept.messages] == [b"3", b"4", b"5"]
    lost = await be.replay(channel, sent[1].offset)  # seq 3 was trimmed
    assert lost.lost and lost.messages == () and lost.head == sent[-1].offset


async def test_history_is_bounded_by_age(make_backend: MakeBackend, channel: str) -> None:
    be = await make_backend(history_ttl=0.3)
    first = await be.publish(channel, "E", b"1")
    await be.publish(channel, "E", b"2")
    await asyncio.sleep(0.6)
    last = await be.publish(channel, "E", b"3")
    replay = await be.replay(channel, first.offset)
    assert replay.lost and replay.head == last.offset
    assert [m.data for m in (await be.replay(channel, Offset(last.offset.epoch, 2))).messages] == [
        b"3"
    ]


async def test_unknown_positions_are_reported_lost(make_backend: MakeBackend, channel: str) -> None:
    be = await make_backend()
    nothing = await be.replay(channel, None)
    assert nothing.head is None and not nothing.lost
    assert (await be.replay(channel, Offset("abcdef01", 3))).lost  # a channel never seen
    msg = await be.publish(channel, "E", b"1")
    other_epoch = "0" if msg.offset.epoch != "0" else "1"
    assert (await be.replay(channel, Offset(other_epoch, 1))).lost  # channel started over
    assert (await be.replay(channel, Offset(msg.offset.epoch, 9))).lost  # beyond the head


async def test_large_messages_arrive_whole(make_backend: MakeBackend, channel: str) -> None:
    be = await make_backend()
    got, task = await listening(be)
    payload = orjson.dumps({"text": "é" * 20_000})  # > PostgreSQL's NOTIFY limit
    try:
        sent = await be.publish(channel, "Big", payload)
        await eventually(lambda: len(got) == 1)
        assert got[0].data == payload and got[0].offset == sent.offset
        replay = await be.replay(channel, Offset(sent.offset.epoch, 0))
        assert [m.data for m in replay.messages] == [payload]
    finally:
        await stop(task)


async def test_concurrent_publishers_keep_one_order(
    make_backend: MakeBackend, channel: str
) -> None:
    a, b = await make_backend(), await make_backend()
    got, task = await listening(a)
    try:
        sent = await asyncio.gather(
            *(x.publish(channel, "E", orjson.dumps(i)) for i, x in enumerate([a, b] * 10))
        )
        assert sorted(m.offset.seq for m in sent) == list(range(1, 21))
        await eventually(lambda: len(got) == 20)
        assert [m.offset.seq for m in got] == list(range(1, 21))
        replay = await a.replay(channel, Offset(sent[0].offset.epoch, 0))
        assert [m.offset.seq for m in replay.messages] == list(range(1, 21))
    finally:
        await stop(task)


async def test_ping(make_backend: MakeBackend) -> None:
    await (await make_backend()).ping()
