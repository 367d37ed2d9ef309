"""The HTML report: Locust's own (percentiles per endpoint; charts of throughput, p50/p95
latency and users over time) with headway's criteria summary on top."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from headway.loadtest.criteria import Outcome
from headway.loadtest.scenarios import Scenario

__all__ = ["summary_html", "write_report"]

_STYLE = "font-family:sans-serif;margin:16px;padding:12px;border:1px solid #ccc;border-radius:6px;"


def summary_html(scenario: Scenario, outcomes: list[Outcome], results: dict[str, Any]) -> str:
    """A self-contained section: verdict, criteria table, and the stress break point."""
    ok = all(o.ok for o in outcomes)
    rows = "".join(
        f"<tr><td>{escape(o.name)}</td><td>{escape(o.value)}</td><td>{escape(o.limit)}</td>"
        f"<td style='color:{'green' if o.ok else 'red'}'>{'pass' if o.ok else 'FAIL'}</td></tr>"
        for o in outcomes
    )
    total = results["total"]
    figures = (
        f"{total['requests']} requests in {results['seconds']} s, "
        f"{total['rps']} req/s, p50 {total['median_ms']} ms, p95 {total['p95_ms']} ms, "
        f"p99 {total['p99_ms']} ms, max {total['max_ms']:.0f} ms, "
        f"peak users {results['max_users']}"
    )
    stress = results.get("stress") or {}
    broke = stress.get("broke")
    extra = f"<p>break point: {escape(str(broke))}</p>" if broke else ""
    verdict = "PASSED" if ok else "FAILED"
    return (
        f"<section id='headway-criteria' style='{_STYLE}'>"
        f"<h2>headway loadtest {escape(scenario.name)}: {verdict}</h2>"
        f"<p>{escape(scenario.description)}</p><p>{escape(figures)}</p>{extra}"
        "<table border='1' cellpadding='4' style='border-collapse:collapse'>"
        "<tr><th>criterion</th><th>measured</th><th>limit</th><th></th></tr>"
        f"{rows}</table></section>"
    )


def write_report(
    path: Path, locust_html: str, scenario: Scenario, outcomes: list[Outcome], results: Any
) -> Path:
    """Locust's HTML with the summary inserted right after ``<body>``."""
    section = summary_html(scenario, outcomes, results)
    at = locust_html.find(">", locust_html.find("<body")) + 1
    html = locust_html[:at] + section + locust_html[at:] if at > 0 else section + locust_html
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
