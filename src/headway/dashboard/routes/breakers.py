"""Circuit breakers: state and counts; force open, force closed, reset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from headway.dashboard.core import PREFIX
from headway.dashboard.routes import page
from headway.dashboard.security import Session

if TYPE_CHECKING:
    from headway.dashboard.core import Dashboard


def add(d: Dashboard) -> None:
    if not d.has("breakers"):
        return

    @page(d, "/breakers")
    async def breakers(request: Request, session: Session) -> Response:
        rows = await d.hw.breakers.list()
        return d.render(request, session, "breakers.html", breakers=rows)

    @page(d, "/breakers/live")
    async def breakers_live(request: Request, session: Session) -> Response:
        rows = await d.hw.breakers.list()
        return d.render(request, session, "_breakers.html", breakers=rows)

    async def force_open(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        name = r.path_params["name"]
        await d.hw.breakers.force_open(name)
        return f"Breaker {name} forced open.", PREFIX + "/breakers"

    async def force_close(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        name = r.path_params["name"]
        await d.hw.breakers.force_close(name)
        return f"Breaker {name} forced closed.", PREFIX + "/breakers"

    async def reset(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        name = r.path_params["name"]
        await d.hw.breakers.reset(name)
        return f"Breaker {name} reset (closed, window emptied).", PREFIX + "/breakers"

    d.action("breaker_open", "/breakers/{name}/open", force_open)
    d.action("breaker_close", "/breakers/{name}/close", force_close)
    d.action("breaker_reset", "/breakers/{name}/reset", reset)
