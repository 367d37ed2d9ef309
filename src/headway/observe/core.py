"""The ``observe`` capability: wires metrics, health, logs and alerts into the hub."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hmac
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote

import httpx
from prometheus_client import Counter, Gauge
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from headway import __version__
from headway.capability import Capability
from headway.errors import ConfigError
from headway.observe import health
from headway.observe.alerts import DEFAULT_RULES, AlertEvent, Evaluator, snapshot
from headway.observe.db import DbMetrics, pool_stats
from headway.observe.logs import ConsoleFormatter, JsonFormatter, LogSetup, Redactor
from headway.observe.metrics import HttpMetrics, HubRegistry, ProcessMetrics, multiprocess_dir
from headway.observe.middleware import ObserveMiddleware
from headway.observe.notifiers import (
    DiscordNotifier,
    EmailNotifier,
    Notifier,
    SlackNotifier,
    WebhookNotifier,
    send_all,
)
from headway.observe.settings import ObserveSettings, RuleSpec
from headway.settings import SECTIONS, load_section
from headway.web.errors import HTTPError
from headway.web.responses import ORJSONResponse

if TYPE_CHECKING:
    from headway.hub import Headway

__all__ = ["Observe"]

log = logging.getLogger("headway.observe")
SAMPLE_EVERY = 5.0
_SECRET_SUFFIXES = ("_token", "_secret", "_password", "_key")


class Observe(Capability):
    """Metrics at ``/metrics``, ``/health`` and ``/health/ready``, request logs, alerts.

    Always added by ``hw.install(app)``. Every other capability contributes through the
    hooks of :class:`~headway.capability.Capability` (``register_metrics``,
    ``refresh_metrics``, ``check_ready``); this class knows none of them.
    """

    name = "observe"

    def __init__(self, hw: Headway, settings: ObserveSettings | None = None) -> None:
        super().__init__(hw)
        self.settings = settings or load_section(ObserveSettings)
        self.registry = HubRegistry()
        self.http = HttpMetrics(self.registry)
        self.process = ProcessMetrics(self.registry)
        self.db = DbMetrics(self.registry)
        self._own_metrics()
        rules = [
            *(DEFAULT_RULES if self.settings.alert_defaults else ()),
            *self.settings.alert_rules,
        ]
        self.evaluator = Evaluator(rules, self.settings.alert_window, self.settings.alert_cooldown)
        self.redactor = Redactor(_secrets(hw, self.settings))
        self.notifiers: list[Notifier] = []
        self.started_at = time.time()
        self._registered: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._logs: LogSetup | None = None
        self._ready: tuple[float, health.ReadyReport] | None = None
        self._ready_lock = asyncio.Lock()
        self._leader_file: IO[str] | None = None
        self._add_admin_routes()

    def _own_metrics(self) -> None:
        reg = self.registry
        self.check_up = Gauge(
            "headway_check_up",
            "1 when the readiness check passed at its last run.",
            ["check"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.check_latency = Gauge(
            "headway_check_latency_seconds",
            "Latency of the last readiness check.",
            ["check"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.alerts_firing = Gauge(
            "headway_alerts_firing",
            "1 while an alert rule fires.",
            ["alert", "severity"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.notifications = Counter(
            "headway_alert_notifications",
            "Alert notifications sent.",
            ["notifier", "outcome"],
            registry=reg,
        )
        info = Gauge(
            "headway_info", "headway version.", ["version"], registry=reg, multiprocess_mode="max"
        )
        info.labels(__version__).set(1)

    # -- hooks into the other capabilities --------------------------------------------

    def _sync_capabilities(self, strict: bool = False) -> None:
        for capability in self.hw.capabilities.values():
            if id(capability) in self._registered:
                continue
            self._registered.add(id(capability))
            try:
                capability.register_metrics(self.registry)
            except Exception:
                if strict:
                    raise
                log.exception("register_metrics of %s failed", capability.name)

    async def refresh(self) -> None:
        """Bring sampled metrics up to date (capabilities' gauges, process, pools)."""
        self._sync_capabilities()
        self._discover_engines()
        self.process.sample()
        timeout = self.settings.check_timeout
        caps = list(self.hw.capabilities.values())

        async def one(capability: Capability) -> None:
            try:
                async with asyncio.timeout(timeout):
                    await capability.refresh_metrics()
            except Exception as exc:
                log.warning("refresh_metrics of %s failed: %s", capability.name, exc)

        await asyncio.gather(*(one(c) for c in caps))

    def _discover_engines(self) -> None:
        self.db.instrument(getattr(self.hw.connections, "_engines", {}).values())

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self.started_at = time.time()
        self._sync_capabilities(strict=True)
        with contextlib.suppress(Exception):  # created now (no connection yet) to instrument
            self.hw.connections.engine()  # it from the first query; the check reports errors
        self._discover_engines()
        self.process.sample()
        if self.settings.logs:
            self.configure_logging()
        self._client = httpx.AsyncClient(timeout=10.0)
        self.notifiers = [*_notifiers(self.settings, self._client), *self.notifiers]
        self._tasks.append(asyncio.create_task(self._sample_loop(), name="headway-observe"))
        if self.settings.alerts:
            self._tasks.append(asyncio.create_task(self._alert_loop(), name="headway-alerts"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self.notifiers = [n for n in self.notifiers if not hasattr(n, "client")]
        if self._logs is not None:
            self._logs.uninstall()
            self._logs = None
        if self._leader_file is not None:
            self._leader_file.close()
            self._leader_file = None
        self.db.detach()

    def configure_logging(self, stream: IO[str] | None = None) -> None:
        """Route every log record through one redacting handler (JSON or console)."""
        fmt = self.settings.log_format
        if fmt == "auto":
            fmt = "console" if self.hw.settings.env == "development" else "json"
        formatter = (JsonFormatter if fmt == "json" else ConsoleFormatter)(self.redactor)
        if self._logs is not None:
            self._logs.uninstall()
        self._logs = LogSetup(formatter, self.hw.settings.log_level, self.settings.access_log)
        self._logs.install(stream)

    async def _sample_loop(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_EVERY)
            self.process.sample()
            self._discover_engines()
            self.db.sample()

    async def _alert_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.alert_interval)
            try:
                await self.evaluate_alerts()
            except Exception:
                log.exception("alert evaluation failed")

    # -- web ----------------------------------------------------------------------------

    def install(self, app: Starlette) -> None:
        if not self.settings.enabled:
            return
        path = self.settings.health_path.rstrip("/") or "/health"
        routes = [
            Route(self.settings.metrics_path, self._metrics_endpoint, include_in_schema=False),
            Route(path, self._live_endpoint, include_in_schema=False),
            Route(f"{path}/ready", self._ready_endpoint, include_in_schema=False),
        ]
        _add_routes(app, routes)
        app.add_middleware(
            ObserveMiddleware,
            metrics=self.http,
            access=self.settings.access_log,
            on_request=self._discover_engines,
            quiet_paths=frozenset({self.settings.metrics_path, path, f"{path}/ready"}),
        )

    async def _metrics_endpoint(self, request: Request) -> Response:
        token = self.settings.metrics_token
        if token is not None and not (_bearer_matches(request, token) or self._is_admin(request)):
            raise HTTPError(
                401,
                "unauthorized",
                "metrics token required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        await self.refresh()
        body, content_type = self.registry.expose(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    async def _live_endpoint(self, request: Request) -> Response:
        return ORJSONResponse({"status": "ok"})

    async def _ready_endpoint(self, request: Request) -> Response:
        report = await self.ready()
        body = report.detail() if self._is_admin(request) else report.public()
        return ORJSONResponse(body, status_code=503 if report.status == "down" else 200)

    def _is_admin(self, request: Request) -> bool:
        try:
            self.hw.require_admin(request)
        except HTTPError:
            return False
        return True

    # -- health -------------------------------------------------------------------------

    async def ready(self, *, fresh: bool = False) -> health.ReadyReport:
        """Run every readiness check (answers reused for ``ready_cache`` seconds)."""
        async with self._ready_lock:
            now = time.monotonic()
            if not fresh and self._ready and now - self._ready[0] < self.settings.ready_cache:
                return self._ready[1]
            reports = await health.run_checks(
                health.checks_of(self.hw), self.settings.check_timeout
            )
            for r in reports:
                self.check_up.labels(r.name).set(1 if r.ok else 0)
                self.check_latency.labels(r.name).set(r.latency_ms / 1000)
            report = health.ReadyReport(
                health.overall(reports), time.time() - self.started_at, reports, self._pool()
            )
            self._ready = (time.monotonic(), report)
            return report

    def _pool(self) -> dict[str, int] | None:
        try:
            return pool_stats(self.hw.connections.engine())
        except Exception:  # no engine can be built: the database check says why
            return None

    # -- alerts -------------------------------------------------------------------------

    def add_rule(self, rule: RuleSpec) -> None:
        """Add (or replace) an alert rule."""
        self.evaluator.add_rule(rule)

    def add_notifier(self, notifier: Notifier) -> None:
        self.notifiers.append(notifier)

    async def evaluate_alerts(self, now: float | None = None) -> list[AlertEvent]:
        """Evaluate every rule once and send the notifications due (leader process only)."""
        if not self._leader():
            return []
        await self.refresh()
        await self.ready(fresh=True)
        events = self.evaluator.evaluate(snapshot(self.registry.scrape_view()), now)
        for state in self.evaluator.states.values():
            self.alerts_firing.labels(state.rule.name, state.rule.severity).set(int(state.firing))
        for event in events:
            level = logging.INFO if event.status == "resolved" else logging.WARNING
            log.log(level, "alert %s", event.text(), extra={"alert": event.rule})
            delivered = await send_all(self.notifiers, event)
            for name, ok in delivered.items():
                self.notifications.labels(name, "sent" if ok else "failed").inc()
        return events

    def _leader(self) -> bool:
        """With several worker processes, one of them (holding a file lock) alerts."""
        path = multiprocess_dir()
        if path is None or self._leader_file is not None:
            return True
        handle = Path(path, "headway-alerts.lock").open("a")  # noqa: SIM115 - held while leader
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._leader_file = handle
        return True

    def _add_admin_routes(self) -> None:
        router = self.hw.admin_router

        @router.get("/health", summary="Readiness with every check's detail")
        async def admin_health() -> dict[str, Any]:
            return (await self.ready()).detail()

        @router.get("/alerts", summary="Alert rules and their state")
        async def admin_alerts() -> dict[str, Any]:
            return {
                "notifiers": [n.name for n in self.notifiers],
                "rules": [
                    {**s.rule.model_dump(), "firing": s.firing, "value": s.value}
                    for s in self.evaluator.states.values()
                ],
            }


def _add_routes(app: Starlette, routes: Iterable[BaseRoute]) -> None:
    """Append routes, but before a catch-all Mount at "/" (the admin sub-app of a
    plain Starlette app), which would otherwise shadow them."""
    table = app.router.routes
    at = next((i for i, r in enumerate(table) if isinstance(r, Mount) and r.path == ""), None)
    for route in routes:
        if at is None:
            table.append(route)
        else:
            table.insert(at, route)
            at += 1


def _bearer_matches(request: Request, token: SecretStr) -> bool:
    auth = request.headers.get("authorization", "")
    supplied = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    return bool(supplied) and hmac.compare_digest(
        supplied.encode(), token.get_secret_value().encode()
    )


def _notifiers(settings: ObserveSettings, client: httpx.AsyncClient) -> list[Notifier]:
    out: list[Notifier] = []
    if settings.slack_webhook_url:
        out.append(SlackNotifier(settings.slack_webhook_url.get_secret_value(), client))
    if settings.discord_webhook_url:
        out.append(DiscordNotifier(settings.discord_webhook_url.get_secret_value(), client))
    if settings.webhook_url:
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        out.append(WebhookNotifier(settings.webhook_url.get_secret_value(), client, secret))
    if settings.smtp_url and settings.email_to:
        out.append(
            EmailNotifier(
                settings.smtp_url.get_secret_value(), settings.email_from, settings.email_to
            )
        )
    return out


def _secrets(hw: Headway, settings: ObserveSettings) -> list[str]:
    """Every secret value the configuration knows, for the log redactor."""
    found: list[str] = []
    objects: list[Any] = [hw.settings, settings]
    for cls in SECTIONS.values():
        if cls is not ObserveSettings:
            with contextlib.suppress(ConfigError):
                objects.append(load_section(cls))
    for obj in objects:
        for name in type(obj).model_fields:
            found.extend(_secret_values(name, getattr(obj, name, None)))
    return found


def _secret_values(name: str, value: Any) -> list[str]:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
        return [value, *_url_password(value)]
    if not isinstance(value, str) or not value:
        return []
    if name in ("admin_token", "secret_key") or name.endswith(_SECRET_SUFFIXES):
        return [value]
    return _url_password(value)


def _url_password(value: str) -> list[str]:
    # the user info ends at the last "@" (as in settings.mask_url)
    _, sep, rest = value.partition("://")
    at = rest.rfind("@")
    if not sep or at < 0:
        return []
    password = rest[:at].partition(":")[2]
    return [password, unquote(password)] if password else []
