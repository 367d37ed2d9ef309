"""Events raised in a transaction are delivered after it commits, never on rollback."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from tests.events.conftest import MakeHub

from headway import Headway
from headway.events import Event


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "event_test_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(50))


class NoteSaved(Event):
    note_id: int


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
def events_url() -> str:
    return f"memory://{uuid.uuid4().hex[:8]}"


async def hub_with_log(make_hub: MakeHub, db_url: str) -> tuple[Headway, list[tuple[int, bool]]]:
    seen: list[tuple[int, bool]] = []

    def setup(hw: Headway) -> None:
        @hw.events.listener(NoteSaved)
        async def on_saved(event: NoteSaved) -> None:
            # the row is visible to another connection: the commit happened first
            async with AsyncSession(hw.connections.engine(db_url)) as other:
                found = await other.scalar(select(Note.id).where(Note.id == event.note_id))
            seen.append((event.note_id, found is not None))

    hw = await make_hub(setup)
    async with hw.connections.engine(db_url).begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return hw, seen


async def test_delivered_after_commit(make_hub: MakeHub, db_url: str) -> None:
    hw, seen = await hub_with_log(make_hub, db_url)
    sessions = async_sessionmaker(hw.connections.engine(db_url))
    async with sessions() as session:
        note = Note(id=1, body="hello")
        session.add(note)
        await session.flush()
        await hw.events.dispatch(NoteSaved(note_id=1), session=session)
        await hw.events.drain()
        assert seen == []  # not before the commit
        await session.commit()
    await hw.events.drain()
    assert seen == [(1, True)]


async def test_nothing_on_rollback(make_hub: MakeHub, db_url: str) -> None:
    hw, seen = await hub_with_log(make_hub, db_url)
    sessions = async_sessionmaker(hw.connections.engine(db_url))
    async with sessions() as session:
        session.add(Note(id=2, body="draft"))
        await session.flush()
        await hw.events.dispatch(NoteSaved(note_id=2), session=session)
        await session.rollback()
        # the same session, next transaction: only its own events
        session.add(Note(id=3, body="kept"))
        await hw.events.dispatch(NoteSaved(note_id=3), session=session)
        await session.commit()
    async with sessions.begin() as session:  # `async with session.begin()` commits too
        session.add(Note(id=4, body="ctx"))
        await hw.events.dispatch(NoteSaved(note_id=4), session=session)
    await hw.events.drain()
    assert seen == [(3, True), (4, True)]


async def test_failed_commit_delivers_nothing(make_hub: MakeHub, db_url: str) -> None:
    hw, seen = await hub_with_log(make_hub, db_url)
    sessions = async_sessionmaker(hw.connections.engine(db_url))
    async with sessions() as session:
        session.add(Note(id=5, body="first"))
        await session.commit()
    async with sessions() as session:
        session.add(Note(id=5, body="duplicate key"))
        await hw.events.dispatch(NoteSaved(note_id=5), session=session)
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await session.commit()
        await session.rollback()
    await hw.events.drain()
    assert seen == []
