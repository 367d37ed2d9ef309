from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from headway.web import (
    HTTPError,
    install_error_handlers,
    parse_fields,
    parse_include,
    select_fields,
)

ALLOWED = ("name", "email", "id", "created_at")


@pytest.mark.parametrize("raw", [None, "", " ", " , ,"])
def test_no_fields_means_all(raw: str | None) -> None:
    assert parse_fields(raw, ALLOWED) is None


def test_fields_are_stripped_and_include_id() -> None:
    assert parse_fields(" name , email,", ALLOWED) == frozenset({"id", "name", "email"})
    assert parse_fields("name", ALLOWED, always=()) == frozenset({"name"})
    with_two = parse_fields("name", ALLOWED, always=("id", "created_at"))
    assert with_two == frozenset({"id", "name", "created_at"})


def test_unknown_fields_list_the_allowed_ones() -> None:
    with pytest.raises(HTTPError) as info:
        parse_fields("name,secret,x,secret", ALLOWED)
    err = info.value
    assert (err.status, err.code) == (400, "invalid_fields")
    assert err.message == "Unknown field(s): secret, x. Allowed: created_at, email, id, name"
    assert err.details == {"unknown": ["secret", "x"], "allowed": sorted(ALLOWED)}


def test_include() -> None:
    assert parse_include(None, {"owner"}) == frozenset()
    assert parse_include("", {"owner"}) == frozenset()
    assert parse_include("owner, tags", {"owner", "tags"}) == {"owner", "tags"}
    with pytest.raises(HTTPError) as info:
        parse_include("owner,billing", {"owner", "tags"})
    err = info.value
    assert (err.status, err.code) == (400, "invalid_include")
    assert err.message == "Unknown include(s): billing. Allowed: owner, tags"
    assert err.details == {"unknown": ["billing"], "allowed": ["owner", "tags"]}


def test_select_fields() -> None:
    data = {"id": 1, "name": "n", "email": "e", "owner": {"id": 2}}
    assert select_fields(data, None) == data
    assert select_fields(data, None) is not data
    assert select_fields(data, frozenset({"id", "owner", "missing"})) == {
        "id": 1,
        "owner": {"id": 2},
    }


async def test_unknown_field_over_http_is_a_400_listing_allowed_names() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/users/1")
    async def user(fields: str | None = None) -> dict[str, object]:
        wanted = parse_fields(fields, ALLOWED)
        return select_fields({"id": 1, "name": "n", "email": "e", "created_at": "t"}, wanted)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        ok = await c.get("/users/1", params={"fields": "name"})
        bad = await c.get("/users/1", params={"fields": "name,password"})
    assert ok.json() == {"id": 1, "name": "n"}
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["code"] == "invalid_fields"
    assert error["details"]["allowed"] == ["created_at", "email", "id", "name"]
    assert "password" in error["message"] and "created_at, email, id, name" in error["message"]
