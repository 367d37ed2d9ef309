"""One delivery attempt: check the URL again, POST the signed body, classify the answer.

Success is a 2xx within the timeout. A 3xx (redirects are not followed), any other
status, a timeout, a connection error and an unsafe URL are failures; a 410 Gone is a
failure that disables the endpoint at once. Only the first ``excerpt`` bytes of the
response body are read.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from headway.webhooks import signing
from headway.webhooks.models import Endpoint, Message
from headway.webhooks.ssrf import Guard, UnsafeURL

SUCCEEDED = "succeeded"
FAILED = "failed"
USER_AGENT = "headway-webhooks/1"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What happened; ``kind`` is a bounded metric label."""

    ok: bool
    kind: str  # succeeded | http_error | redirect | gone | timeout | network_error | unsafe_url
    status_code: int | None
    latency: float
    response: str
    error: str | None

    @property
    def outcome(self) -> str:
        return SUCCEEDED if self.ok else FAILED


def classify(status: int) -> str:
    if 200 <= status < 300:
        return SUCCEEDED
    if status == 410:
        return "gone"
    if 300 <= status < 400:
        return "redirect"
    return "http_error"


async def attempt(
    client: httpx.AsyncClient, guard: Guard, endpoint: Endpoint, message: Message,
    *, limit: float, excerpt: int,
) -> Attempt:  # fmt: skip
    """POST ``message`` to ``endpoint``; never raises for what the endpoint does."""
    started = time.perf_counter()
    try:
        target = await guard.check(endpoint.url)
    except UnsafeURL as exc:
        return Attempt(False, "unsafe_url", None, 0.0, "", f"unsafe URL: {exc}")
    now = time.time()
    live = endpoint.live_secrets(now)
    headers = signing.headers(live, message.id, int(now), message.payload)
    headers["host"] = target.host_header()
    headers["user-agent"] = USER_AGENT
    extensions = {"sni_hostname": target.host} if target.url.startswith("https") else {}
    request = client.build_request(
        "POST", target.pinned_url(), content=message.payload, headers=headers,
        extensions=extensions, timeout=limit,
    )  # fmt: skip
    try:
        async with asyncio.timeout(limit):
            status, body = await _send(client, request, excerpt)
    except (TimeoutError, httpx.TimeoutException):
        return Attempt(False, "timeout", None, _since(started), "", f"no answer within {limit:g}s")
    except httpx.HTTPError as exc:
        return Attempt(False, "network_error", None, _since(started), "", _describe(exc))
    kind = classify(status)
    return Attempt(kind == SUCCEEDED, kind, status, _since(started), body, _error(kind, status))


async def _send(client: httpx.AsyncClient, request: httpx.Request, limit: int) -> tuple[int, str]:
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        chunks: list[bytes] = []
        size = 0
        if limit > 0:
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
                size += len(chunk)
                if size >= limit:
                    break
        body = b"".join(chunks)[:limit].decode("utf-8", "replace")
    finally:
        await response.aclose()
    return response.status_code, body


def _since(started: float) -> float:
    return time.perf_counter() - started


def _error(kind: str, status: int) -> str | None:
    if kind == SUCCEEDED:
        return None
    if kind == "redirect":
        return f"HTTP {status}: redirects are not followed"
    if kind == "gone":
        return "HTTP 410 Gone: the endpoint asked to be disabled"
    return f"HTTP {status}"


def _describe(exc: httpx.HTTPError) -> str:
    # the exception's text may quote the URL (a credential for some receivers): the type only
    return f"connection failed: {type(exc).__name__}"
