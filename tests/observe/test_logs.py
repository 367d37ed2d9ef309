"""Structured logs: request id, tenant, route; secrets never logged."""

from __future__ import annotations

import json
import logging

from tests.observe.conftest import Factory

from headway.observe import Redactor

API_KEY = "hw_secretKEY0123456789abcdefghijklmnop"
DB_PASSWORD = "db-pass-w0rd-never-logged"
REDIS_PASSWORD = "redis-pass-never-logged"


def lines(stream_text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream_text.splitlines() if line.strip()]


async def test_json_access_log_has_request_id_tenant_and_route(make: Factory) -> None:
    async with make(log_format="json") as (_, client, stream):
        response = await client.get("/tenant/acme", headers={"X-Request-ID": "rid-1"})
        await client.get("/items/5")
    records = lines(stream.getvalue())
    app_line = next(r for r in records if r["logger"] == "test.app")
    access = [r for r in records if r["logger"] == "headway.access"]
    assert response.headers["x-request-id"] == "rid-1"
    assert app_line["request_id"] == "rid-1"
    assert app_line["tenant"] == "acme"
    assert app_line["route"] == "/tenant/{tenant}"
    first, second = access
    assert first["request_id"] == "rid-1" and first["tenant"] == "acme"
    assert first["status"] == 200 and first["route"] == "/tenant/{tenant}"
    assert isinstance(first["duration_ms"], float)
    assert second["route"] == "/items/{item_id}" and "tenant" not in second
    assert second["request_id"] != "rid-1"


async def test_console_format_in_development(make: Factory) -> None:
    async with make() as (_, client, stream):
        await client.get("/items/5", headers={"X-Request-ID": "rid-2"})
    text = stream.getvalue()
    assert "headway.access" in text and "GET /items/5 200" in text
    assert "request_id=rid-2" in text and "route=/items/{item_id}" in text
    assert not text.lstrip().startswith("{")


async def test_secrets_are_never_logged(make: Factory) -> None:
    hub = {
        "database_url": "sqlite:///./obs.db",
        "redis_url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0",
    }
    async with make(hub=hub, log_format="json") as (hw, client, stream):
        auth = {"Authorization": f"Bearer {API_KEY}"}
        await client.get("/tenant/acme", headers=auth)
        await client.get(f"/items/1?api_key={API_KEY}", headers=auth)
        log = logging.getLogger("test.app")
        log.warning("redis at %s", hw.settings.redis_url)
        log.warning("pg at postgresql://app:%s@db/x", DB_PASSWORD)
        log.warning("admin token %s", hw.settings.admin_token.get_secret_value())  # type: ignore[union-attr]
        try:
            raise RuntimeError(f"cannot connect with {API_KEY}")
        except RuntimeError:
            log.exception("failed")
    text = stream.getvalue()
    assert "redis at" in text and "failed" in text  # the lines are there...
    for secret in (
        API_KEY,
        REDIS_PASSWORD,
        DB_PASSWORD,
        hw.settings.admin_token.get_secret_value(),
    ):  # type: ignore[union-attr]
        assert secret not in text  # ...without the secrets
    assert "Bearer ***" in text


def test_redactor_patterns() -> None:
    redact = Redactor(["literal-secret-value"])
    assert redact("x literal-secret-value y") == "x *** y"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert redact("postgresql://u:p4ss@h/db") == "postgresql://u:***@h/db"
    assert redact('{"password": "hunter2"}') == '{"password": "***"}'
    assert "sk_live_" not in redact("key sk_live_0123456789abcdefgh")
