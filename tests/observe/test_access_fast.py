"""The access log's fast path writes exactly what the logging path would have written."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import random
from collections.abc import Iterator

import pytest
from tests.observe.conftest import Factory

from headway.observe.logs import (
    AccessEntry,
    ConsoleFormatter,
    JsonFormatter,
    LogSetup,
    Redactor,
    RequestContext,
    line_handler,
    reset_current,
    set_current,
)

SECRET = "configured-secret-value-42"
PATHS = [
    "/ping",
    "/items/5",
    "/a b/\u00e9\u4e2d",
    '/q"uote\\slash',
    "/ctl\x08asic\x1bearer\ttoken\x00",
    f"/leak/{SECRET}",
    "/x?api_key=abcdef123456",
    "/hw_abcdefghijklmnop12345",
    "/u/user:pw@host",
    "/Bearer abc",
    "/%s%d{}",
]
FIELDS: list[dict[str, object] | None] = [
    None,
    {"tenant": "acme"},
    {"token": "t0ps3cret", "n": 3, "obj": object.__name__},
    {"status": "overridden", "ts": "x"},
]


def _entries() -> list[AccessEntry]:
    out = []
    ids = ["0123456789abcdef0123456789abcdef", "key-123", "rid:1.2_3"]
    cases = itertools.product(PATHS, FIELDS, ids, [(200, 20), (503, 40), (304, 10)])
    for i, (path, fields, rid, (status, level)) in enumerate(cases):
        ctx = RequestContext(rid, "GET", path, fields=dict(fields or {}))
        ctx.route = lambda: "unused"
        created = 1_700_000_000 + i * 0.0137
        ms = [0.0, 0.04, 1.23456, 98765.4321][i % 4]
        route = ["/items/{item_id}", "<unmatched>", path][i % 3]
        out.append(
            AccessEntry(
                created, level, "headway.access", "GET", path, status, ms, i, ctx, route, fields
            )
        )
    return out


def _via_logging(formatter: logging.Formatter, entry: AccessEntry) -> str:
    """What the record would have become through logging (context bound as it was)."""
    ctx = RequestContext(
        entry.ctx.request_id,
        entry.method,
        entry.path,
        lambda: entry.route,
        dict(entry.fields or {}),
    )
    token = set_current(ctx)
    try:
        return formatter.format(entry.record())
    finally:
        reset_current(token)


@pytest.mark.parametrize("kind", [JsonFormatter, ConsoleFormatter])
def test_fast_lines_equal_logging_lines(kind: type[JsonFormatter | ConsoleFormatter]) -> None:
    formatter = kind(Redactor([SECRET]))
    for entry in _entries():
        assert formatter.format_access(entry) == _via_logging(formatter, entry), entry
    assert SECRET not in "".join(formatter.format_access(e) for e in _entries())


def test_record_matches_what_logger_log_makes() -> None:
    entry = _entries()[0]
    record = entry.record()
    assert record.getMessage() == entry.message() == "GET /ping 200 0.0ms"
    assert (record.status, record.duration_ms, record.bytes) == (200, 0.0, 0)  # type: ignore[attr-defined]
    assert record.levelname == "INFO" and record.name == "headway.access"


@contextlib.contextmanager
def bare_root() -> Iterator[None]:
    """No pytest capture handler on the root logger, as in a served app (pytest adds
    them around the test's call, so this runs inside it)."""
    root = logging.getLogger()
    saved = list(root.handlers)
    root.handlers = []
    try:
        yield
    finally:
        root.handlers = saved


def test_fast_path_only_when_our_handler_is_the_only_one() -> None:
    setup = LogSetup(JsonFormatter(), "INFO", True)
    access = logging.getLogger("headway.access")
    with bare_root():
        setup.install(io.StringIO())
        _check_fast_path_conditions(setup, access)
    assert line_handler(access, logging.INFO) is None


def _check_fast_path_conditions(setup: LogSetup, access: logging.Logger) -> None:
    try:
        assert line_handler(access, logging.INFO) is setup.handler
        assert line_handler(access, logging.DEBUG) is not None  # the level is checked first
        extra = logging.StreamHandler(io.StringIO())
        logging.getLogger("headway").addHandler(extra)
        assert line_handler(access, logging.INFO) is None
        logging.getLogger("headway").removeHandler(extra)
        access.addFilter(lambda r: True)
        assert line_handler(access, logging.INFO) is None
        access.filters.clear()
        assert setup.handler is not None
        setup.handler.setFormatter(logging.Formatter())
        assert line_handler(access, logging.INFO) is None
    finally:
        setup.uninstall()


async def test_other_handlers_still_get_access_records(
    make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="headway.access"):
        async with make(log_format="json") as (_, client, stream):
            await client.get("/items/7", headers={"X-Request-ID": "rid-7"})
    records = [r for r in caplog.records if r.name == "headway.access"]
    assert [r.getMessage().split()[:3] for r in records] == [["GET", "/items/7", "200"]]
    assert '"request_id":"rid-7"' in stream.getvalue()


async def test_access_lines_keep_their_order_with_other_records(make: Factory) -> None:
    with bare_root():
        await _requests_and_records(make)


async def _requests_and_records(make: Factory) -> None:
    async with make(log_format="json") as (_, client, stream):
        assert line_handler(logging.getLogger("headway.access"), logging.INFO) is not None
        for i in range(3):
            await client.get(f"/items/{i}", headers={"X-Request-ID": f"order-{i}"})
            logging.getLogger("test.order").warning("after %d", i)
        await client.get("/tenant/acme")  # binds a field: the general formatting
    records = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    ours = [r for r in records if r["logger"] in ("headway.access", "test.order")]
    assert [r["logger"] for r in ours] == ["headway.access", "test.order"] * 3 + ["headway.access"]
    access = [r for r in ours if r["logger"] == "headway.access"]
    assert [a["request_id"] for a in access[:3]] == ["order-0", "order-1", "order-2"]
    assert access[0]["route"] == "/items/{item_id}" and access[0]["status"] == 200
    assert list(access[0]) == [
        "ts", "level", "logger", "msg", "request_id", "route", "status", "duration_ms", "bytes"
    ]  # fmt: skip
    assert access[-1]["tenant"] == "acme" and access[-1]["route"] == "/tenant/{tenant}"


def test_fast_numbers_and_ids_equal_logging_lines() -> None:
    """Durations across their range (the fast path writes them without orjson) and ids
    that need JSON escaping (which the fast path leaves to the general one)."""
    formatter = JsonFormatter(Redactor([SECRET]))
    rng = random.Random(7)
    durations = [0.0, 0.004, 0.005, 0.015, 0.125, 2.0, 1e9 - 0.001, 1e9, 3e15, 1e16]
    durations += [rng.expovariate(1 / scale) for scale in (0.05, 5, 500, 5e6) for _ in range(250)]
    ids = ["0123456789abcdef0123456789abcdef", 'q"uote', "back\\slash", "\u00e9t\u00e9", "a b"]
    for i, ms in enumerate(durations):
        ctx = RequestContext(ids[i % len(ids)], "GET", "/ping")
        ctx.route = lambda: "unused"
        entry = AccessEntry(
            1_700_000_000 + i * 0.0311, 20, "headway.access", "GET", "/ping", 200, ms, i, ctx,
            "/ping", None,
        )  # fmt: skip
        assert formatter.format_access(entry) == _via_logging(formatter, entry), entry
