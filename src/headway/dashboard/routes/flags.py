"""Feature flags: list, toggle, rollout, targeting lists, evaluation, audit; new flags."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from headway.dashboard.core import PREFIX
from headway.dashboard.routes import page
from headway.dashboard.security import Session

if TYPE_CHECKING:
    from headway.dashboard.core import Dashboard

_SPLIT = re.compile(r"[\s,]+")
LIST_KINDS = ("allow", "block")


def add(d: Dashboard) -> None:
    if not d.has("flags"):
        return
    add_pages(d)
    add_actions(d)


def flag_url(key: str, tenant: str | None) -> str:
    return f"{PREFIX}/flags/{quote(key)}" + (f"?tenant={quote(tenant)}" if tenant else "")


def add_pages(d: Dashboard) -> None:
    @page(d, "/flags")
    async def flags(request: Request, session: Session) -> Response:
        rows = await d.hw.flags.list()
        return d.render(request, session, "flags.html", flags=rows)

    @page(d, "/flags/{key}")
    async def flag(request: Request, session: Session) -> Response:
        key = request.path_params["key"]
        params = request.query_params
        tenant = params.get("tenant") or None
        definition = await d.hw.flags.get(key, tenant)
        audit = await d.hw.flags.audit(key, tenant=tenant, limit=50)
        probe = {"user": params.get("user", ""), "eval_tenant": params.get("eval_tenant", "")}
        evaluation = None
        if "evaluate" in params:
            evaluation = d.hw.flags.evaluate_now(
                key, tenant=probe["eval_tenant"] or tenant, user=probe["user"] or None
            ).public()
        return d.render(
            request, session, "flag.html", flag=definition, tenant=tenant, audit=audit,
            probe=probe, evaluation=evaluation, url=flag_url(key, tenant),
        )  # fmt: skip


def _actor(session: Session) -> str:
    return f"dashboard:{session.actor}"


def _values(text: str) -> list[str]:
    return [v for v in _SPLIT.split(text.strip()) if v]


def add_actions(d: Dashboard) -> None:
    async def toggle(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        key, tenant = r.path_params["key"], form.get("tenant") or None
        current = await d.hw.flags.get(key, tenant)
        enabled = not current.get("enabled", True)
        await d.hw.flags.update(key, {"enabled": enabled}, tenant=tenant, actor=_actor(s))
        goto = form.get("next") or flag_url(key, tenant)
        goto = goto if goto.startswith(PREFIX + "/flags") else flag_url(key, tenant)
        return f"Flag {key} turned {'on' if enabled else 'off'}.", goto

    async def rollout(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        key, tenant = r.path_params["key"], form.get("tenant") or None
        text = form.get("rollout", "").strip()
        value: float | None = float(text) if text else None
        await d.hw.flags.update(key, {"rollout": value}, tenant=tenant, actor=_actor(s))
        shown = "removed" if value is None else f"set to {value:g} %"
        return f"Rollout of {key} {shown}.", flag_url(key, tenant)

    async def targets(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        key, tenant = r.path_params["key"], form.get("tenant") or None
        kind = form.get("kind", "")
        if kind not in LIST_KINDS:
            raise ValueError("kind must be allow or block")
        attribute = form.get("attribute", "").strip() or "user"
        current = await d.hw.flags.get(key, tenant)
        kept: list[dict[str, Any]] = [
            t for t in current.get(kind, []) if t["attribute"] != attribute
        ]
        values = _values(form.get("values", ""))
        if values:
            kept.append({"attribute": attribute, "values": values})
        await d.hw.flags.update(key, {kind: kept}, tenant=tenant, actor=_actor(s))
        return f"{kind.title()} list of {key} for {attribute}: {len(values)} value(s).", flag_url(
            key, tenant
        )

    async def create(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        key = form.get("key", "").strip()
        definition = {
            "key": key,
            "description": form.get("description", ""),
            "enabled": form.get("enabled") == "on",
        }
        await d.hw.flags.save(definition, actor=_actor(s), create=True)
        return f"Flag {key} created.", flag_url(key, None)

    d.action("flag_toggle", "/flags/{key}/toggle", toggle)
    d.action("flag_rollout", "/flags/{key}/rollout", rollout)
    d.action("flag_targets", "/flags/{key}/targets", targets)
    d.action("flag_create", "/flags-new", create)
