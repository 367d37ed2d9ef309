"""``hw.breakers``: declares breakers, keeps their local state current, manages them.

Local state is refreshed three ways: the answer of every backend operation, the
backend's transition messages (Redis pub/sub), and a full re-read every
``sync_interval`` and after a (re)subscription. When the shared backend fails, each
operation runs on in-process state (seeded with the last shared state) for
``retry_after`` seconds, so the breakers keep protecting while Redis is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from headway import registry
from headway.capability import Capability, Readiness
from headway.observe.totals import Totals
from headway.resilience.backends.memory import MemoryBreakerBackend
from headway.resilience.base import CLOSED, BreakerBackend, ForceMode, Snapshot
from headway.resilience.breaker import MISSING, Breaker, UnknownBreakerError
from headway.resilience.policy import Policy
from headway.resilience.settings import BreakersSettings
from headway.settings import load_section

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from starlette.applications import Starlette

    from headway.hub import Headway

log = logging.getLogger("headway.resilience")
Transition = Callable[[Breaker, str, str], Any]  # (breaker, before, after)


class Breakers(Capability):
    """``hw.breakers``: ``breaker(name, ...)``, ``list()``, ``reset/force_open/force_close``."""

    name = "breakers"

    def __init__(
        self,
        hw: Headway,
        settings: BreakersSettings | None = None,
        *,
        url: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(hw)
        self.settings = s = settings or load_section(BreakersSettings)
        self.url = url or hw.settings.backend_url("resilience")
        self.clock = clock or time.time
        backend_cls = registry.resolve("resilience", self.url)
        self.backend: BreakerBackend = backend_cls(
            self.url, hw.connections, prefix=s.prefix, clock=clock
        )
        self.local = MemoryBreakerBackend(clock=clock)
        self.listening = False
        self.transitions = 0
        self.last_error = ""
        self._breakers: dict[str, Breaker] = {}
        self._callbacks: list[Transition] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._down_until = 0.0
        self._started = False
        self._routes = False

    # -- declaring ----------------------------------------------------------------------

    def breaker(
        self,
        name: str,
        *,
        exceptions: tuple[type[BaseException], ...] = (Exception,),
        ignore: tuple[type[BaseException], ...] = (),
        fallback: Any = MISSING,
        **policy: Any,
    ) -> Breaker:
        """Declare breaker ``name`` (policy options override ``HEADWAY_BREAKERS_*``), or
        return it when it exists and no option is given."""
        existing = self._breakers.get(name)
        custom = policy or fallback is not MISSING or ignore or exceptions != (Exception,)
        if existing is not None:
            if custom:
                raise ValueError(f"breaker {name!r} is already declared")
            return existing
        if not name or len(name) > 100 or any(c in name for c in "{}*?[] "):
            raise ValueError(f"invalid breaker name {name!r}")
        made = Breaker(
            self,
            name,
            Policy.from_settings(self.settings, **policy),
            exceptions=exceptions,
            ignore=ignore,
            fallback=fallback,
        )
        self._breakers[name] = made
        if self._started:
            self._spawn(self._adopt(made), f"headway-breaker-{name}")
        return made

    def get(self, name: str) -> Breaker:
        try:
            return self._breakers[name]
        except KeyError:
            raise UnknownBreakerError(name) from None

    def __iter__(self) -> Any:
        return iter(list(self._breakers.values()))

    def on_transition(self, callback: Transition) -> Transition:
        """Call ``callback(breaker, before, after)`` on every state change seen here."""
        self._callbacks.append(callback)
        return callback

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._started = True
        if self._totals is not None:
            self._totals.start()
        for b in list(self._breakers.values()):
            await self._adopt(b)
        self._spawn(self._flusher(), "headway-breakers-flush")
        self._spawn(self._resync(), "headway-breakers-sync")
        if self.backend.shared:
            self._spawn(self._listen(), "headway-breakers-listen")

    async def stop(self) -> None:
        if self._totals is not None:
            await self._totals.stop()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._started:
            for b in self._breakers.values():
                with contextlib.suppress(Exception):
                    await b.flush()
        self._started = self.listening = False
        await self.backend.close()

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        self._tasks = [t for t in self._tasks if not t.done()]

    async def _adopt(self, b: Breaker) -> None:
        try:
            await self.backend.register([b.name])
        except Exception as exc:
            self._failed(exc)
        await self.op(b, "read")

    # -- every backend operation goes through here ----------------------------------------

    async def op(self, b: Breaker, kind: str, *args: Any) -> Snapshot:
        """Run ``backend.<kind>(name, policy, *args)``; on failure, on local state."""
        if time.monotonic() >= self._down_until:
            try:
                snap: Snapshot = await getattr(self.backend, kind)(b.name, b.policy, *args)
            except Exception as exc:
                self._failed(exc)
            else:
                self.apply(b, snap, local=False)
                return snap
        if not b.local:  # switching to local state: start from the last shared one
            generation = self.local.seed(b.name, b.snap)
            if kind == "record":  # outcomes of calls admitted under the shared state
                args = (args[0], generation)
        snap = await getattr(self.local, kind)(b.name, b.policy, *args)
        self.apply(b, snap, local=True)
        return snap

    def _failed(self, exc: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            log.warning("breaker state %s unreachable (%s); using local state", self.url, exc)
        self._down_until = time.monotonic() + self.settings.retry_after
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]

    def apply(self, b: Breaker, snap: Snapshot, *, local: bool) -> None:
        """Adopt a snapshot unless it is older than the one held (same source)."""
        old = b.snap
        if local == b.local and snap.generation < old.generation:
            return
        b.snap, b.local = snap, local
        if snap.now:
            b.offset = snap.now - self.clock()
        if snap.state != old.state:
            self._transition(b, old.state, snap.state)

    def _transition(self, b: Breaker, before: str, after: str) -> None:
        self.transitions += 1
        level = logging.INFO if after == CLOSED else logging.WARNING
        log.log(level, "circuit breaker %r: %s -> %s", b.name, before, after)
        if self._metrics is not None:
            self._metrics["transitions"].labels(b.name, after).inc()
        for callback in self._callbacks:
            try:
                callback(b, before, after)
            except Exception:
                log.exception("breaker transition callback failed")

    # -- background tasks -------------------------------------------------------------------

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.settings.flush_interval)
            for b in list(self._breakers.values()):
                if b.pending:
                    await b.flush()

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sync_interval)
            await self.sync()

    async def sync(self) -> None:
        """Re-read every breaker's shared state."""
        for b in list(self._breakers.values()):
            await self.op(b, "read")

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self.backend.listen(self._on_message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.listening:
                    log.warning("breaker transition channel lost (%s)", exc)
                self.listening = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _on_message(self, snap: Snapshot | None) -> None:
        if snap is None:  # (re)subscribed: read everything again
            self.listening = True
            self._spawn(self.sync(), "headway-breakers-resync")
            return
        b = self._breakers.get(snap.name)
        if b is not None and not b.local and snap.generation > b.snap.generation:
            self.apply(b, snap, local=False)

    # -- management -------------------------------------------------------------------------

    async def resolve(self, name: str) -> Breaker:
        """A declared breaker, or one another process declared (the CLI's case)."""
        if name in self._breakers:
            return self._breakers[name]
        try:
            known = await self.backend.names()
        except Exception as exc:
            self._failed(exc)
            known = []
        if name not in known:
            raise UnknownBreakerError(name)
        return self.breaker(name)

    async def names(self) -> list[str]:
        try:
            others = await self.backend.names()
        except Exception as exc:
            self._failed(exc)
            others = []
        return sorted(set(self._breakers) | set(others))

    async def describe(self, name: str) -> dict[str, Any]:
        b = await self.resolve(name)
        snap = await self.op(b, "read")
        return {
            **snap.public(),
            "local_fallback": b.local,
            "policy": _policy_view(b.policy),
            "calls_here": dict(b.stats),
        }

    async def list(self) -> list[dict[str, Any]]:
        return [await self.describe(name) for name in await self.names()]

    async def _force(self, name: str, mode: ForceMode) -> dict[str, Any]:
        b = await self.resolve(name)
        b.pending = []
        await self.op(b, "force", mode)
        log.warning("circuit breaker %r: %s by an operator", name, mode)
        return await self.describe(name)

    async def reset(self, name: str) -> dict[str, Any]:
        """Closed, window emptied, no longer forced."""
        return await self._force(name, "reset")

    async def force_open(self, name: str) -> dict[str, Any]:
        """Open until reset or force_close (no half-open trials)."""
        return await self._force(name, "open")

    async def force_close(self, name: str) -> dict[str, Any]:
        """Closed until reset or force_open (failures are counted, never trip it)."""
        return await self._force(name, "closed")

    # -- hub hooks --------------------------------------------------------------------------

    _metrics: dict[str, Any] | None = None
    _totals: Totals | None = None

    def install(self, app: Starlette) -> None:
        if not self._routes:
            from headway.resilience.api import add_routes

            add_routes(self)
            self._routes = True

    def register_metrics(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge

        self._metrics = {
            "transitions": Counter(
                "headway_breakers_transitions_total",
                "Breaker state changes seen by this process.",
                ["breaker", "state"],
                registry=registry,
            ),
            "calls": Counter(
                "headway_breakers_calls_total",
                "Calls through breakers by outcome.",
                ["breaker", "outcome"],
                registry=registry,
            ),
            "state": Gauge(
                "headway_breakers_state",
                "0 closed, 1 half-open, 2 open.",
                ["breaker"],
                registry=registry,
                multiprocess_mode="mostrecent",
            ),
        }
        # Calls are counted in plain ints on the hot path and folded into the counter
        # in every process (headway.observe.totals), not only in the scraping one.
        self._totals = Totals(self._fold_calls)
        self._totals.start()

    def _fold_calls(self) -> None:
        if self._metrics is None or self._totals is None:
            return
        calls = self._metrics["calls"]
        for b in self._breakers.values():
            for outcome, total in b.stats.items():
                self._totals.add((b.name, outcome), calls, (b.name, outcome), total)

    async def refresh_metrics(self) -> None:
        if self._metrics is None:
            return
        levels = {"closed": 0, "half_open": 1, "open": 2}
        for b in self._breakers.values():
            self._metrics["state"].labels(b.name).set(levels.get(b.state, 2))
        if self._totals is not None:
            self._totals.flush()

    async def check_ready(self) -> Readiness | None:
        opened = sorted(b.name for b in self._breakers.values() if b.state != CLOSED)
        detail = {"open": opened, "local_fallback": time.monotonic() < self._down_until}
        return Readiness(ok=True, detail=detail, critical=False)


def _policy_view(policy: Policy) -> dict[str, Any]:
    return asdict(policy)
