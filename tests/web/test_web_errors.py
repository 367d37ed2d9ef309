from __future__ import annotations

import logging

import httpx
import orjson
import pytest
from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, field_validator
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import headway.web
from headway.web import HTTPError, ORJSONResponse, error_body, install_error_handlers


class Payload(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def no_spaces(cls, value: str) -> str:
        if " " in value:
            raise ValueError("name must not contain spaces")
        return value


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/headway-error")
    async def headway_error() -> None:
        raise HTTPError(409, "name_taken", "That name is taken", {"name": "x"}, {"X-Hint": "1"})

    @app.get("/rate")
    async def rate() -> None:
        raise HTTPException(429, "Slow down", headers={"Retry-After": "3"})

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418)

    @app.get("/structured")
    async def structured() -> None:
        raise HTTPException(403, detail={"reason": "suspended"})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 in db url")

    @app.get("/items")
    async def items(n: int = Query(ge=1)) -> dict[str, int]:
        return {"n": n}

    @app.post("/things")
    async def things(payload: Payload) -> dict[str, str]:
        return {"name": payload.name}

    return app


def client(app: Starlette, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def test_error_body_shape() -> None:
    assert error_body("c", "m") == {"error": {"code": "c", "message": "m", "details": None}}
    assert error_body("c", "m", [1]) == {"error": {"code": "c", "message": "m", "details": [1]}}


def test_http_error_attributes() -> None:
    exc = HTTPError(404, "nope", "Not here", details={"id": 3}, headers={"X": "y"})
    assert (exc.status, exc.code, exc.message, exc.details) == (404, "nope", "Not here", {"id": 3})
    assert exc.headers == {"X": "y"}
    assert isinstance(exc, Exception)


async def test_http_error_uses_its_status_code_details_and_headers() -> None:
    async with client(make_app()) as c:
        r = await c.get("/headway-error")
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-hint"] == "1"
    assert r.json() == error_body("name_taken", "That name is taken", {"name": "x"})


@pytest.mark.parametrize(
    ("path", "status", "code", "message"),
    [
        ("/rate", 429, "rate_limited", "Slow down"),
        ("/teapot", 418, "http_error", "I'm a Teapot"),
        ("/missing", 404, "not_found", "Not Found"),
    ],
)
async def test_http_exception_gets_the_shape(
    path: str, status: int, code: str, message: str
) -> None:
    async with client(make_app()) as c:
        r = await c.get(path)
    assert r.status_code == status
    assert r.json() == error_body(code, message)


async def test_http_exception_keeps_headers() -> None:
    async with client(make_app()) as c:
        r = await c.get("/rate")
    assert r.headers["retry-after"] == "3"


async def test_method_not_allowed() -> None:
    async with client(make_app()) as c:
        r = await c.delete("/rate")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in r.headers["allow"]


async def test_non_string_detail_goes_to_details() -> None:
    async with client(make_app()) as c:
        r = await c.get("/structured")
    assert r.status_code == 403
    assert r.json() == error_body("forbidden", "Forbidden", {"reason": "suspended"})


async def test_plain_starlette_app_too() -> None:
    async def gone(request: Request) -> Response:
        raise StarletteHTTPException(413)

    app = Starlette(routes=[Route("/big", gone)])
    install_error_handlers(app)
    async with client(app) as c:
        r = await c.get("/big")
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


async def test_unexpected_exception_is_a_generic_500(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="headway.web"):
        async with client(make_app(), raise_app_exceptions=False) as c:
            r = await c.get("/boom")
    assert r.status_code == 500
    assert r.json() == error_body("internal_error", "Internal server error")
    assert "hunter2" not in r.text
    assert "Traceback" not in r.text
    records = [rec for rec in caplog.records if rec.name == "headway.web"]
    assert records and records[0].exc_info is not None
    assert "hunter2" in str(records[0].exc_info[1])


async def test_query_validation_is_422_with_loc_msg_type() -> None:
    async with client(make_app()) as c:
        r = await c.get("/items", params={"n": "abc"})
        r0 = await c.get("/items", params={"n": "0"})
    assert r.status_code == 422
    body = r.json()["error"]
    assert body["code"] == "validation_error"
    assert body["message"]
    [item] = body["details"]
    assert item["loc"] == ["query", "n"]
    assert item["type"] == "int_parsing"
    assert item["msg"]
    assert "input" not in item
    [item0] = r0.json()["error"]["details"]
    assert item0["type"] == "greater_than_equal"
    assert item0["ctx"] == {"ge": 1}


async def test_validator_exception_in_ctx_is_stringified() -> None:
    async with client(make_app()) as c:
        r = await c.post("/things", json={"name": "a b"})
    assert r.status_code == 422
    [item] = r.json()["error"]["details"]
    assert item["loc"] == ["body", "name"]
    assert item["type"] == "value_error"
    assert item["ctx"] == {"error": "name must not contain spaces"}


async def test_malformed_json_is_422() -> None:
    async with client(make_app()) as c:
        r = await c.post(
            "/things", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"


def test_orjson_response_renders_non_string_keys() -> None:
    response = ORJSONResponse({1: "a", "b": [1.5, None]})
    assert response.media_type == "application/json"
    assert orjson.loads(response.body) == {"1": "a", "b": [1.5, None]}


def test_public_names() -> None:
    assert sorted(headway.web.__all__) == sorted(
        [
            "DEFAULT_LIMIT",
            "MAX_LIMIT",
            "CompressionMiddleware",
            "CursorCodec",
            "CursorPage",
            "ETagMiddleware",
            "HTTPError",
            "ORJSONResponse",
            "OffsetPage",
            "check_limit",
            "error_body",
            "install_error_handlers",
            "paginate_cursor",
            "paginate_offset",
            "parse_fields",
            "parse_include",
            "select_fields",
        ]
    )
    for name in headway.web.__all__:
        assert getattr(headway.web, name) is not None
