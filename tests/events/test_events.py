"""Typed events: listeners (inline and queued as jobs), dispatch errors, after-commit."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import backend_params
from tests.events.conftest import MakeHub, eventually, free_port

from headway import BackendUnavailableError, Headway
from headway.events import Event, EventError, Events
from headway.jobs import SUCCEEDED

pytestmark = pytest.mark.parametrize("backend", backend_params("memory"))


class OrderPlaced(Event):
    tenant_id: int
    order_id: int
    at: datetime | None = None

    def channels(self) -> list[str]:
        return [f"tenant.{self.tenant_id}"]


class PriorityOrderPlaced(OrderPlaced):
    event_name = "orders.priority_placed"


class Opaque(Event):
    value: Any


@dataclasses.dataclass(frozen=True)
class Pinged:
    who: str


class BadChannel(Event):
    def channels(self) -> list[str]:
        return ["tenant 1"]


async def test_inline_listeners_get_the_event_and_its_subclasses(make_hub: MakeHub) -> None:
    seen: list[tuple[str, Any]] = []

    def setup(hw: Headway) -> None:
        @hw.events.listener(OrderPlaced)
        async def on_order(event: OrderPlaced) -> None:
            seen.append(("order", event))

        @hw.events.listener(PriorityOrderPlaced, Pinged)
        def on_priority(event: Any) -> None:
            seen.append(("priority", event))

    hw = await make_hub(setup)
    plain = OrderPlaced(tenant_id=1, order_id=2)
    urgent = PriorityOrderPlaced(tenant_id=1, order_id=3)
    await hw.events.dispatch(plain)
    await hw.events.dispatch(urgent)
    await hw.events.dispatch(Pinged("me"))
    assert seen == [
        ("order", plain),
        ("order", urgent),
        ("priority", urgent),
        ("priority", Pinged("me")),
    ]


async def test_a_failing_listener_does_not_stop_the_others(make_hub: MakeHub) -> None:
    seen: list[int] = []

    def setup(hw: Headway) -> None:
        @hw.events.listener(OrderPlaced)
        def broken(event: OrderPlaced) -> None:
            raise RuntimeError("boom")

        @hw.events.listener(OrderPlaced)
        def works(event: OrderPlaced) -> None:
            seen.append(event.order_id)

    hw = await make_hub(setup)
    await hw.events.dispatch(OrderPlaced(tenant_id=1, order_id=9))
    assert seen == [9]


async def test_queued_listeners_run_as_jobs_with_retries(make_hub: MakeHub) -> None:
    attempts: list[PriorityOrderPlaced] = []

    def setup(hw: Headway) -> None:
        @hw.events.listener(OrderPlaced, queued=True, queue="orders", retries=2)
        async def flaky(event: PriorityOrderPlaced) -> None:
            attempts.append(event)
            if len(attempts) < 3:
                raise ConnectionError("try again")

    hw = await make_hub(setup)
    event = PriorityOrderPlaced(tenant_id=4, order_id=5, at=datetime(2026, 1, 2, 3, 4, 5))
    await hw.events.dispatch(event)
    assert attempts == []  # not run inline
    [job] = await hw.jobs.list("orders")
    assert job.tenant == "4"
    worker = hw.jobs.worker(["orders"], poll_interval=0.01)
    import asyncio

    run = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: len(attempts) == 3)
        handle = hw.jobs.handle(job.id, queue="orders")
        assert await handle.result(timeout=10) is None
        assert await handle.status() == SUCCEEDED
    finally:
        worker.stop()
        await run
    assert attempts == [event] * 3  # the subclass, decoded with its own type


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (Opaque(value=object()), "not JSON-serialisable"),
        (Opaque(value="x" * 70_000), "HEADWAY_EVENTS_MAX_PAYLOAD"),
        (BadChannel(), "a channel is 1-100"),
        ({"event": "dict"}, "is not an event"),
        (OrderPlaced, "is not an event"),
    ],
)
async def test_bad_events_fail_at_dispatch(make_hub: MakeHub, event: Any, message: str) -> None:
    hw = await make_hub()
    with pytest.raises(EventError, match=message):
        await hw.events.dispatch(event)
    with pytest.raises(EventError, match=message):
        await hw.events.dispatch(event, session=object())  # before any commit, too


async def test_listener_needs_an_event_class(make_hub: MakeHub) -> None:
    hw = await make_hub()
    with pytest.raises(TypeError, match="event class"):
        hw.events.listener()
    with pytest.raises(EventError, match="not an event"):
        hw.events.listener(int)


async def test_broadcast_events_reach_their_channels(make_hub: MakeHub) -> None:
    hw = await make_hub()
    await hw.events.dispatch(OrderPlaced(tenant_id=7, order_id=1))
    replay = await hw.events.backend.replay("tenant.7", None)
    assert replay.head is not None and replay.head.seq == 1
    r = await hw.events.backend.replay("tenant.7", type(replay.head)(replay.head.epoch, 0))
    assert [(m.event, m.data) for m in r.messages] == [
        ("OrderPlaced", b'{"tenant_id":7,"order_id":1,"at":null}')
    ]


async def test_an_unreachable_backend_is_a_clear_error(backend: str, tmp_path: Path) -> None:
    hw = Headway(data_dir=tmp_path, connect_timeout=0.2)
    hw.add(Events(hw, f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(BackendUnavailableError, match="did not answer"):
        await hw.start()
    await hw.stop()


async def test_two_event_classes_cannot_share_a_name(backend: str) -> None:
    with pytest.raises(EventError, match="two event classes are named 'OrderPlaced'"):

        class OrderPlaced(Event):  # another module's class of the same name
            other: int


async def test_publish_and_declaration_errors(backend: str, make_hub: MakeHub) -> None:
    hw = await make_hub()
    for channel, event, data, message in [
        ("tenant 1", "E", {}, "invalid channel"),
        ("tenant.1", "E\n", {}, "invalid event name"),
        ("tenant.1", "E", {"x": object()}, "not JSON"),
        ("tenant.1", "E", b"{not json", "not JSON"),
        ("tenant.1", "E", "x" * 70_000, "HEADWAY_EVENTS_MAX_PAYLOAD"),
    ]:
        with pytest.raises(EventError, match=message):
            await hw.events.publish(channel, event, data)
    with pytest.raises(TypeError, match="AsyncSession or Session"):
        await hw.events.dispatch(OrderPlaced(tenant_id=1, order_id=1), session="not a session")
    with pytest.raises(ValueError, match="invalid queue name"):
        hw.events.listener(OrderPlaced, queued=True, queue="bad queue{x}")
