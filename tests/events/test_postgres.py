"""PostgreSQL backend specifics: the LISTEN connection comes back after it is killed."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from tests.conftest import PG_BASE
from tests.events.conftest import MakeBackend, eventually

from headway.events import Message
from headway.events.backends.postgres import PostgresEventBackend

pytestmark = pytest.mark.postgres


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def backend_url(pg_url: str) -> str:
    return pg_url


async def test_listening_resumes_after_the_connection_is_killed(
    make_backend: MakeBackend, channel: str
) -> None:
    be = await make_backend()
    assert isinstance(be, PostgresEventBackend)
    got: list[Message] = []
    readies: list[int] = []
    task = asyncio.create_task(be.listen(got.append, lambda: readies.append(1)))
    try:
        await eventually(lambda: readies == [1])
        killed = be.listener_pid
        conn = await asyncpg.connect(PG_BASE)
        try:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", killed)
        finally:
            await conn.close()
        await eventually(lambda: len(readies) == 2)  # on_ready again: callers catch up
        assert be.listener_pid != killed
        sent = await be.publish(channel, "E", b"1")
        await eventually(lambda: [m.offset for m in got] == [sent.offset])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
