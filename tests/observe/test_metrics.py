"""/metrics: route-template labels, in-flight, sizes, DB and process metrics, formats."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from tests.observe.conftest import ADMIN, Factory

IN_CI = os.environ.get("CI", "").lower() == "true"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in parse_text(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return sum(
        v for (n, ls), v in samples(text).items() if n == name and set(labels.items()) <= set(ls)
    )


async def test_routes_are_labelled_by_template_and_unmatched_paths_share_one_label(
    make: Factory,
) -> None:
    async with make() as (_hw, client, _):
        for i in range(3):
            assert (await client.get(f"/items/{i}")).status_code == 200
        for path in ("/nope/1", "/nope/2", "/x?y=1"):
            assert (await client.get(path)).status_code == 404
        assert (await client.get("/orgs/acme/things/t1")).text == "t1"
        assert (await client.get("/orgs/umbrella/things/t2")).text == "t2"
        assert (await client.get("/boom")).status_code == 500
        assert (await client.get("/health/ready")).status_code == 200
        await client.get("/metrics")
        text = (await client.get("/metrics")).text
    routes = {dict(ls)["route"] for (n, ls) in samples(text) if n == "http_requests_total"}
    assert routes == {
        "/items/{item_id}",
        "<unmatched>",
        "/orgs/{org}/things/{name}",
        "/boom",
        "/health/ready",
        "/metrics",
    }
    assert value(text, "http_requests_total", route="/items/{item_id}", status="200") == 3
    assert value(text, "http_requests_total", route="<unmatched>", status="404") == 3
    assert value(text, "http_requests_total", route="/boom", status="500") == 1
    assert value(text, "http_request_duration_seconds_count", route="/items/{item_id}") == 3
    assert "acme" not in text and "/nope/1" not in text


async def test_response_size_and_in_flight(make: Factory) -> None:
    async with make() as (_hw, client, _):
        response = await client.get("/items/7")
        text = (await client.get("/metrics")).text
    size = value(text, "http_response_size_bytes_sum", route="/items/{item_id}")
    assert size == len(response.content)
    # the scrape itself is the one request in flight while it is answered
    assert value(text, "http_requests_in_flight") == 1


async def test_request_id_is_echoed_or_generated(make: Factory) -> None:
    async with make() as (_, client, _):
        given = await client.get("/items/1", headers={"X-Request-ID": "abc-123"})
        fresh = await client.get("/items/1")
        bad = await client.get("/items/1", headers={"X-Request-ID": "no spaces\nplease"})
    assert given.headers["x-request-id"] == "abc-123"
    assert len(fresh.headers["x-request-id"]) == 32
    assert bad.headers["x-request-id"] != "no spaces\nplease"


async def test_database_pool_and_query_metrics(make: Factory) -> None:
    async with make() as (_, client, _):
        assert (await client.get("/query")).json() == {"value": 42}
        text = (await client.get("/metrics")).text
    assert value(text, "headway_db_query_duration_seconds_count", kind="SELECT") >= 1
    assert value(text, "headway_db_pool_size") == 10
    assert value(text, "headway_db_pool_checked_out") == 0
    assert value(text, "headway_db_pool_checked_in") >= 1


async def test_process_metrics(make: Factory) -> None:
    async with make() as (_, client, _):
        text = (await client.get("/metrics")).text
    assert value(text, "headway_process_resident_memory_bytes") > 1_000_000
    assert value(text, "headway_process_cpu_seconds_total") > 0


async def test_both_parsers_accept_the_scrape(make: Factory) -> None:
    async with make() as (_, client, _):
        await client.get("/items/1")
        await client.get("/query")
        plain = await client.get("/metrics")
        om = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert plain.headers["content-type"].startswith("text/plain")
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    names = {f.name for f in parse_text(plain.text)}
    assert {"http_requests", "http_request_duration_seconds"} <= names or {
        "http_requests_total"
    } <= names
    om_names = {f.name for f in parse_openmetrics(om.text)}
    assert "http_requests" in om_names
    assert "http_request_duration_seconds" in om_names
    assert om.text.rstrip().endswith("# EOF")


async def test_promtool_accepts_the_scrape(make: Factory) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool not found (Debian: apt-get install -y prometheus)"
        if IN_CI:
            pytest.fail(message + " (CI=true)", pytrace=False)
        pytest.skip(message)
    async with make() as (_, client, _):
        await client.get("/items/1")
        await client.get("/nope")
        await client.get("/query")
        text = (await client.get("/metrics")).text
    run = subprocess.run(  # noqa: ASYNC221 - a short, bounded run
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stdout + run.stderr


async def test_metrics_token(make: Factory) -> None:
    async with make(metrics_token="scrape-token-123") as (_, client, _):
        assert (await client.get("/metrics")).status_code == 401
        ok = await client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
        assert ok.status_code == 200
        admin = await client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
        assert admin.status_code == 200
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401


async def test_disabled_observe_adds_nothing(make: Factory) -> None:
    async with make(enabled=False, logs=False) as (_, client, _):
        assert (await client.get("/metrics")).status_code == 404
        assert "x-request-id" not in (await client.get("/items/1")).headers
