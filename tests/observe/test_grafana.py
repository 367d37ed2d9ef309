"""The Grafana dashboard imports as JSON and only queries metrics the app exports."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from tests.observe.conftest import Factory, build_app

from headway import Headway

# every built-in capability that has panels: each exports its families through its hook
CAPABILITIES = ("cache", "limits", "flags", "breakers", "jobs")

FUNCTIONS_AND_KEYWORDS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "label_values", "abs", "clamp_min", "topk", "le",
}  # fmt: skip


SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count", ""),
}


def dashboard() -> dict[str, Any]:
    text = resources.files("headway.observe").joinpath("grafana/headway.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return {w for w in words if w not in FUNCTIONS_AND_KEYWORDS and not w.startswith("__")}


def queries(data: dict[str, Any]) -> list[str]:
    found = [t["expr"] for p in data["panels"] for t in p.get("targets", [])]
    for var in data["templating"]["list"]:
        if var["type"] == "query":  # label_values(metric, label): the metric only
            found.append(re.sub(r"label_values\((\w+),\s*\w+\)", r"\1", var["query"]))
    return found


def app_with_capabilities(hw: Headway) -> FastAPI:
    for name in CAPABILITIES:
        getattr(hw, name)
    return build_app(hw)


async def test_every_dashboard_query_names_an_exported_metric(make: Factory) -> None:
    async with make(app_factory=app_with_capabilities) as (_, client, _):
        await client.get("/items/1")
        await client.get("/query")
        await client.get("/health/ready")
        text = (await client.get("/metrics")).text
    exported: set[str] = set()
    for family in text_string_to_metric_families(text):
        # declared families count even before their first labelled sample
        suffixes = SUFFIXES.get(family.type, ("",))
        exported |= {family.name + suffix for suffix in suffixes}
        exported |= {sample.name for sample in family.samples}
    data = dashboard()
    exprs = queries(data)
    assert len(exprs) >= 20
    used = set().union(*(metric_names(e) for e in exprs))
    assert used, "no metric found in the dashboard"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    assert {"http_requests_total", "headway_db_pool_checked_out"} <= used
    for prefix in ("headway_cache_", "headway_limits_", "headway_flags_", "headway_breakers_"):
        assert any(name.startswith(prefix) for name in used), f"no panel for {prefix}*"
    assert "headway_jobs_jobs" in used


def test_dashboard_shape() -> None:
    data = dashboard()
    assert data["uid"] and data["title"] == "headway"
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
