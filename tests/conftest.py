"""Shared fixtures: isolated backends for every test, and the contract-suite helper.

- ``sqlite_url``: a temp SQLite file per test.
- ``redis_url`` / ``redis_prefix``: the local Redis (127.0.0.1:6379) on db 0 with a key
  prefix of the test's own; the keys under it are deleted afterwards.
- ``pg_url``: the local PostgreSQL (database ``test``) with a schema of the test's own
  (``?schema=`` is headway's URL option for search_path), dropped afterwards.
- ``backend_params(...)``: parametrize a contract suite over backend URL kinds.

A server that cannot be reached skips its tests locally, and fails them when ``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_BASE = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"
IN_CI = os.environ.get("CI", "").lower() == "true"

# Tests never read the developer's own .env or HEADWAY_* variables.
for _name in list(os.environ):
    if _name.startswith("HEADWAY_"):
        del os.environ[_name]


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (CI=true) when a server is down."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing server is a failure)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own directory so embedded defaults (.headway/) never collide."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def redis_prefix() -> str:
    return f"hwtest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis_url(redis_prefix: str) -> AsyncIterator[str]:
    require_server("Redis", REDIS_HOST, REDIS_PORT)
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    yield url
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"*{redis_prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A 3-master Redis Cluster started for the session (see tests/redis_cluster.py)."""
    from tests.redis_cluster import redis_cluster

    try:
        with redis_cluster() as url:
            yield url
    except RuntimeError as exc:
        if IN_CI:
            pytest.fail(f"{exc} (CI=true: a missing server is a failure)", pytrace=False)
        pytest.skip(str(exc))


def _pg_exec(sql: str, url: str = PG_BASE) -> None:
    """Run one statement on a short-lived connection, from any thread or event loop."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections live in a fresh schema (sync fixture: any loop)."""
    require_server("PostgreSQL", PG_HOST, PG_PORT)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _pg_exec(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_BASE}?schema={schema}"
    finally:
        _pg_exec(f'DROP SCHEMA "{schema}" CASCADE')
        _pg_exec(f'DROP SCHEMA IF EXISTS "{schema}_jobs" CASCADE')  # its job store


def backend_params(*kinds: str) -> list[Any]:
    """``pytest.mark.parametrize("backend", backend_params("memory", "sqlite", ...))``.

    Each param is a kind; the ``backend_url`` fixture turns it into a live URL.
    """
    marks = {
        "redis": [pytest.mark.redis],
        "cluster": [pytest.mark.redis],
        "postgres": [pytest.mark.postgres],
    }
    return [pytest.param(kind, marks=marks.get(kind, []), id=kind) for kind in kinds]


@pytest.fixture
def backend_url(request: pytest.FixtureRequest) -> str:
    """The URL of the parametrized ``backend`` kind (see :func:`backend_params`)."""
    kind = request.node.callspec.params["backend"]
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    if kind == "redis":
        return str(request.getfixturevalue("redis_url"))
    if kind == "postgres":
        return str(request.getfixturevalue("pg_url"))
    if kind == "cluster":
        return str(request.getfixturevalue("redis_cluster_url"))
    raise ValueError(f"unknown backend kind {kind!r}")
