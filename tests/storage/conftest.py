"""Storage fixtures: a real S3-compatible server (moto's server mode) on 127.0.0.1.

``moto_endpoint`` starts one ``moto_server`` process per test session on a free port and
stops it by its PID; each test gets its own bucket. Without moto installed the S3 tests
skip locally and fail under ``CI=true`` (like a missing Redis).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from tests.conftest import IN_CI

from headway import Headway
from headway.storage import Storage, StorageBackend, StorageSettings, open_backend

SECRET = b"test-secret-key-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _moto_command() -> str | None:
    beside = Path(sys.executable).parent / "moto_server"
    return str(beside) if beside.exists() else shutil.which("moto_server")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    command = _moto_command()
    if command is None:
        message = "moto_server not installed (pip install 'moto[server]')"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing server is a failure)", pytrace=False)
        pytest.skip(message)
    port = _free_port()
    proc = subprocess.Popen(
        [command, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(endpoint + "/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("moto_server did not start", pytrace=False)
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def s3_settings(endpoint: str) -> StorageSettings:
    return StorageSettings(
        endpoint=endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",  # type: ignore[arg-type]
        chunk_size=5 * 1024 * 1024,
    )


def make_bucket(endpoint: str) -> str:
    bucket = f"hw-{uuid.uuid4().hex[:16]}"
    httpx.put(f"{endpoint}/{bucket}", timeout=10).raise_for_status()
    return bucket


@pytest.fixture(params=["file", "s3"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage_target(
    storage_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[str, StorageSettings]:
    """``(HEADWAY_STORAGE_URL, StorageSettings)`` for the parametrized backend kind."""
    if storage_kind == "file":
        return f"file://{tmp_path / 'store'}", StorageSettings()
    endpoint = str(request.getfixturevalue("moto_endpoint"))
    return f"s3://{make_bucket(endpoint)}", s3_settings(endpoint)


@pytest.fixture
async def backend(storage_target: tuple[str, StorageSettings]) -> AsyncIterator[StorageBackend]:
    url, settings = storage_target
    store = open_backend(url, settings, SECRET)
    await store.start()
    yield store
    await store.close()


@pytest.fixture
async def hw_storage(
    storage_target: tuple[str, StorageSettings], tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, Storage]]:
    """A started hub with ``Storage`` on the backend, installed on a FastAPI app."""
    url, settings = storage_target
    hw = Headway(
        storage_url=url,
        data_dir=tmp_path / "data",
        secret_key=SECRET.decode(),
        database_url=f"sqlite:///{tmp_path / 'hw.db'}",
    )
    storage = hw.add(Storage(hw, settings))
    app = FastAPI()
    hw.install(app)
    async with hw:
        yield app, storage
