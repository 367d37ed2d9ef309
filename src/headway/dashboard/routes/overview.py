"""The overview: health of each dependency and the live charts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from headway.dashboard.charts import Chart, sparkline
from headway.dashboard.routes import page
from headway.dashboard.security import Session

if TYPE_CHECKING:
    from headway.dashboard.core import Dashboard


def add(d: Dashboard) -> None:
    @page(d, "/")
    async def overview(request: Request, session: Session) -> Response:
        return d.render(request, session, "overview.html", **await _live(d))

    @page(d, "/overview/live")
    async def overview_live(request: Request, session: Session) -> Response:
        return d.render(request, session, "_overview_live.html", **await _live(d))


async def _live(d: Dashboard) -> dict[str, Any]:
    await d.sampler.sample()
    points = d.sampler.points()
    charts: list[Chart] = [
        sparkline("Requests/s", [p.rps for p in points]),
        sparkline("p95 latency", [p.p95_ms for p in points], " ms"),
        sparkline("Error rate", [p.error_rate for p in points], " %"),
    ]
    if d.has("cache"):
        charts.append(sparkline("Cache hit ratio", [p.hit_ratio for p in points], " %"))
    if d.has("jobs"):
        charts.append(sparkline("Jobs pending", [float(p.pending) for p in points], whole=True))
        charts.append(sparkline("Jobs finished/s", [p.jobs_per_s for p in points]))
    observe: Any = d.hw.capability("observe")
    report = await observe.ready()
    latest = d.sampler.samples[-1] if d.sampler.samples else None
    return {
        "charts": charts,
        "report": report,
        "depths": sorted((latest.pending if latest else {}).items()),
        "span": (points[-1].at - points[0].at) if len(points) > 1 else 0.0,
    }
