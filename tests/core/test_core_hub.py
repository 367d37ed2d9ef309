"""The hub: capabilities' lifecycle, and what install(app) wires into a FastAPI app."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request
from starlette.applications import Starlette

from headway import Capability, Headway, from_request
from headway.web.errors import HTTPError


class Recorder(Capability):
    """Records its calls in a shared log; can be told to fail in start()."""

    def __init__(self, hw: Headway, name: str, log: list[str], *, fail: bool = False) -> None:
        super().__init__(hw)
        self.name = name  # type: ignore[misc]
        self.log = log
        self.fail = fail

    async def start(self) -> None:
        self.log.append(f"start:{self.name}")
        if self.fail:
            raise RuntimeError(f"{self.name} cannot start")

    async def stop(self) -> None:
        self.log.append(f"stop:{self.name}")

    def install(self, app: Starlette) -> None:
        self.log.append(f"install:{self.name}")


@pytest.fixture
def hw(tmp_path: Path) -> Headway:
    return Headway(data_dir=tmp_path / "data")


def client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


# -- lifecycle ------------------------------------------------------------------------


async def test_capabilities_start_in_order_and_stop_in_reverse(hw: Headway) -> None:
    log: list[str] = []
    for name in ("a", "b", "c"):
        hw.add(Recorder(hw, name, log))
    assert not hw.running
    async with hw as entered:
        assert entered is hw
        assert hw.running
        assert log == ["start:a", "start:b", "start:c"]
    assert log == ["start:a", "start:b", "start:c", "stop:c", "stop:b", "stop:a"]
    assert not hw.running


async def test_stop_runs_when_the_body_raises(hw: Headway) -> None:
    log: list[str] = []
    hw.add(Recorder(hw, "a", log))
    with pytest.raises(ZeroDivisionError):
        async with hw:
            1 / 0
    assert log == ["start:a", "stop:a"]


async def test_failed_start_stops_the_started_ones_and_reraises(hw: Headway) -> None:
    log: list[str] = []
    hw.add(Recorder(hw, "a", log))
    hw.add(Recorder(hw, "b", log))
    hw.add(Recorder(hw, "broken", log, fail=True))
    hw.add(Recorder(hw, "never", log))
    with pytest.raises(RuntimeError, match="broken cannot start"):
        async with hw:
            pytest.fail("the body must not run")
    assert log == ["start:a", "start:b", "start:broken", "stop:b", "stop:a"]
    assert not hw.running


async def test_hub_can_start_again_after_a_failed_start(hw: Headway) -> None:
    log: list[str] = []
    flaky = hw.add(Recorder(hw, "flaky", log, fail=True))
    with pytest.raises(RuntimeError):
        await hw.start()
    flaky.fail = False
    log.clear()
    async with hw:
        assert hw.running
    assert log == ["start:flaky", "stop:flaky"]


async def test_start_twice_starts_once(hw: Headway) -> None:
    log: list[str] = []
    hw.add(Recorder(hw, "a", log))
    await hw.start()
    await hw.start()
    await hw.stop()
    assert log == ["start:a", "stop:a"]


async def test_stop_closes_the_shared_connections(hw: Headway) -> None:
    async with hw:
        engine = hw.connections.engine()
    assert hw.connections.engine() is not engine


def test_duplicate_capability_name_is_refused(hw: Headway) -> None:
    log: list[str] = []
    first = hw.add(Recorder(hw, "jobs", log))
    with pytest.raises(ValueError, match="jobs"):
        hw.add(Recorder(hw, "jobs", log))
    assert hw.capability("jobs") is first
    assert list(hw.capabilities) == ["jobs"]


def test_capability_without_a_name_is_refused(hw: Headway) -> None:
    with pytest.raises(ValueError, match="no name"):
        hw.add(Capability(hw))


def test_unknown_capability_lookup_lists_the_added_ones(hw: Headway) -> None:
    hw.add(Recorder(hw, "cache", []))
    with pytest.raises(KeyError, match="cache"):
        hw.capability("jobs")


def test_capabilities_mapping_is_a_copy(hw: Headway) -> None:
    hw.add(Recorder(hw, "cache", []))
    view = hw.capabilities
    view.pop("cache")  # type: ignore[attr-defined]
    assert list(hw.capabilities) == ["cache"]


# -- install(app) ---------------------------------------------------------------------


async def test_app_lifespan_runs_inside_the_hub(hw: Headway) -> None:
    log: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.append(f"app:enter running={hw.running}")
        yield
        log.append(f"app:exit running={hw.running}")

    app = FastAPI(lifespan=lifespan)
    hw.add(Recorder(hw, "a", log))
    hw.install(app)
    assert log == ["install:a"]
    async with app.router.lifespan_context(app):
        assert hw.running
    assert log == [
        "install:a",
        "start:a",
        "app:enter running=True",
        "app:exit running=True",
        "stop:a",
    ]
    assert not hw.running


async def test_installing_twice_wraps_the_lifespan_once(hw: Headway) -> None:
    log: list[str] = []
    app = FastAPI()
    hw.add(Recorder(hw, "a", log))
    hw.install(app)
    hw.install(app)
    async with app.router.lifespan_context(app):
        pass
    assert log == ["install:a", "start:a", "stop:a"]


async def test_from_request_returns_the_installed_hub(hw: Headway) -> None:
    app = FastAPI()

    @app.get("/who")
    async def who(request: Request) -> dict[str, bool]:
        return {"same": from_request(request) is hw}

    hw.install(app)
    async with client(app) as c:
        assert (await c.get("/who")).json() == {"same": True}


async def test_from_request_without_a_hub_is_a_clear_error() -> None:
    app = FastAPI()
    seen: list[str] = []

    @app.get("/who")
    async def who(request: Request) -> dict[str, str]:
        try:
            from_request(request)
        except RuntimeError as exc:
            seen.append(str(exc))
        return {}

    async with client(app) as c:
        await c.get("/who")
    assert seen
    assert "install" in seen[0]


def _error_app(hw: Headway) -> FastAPI:
    app = FastAPI()

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(404, "no such thing")

    @app.get("/conflict")
    async def conflict() -> None:
        raise HTTPError(409, "conflict", "already there", details={"id": 3})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals 0xdeadbeef")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    hw.install(app)
    return app


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/missing", 404, "not_found"),
        ("/conflict", 409, "conflict"),
        ("/nowhere", 404, "not_found"),
        ("/items/notanint", 422, "validation_error"),
        ("/boom", 500, "internal_error"),
    ],
)
async def test_errors_get_the_json_error_shape(
    hw: Headway, path: str, status: int, code: str
) -> None:
    async with client(_error_app(hw)) as c:
        response = await c.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert "0xdeadbeef" not in response.text


async def test_error_message_and_details_reach_the_client(hw: Headway) -> None:
    async with client(_error_app(hw)) as c:
        body = (await c.get("/conflict")).json()
        assert body == {
            "error": {"code": "conflict", "message": "already there", "details": {"id": 3}}
        }
        assert (await c.get("/missing")).json()["error"]["message"] == "no such thing"


def _sized_app(hw: Headway) -> FastAPI:
    app = FastAPI()

    @app.get("/big")
    async def big() -> dict[str, list[str]]:
        return {"items": [f"item number {i}" for i in range(200)]}  # ~3.5 KB of JSON

    @app.get("/small")
    async def small() -> dict[str, str]:
        return {"ok": "yes"}

    hw.install(app)
    return app


async def test_large_responses_are_gzipped(hw: Headway) -> None:
    async with (
        client(_sized_app(hw)) as c,
        c.stream("GET", "/big", headers={"Accept-Encoding": "gzip"}) as response,
    ):
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in response.headers["vary"].lower()
    assert int(response.headers["content-length"]) == len(raw)
    body = gzip.decompress(raw)
    assert len(body) > 1024
    assert len(raw) < len(body)
    assert len(json.loads(body)["items"]) == 200


async def test_small_responses_and_clients_without_gzip_are_not_compressed(
    hw: Headway,
) -> None:
    async with client(_sized_app(hw)) as c:
        small = await c.get("/small", headers={"Accept-Encoding": "gzip"})
        plain = await c.get("/big", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in small.headers
    assert "content-encoding" not in plain.headers
    assert len(plain.json()["items"]) == 200


async def test_get_answers_carry_an_etag(hw: Headway) -> None:
    async with client(_sized_app(hw)) as c:
        first = await c.get("/small")
        etag = first.headers["etag"]
        again = await c.get("/small", headers={"If-None-Match": etag})
    assert again.status_code == 304
