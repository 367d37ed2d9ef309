"""Helpers for the capabilities' metric tests: a hub + app with observe, a parsed scrape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from headway import Headway, Settings
from headway.observe import Observe, ObserveSettings

ADMIN = "metrics-admin-token-0123456789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@asynccontextmanager
async def serve(
    tmp_path: Path, add: Callable[[Headway], Any], **observe: Any
) -> AsyncIterator[tuple[Headway, httpx.AsyncClient]]:
    """A started hub whose capabilities ``add(hw)`` creates, installed on a FastAPI app."""
    hw = Headway(
        Settings(
            data_dir=tmp_path / ".headway",
            database_url=f"sqlite:///{tmp_path / 'hub.db'}",
            admin_token=ADMIN,
        )
    )
    options: dict[str, Any] = {"alerts": False, "logs": False, "ready_cache": 0, **observe}
    hw.add(Observe(hw, ObserveSettings(**options)))
    add(hw)
    app = FastAPI()
    hw.install(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield hw, client


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(ls)[label] for (n, ls) in samples if n == name and label in dict(ls)}


async def ready(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/health/ready", headers={"Authorization": f"Bearer {ADMIN}"})
    body: dict[str, Any] = response.json()
    return response.status_code, body
