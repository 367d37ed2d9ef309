"""The reference service with two test tasks and a test-only route, for the browser tests.

``uvicorn tests.dashboard.browser_app:create --factory``; settings from ``HEADWAY_*``.
``browser.flaky`` fails on its first run and succeeds on the next (a marker file in
``DASHBOARD_TEST_DIR``), so that a person can retry it from the dashboard and see it pass.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from headway import Headway
from headway.demo.app import create_app
from headway.workflows import approval


def create() -> FastAPI:
    hw = Headway()
    marker = Path(os.environ["DASHBOARD_TEST_DIR"]) / "flaky-ran-once"

    @hw.jobs.task(name="browser.slow", queue="low", retries=0)
    async def slow(n: int, seconds: float = 0.3) -> int:
        await asyncio.sleep(seconds)
        return n

    @hw.jobs.task(name="browser.flaky", queue="low", retries=0)
    async def flaky() -> str:
        if not marker.exists():
            marker.touch()
            raise RuntimeError("the first run fails on purpose")
        return "fine on the second run"

    @hw.jobs.task(name="browser.draft", retries=0)
    async def draft(topic: str) -> str:
        return f"a post about {topic}"

    @hw.jobs.task(name="browser.publish", retries=0)
    async def publish(text: str) -> dict[str, str]:
        return {"published": text}

    hw.workflows.chain("publish-post", draft, approval("review", role="editor"), publish)
    hw.webhooks
    app = create_app(hw=hw)

    @app.post("/_test/webhook")
    async def webhook(url: str) -> dict[str, Any]:
        endpoint = await hw.webhooks.create_endpoint("acme", url, description="CRM sync")
        sent = await hw.webhooks.send("acme", "post.published", {"id": 7})
        return {"endpoint": endpoint.id, "message": sent.message_id}

    @app.post("/_test/workflow")
    async def start_workflow(topic: str) -> dict[str, Any]:
        run = await hw.workflows.start("publish-post", topic, tenant="acme", user_id="u1")
        return {"id": run.id}

    @app.post("/_test/enqueue")
    async def enqueue(task: str, n: int = 1) -> dict[str, Any]:
        if task == "slow":
            handles = [await slow.options(tenant="acme").enqueue(i) for i in range(n)]
        else:
            handles = [await flaky.options(tenant="globex").enqueue()]
        return {"ids": [h.id for h in handles]}

    @app.get("/_test/cached/{key}")
    async def cached(key: str) -> dict[str, Any]:
        async def load() -> str:
            return key.upper()

        return {"value": await hw.cache.get_or_set(f"page:{key}", load, ttl=60)}

    return app
