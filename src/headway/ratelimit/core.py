"""``hw.limits``: policies, rules, the check path and the integration points."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from starlette.types import Scope

from headway import registry
from headway.capability import Capability, Readiness
from headway.errors import BackendUnavailableError
from headway.ratelimit.base import Algorithm, Check, LimitBackend, Outcome, validate
from headway.ratelimit.clientip import ClientIP
from headway.ratelimit.coalesce import Coalescer
from headway.ratelimit.decision import Decision, Result
from headway.ratelimit.faults import Metrics, ThrottledLog
from headway.ratelimit.integration import Dependency, make_decorator, make_dependency
from headway.ratelimit.lease import Checker, LeaseCache
from headway.ratelimit.plan import SLOW, Answer, Plan
from headway.ratelimit.policy import PLAN, Identity, Policy, ScopePart, hashed, limit_key
from headway.ratelimit.rate import Rate
from headway.ratelimit.settings import RateLimitSettings
from headway.ratelimit.subject import Subject
from headway.settings import load_section

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from starlette.applications import Starlette

    from headway.hub import Headway
    from headway.ratelimit.metrics import LimitMetrics

P = ParamSpec("P")
R = TypeVar("R")
IdentifyFn = Callable[[Scope], Awaitable[Identity | None]]
IDENTITY_STATE = "headway.ratelimit.identity"
CACHE_MAX = 10_000
MOST_LIMITED_KEEP = 500  # heavy hitters kept per process for most_limited()

DEFAULT_SCOPES: dict[str, tuple[ScopePart, ...]] = {
    "default": ("ip",),
    "auth": ("ip",),
    "api": ("api_key",),
    "upload": ("tenant",),
    "admin": ("user",),
}


@dataclass(frozen=True, slots=True)
class Rule:
    """Middleware rule: requests whose path starts with ``prefix`` pass ``policies``."""

    prefix: str
    policies: tuple[str, ...]
    methods: frozenset[str] | None = None

    def applies(self, path: str, method: str) -> bool:
        return path.startswith(self.prefix) and (self.methods is None or method in self.methods)


_UNKNOWN: Any = object()
# scope parts that, for a caller without identity, make the key from the address alone
_ADDRESS_ONLY = frozenset({"ip", "global", "tenant", "user"})


class _Direct:
    def __init__(self, backend: LimitBackend) -> None:
        self.backend = backend

    async def run(self, checks: Sequence[Check]) -> list[Outcome]:
        return await self.backend.hit(checks)

    async def one(self, check: Check) -> Outcome:
        return (await self.backend.hit([check]))[0]


class RateLimits(Capability):
    """Rate limiting: ``hw.limits``. See the package docstring for the tour."""

    name = "limits"

    def __init__(
        self,
        hw: Headway,
        settings: RateLimitSettings | None = None,
        *,
        backend: LimitBackend | None = None,
    ) -> None:
        super().__init__(hw)
        self.settings = settings or load_section(RateLimitSettings)
        self.client_ip = ClientIP(self.settings.trusted_proxies, self.settings.ipv6_prefix)
        self.policies: dict[str, Policy] = {}
        self.rules: list[Rule] = []
        self.identify: IdentifyFn | None = None
        self.metrics = Metrics()
        self.backend_errors = 0  # checks that found the backend unavailable
        # (policy, key) -> denials in this process: the most-limited keys (bounded)
        self.denied_keys: Counter[tuple[str, str]] = Counter()
        self.exported: LimitMetrics | None = None  # set by register_metrics
        self.log = ThrottledLog(self.settings.log_interval)
        self._backend = backend
        self._checker: Checker | None = None
        self._running = False
        # hot-path caches (bounded; the routing one is dropped when a rule or policy changes)
        self._routing: dict[tuple[str, str], list[Policy]] = {}
        self._routing_rules = 0
        self._keys: dict[tuple[str, str, str | None], str] = {}
        self._checks: dict[tuple[Algorithm, str, int, int, int, int], Check] = {}
        # (policy, client ip) -> the request's check when it depends on nothing else
        self._plans: dict[tuple[str, str | None], Plan | None] = {}
        # (path, method, peer) -> its Plan, None (no policy applies) or SLOW
        self._fast: dict[tuple[str, str, str | None], Any] = {}
        # the checker in lease mode, once made (the middleware takes local units from it)
        self.lease: LeaseCache | None = None
        self._load_policies()

    # -- configuration ----------------------------------------------------------------

    def _load_policies(self) -> None:
        s = self.settings
        for name, rate in s.policies.items():
            self.policy(name, rate, scope=DEFAULT_SCOPES.get(name, ("ip",)))
        tiers = {plan: Rate.parse(rate) for plan, rate in s.plans.items()}
        default = tiers.get(s.default_plan) or Rate.parse("500/minute")
        self.policies[PLAN] = Policy(
            PLAN,
            default,
            s.algorithm,
            ("tenant",),
            fail_open=PLAN not in s.fail_closed,
            tiers=tiers,
            default_tier=s.default_plan,
            anonymous=Rate.parse(s.anonymous),
        )

    def policy(
        self,
        name: str,
        rate: str | Rate,
        *,
        algorithm: Algorithm | str | None = None,
        scope: ScopePart | Sequence[ScopePart] = "ip",
        burst: int = 0,
        cost: int = 1,
        fail_open: bool | None = None,
    ) -> Policy:
        """Define (or replace) the named policy ``name``."""
        parts = (scope,) if isinstance(scope, str) or callable(scope) else tuple(scope)
        policy = Policy(
            name=name,
            rate=Rate.parse(rate),
            algorithm=Algorithm(algorithm or self.settings.algorithm),
            scope=parts,
            burst=burst,
            cost=cost,
            fail_open=(name not in self.settings.fail_closed) if fail_open is None else fail_open,
        )
        self.policies[name] = policy
        self._routing.clear()
        self._plans.clear()
        self._fast.clear()
        return policy

    def protect(self, prefix: str, *policies: str, methods: Iterable[str] | None = None) -> Rule:
        """Make the middleware check ``policies`` on every request under ``prefix``."""
        for name in policies:
            self.get_policy(name)
        rule = Rule(prefix, policies, frozenset(m.upper() for m in methods) if methods else None)
        self.rules.append(rule)
        self._routing.clear()
        self._fast.clear()
        return rule

    def get_policy(self, policy: str | Policy) -> Policy:
        if isinstance(policy, Policy):
            return policy
        try:
            return self.policies[policy]
        except KeyError:
            raise KeyError(
                f"no rate-limit policy {policy!r}; known: {sorted(self.policies)}"
            ) from None

    def policies_for(self, path: str, method: str) -> list[Policy]:
        """The policies of the rules that apply (cached per path and method; the cache
        is dropped when a rule or policy is added, or the rule list changes length)."""
        return list(self.routed(path, method))

    def routed(self, path: str, method: str) -> list[Policy]:
        """:meth:`policies_for` without the copy: the cached list, not to be changed."""
        if self._routing_rules != len(self.rules):
            self._routing.clear()
            self._fast.clear()
            self._routing_rules = len(self.rules)
        found = self._routing.get((path, method))
        if found is None:
            found = self._policies_for(path, method)
            if len(self._routing) >= CACHE_MAX:
                self._routing.clear()
            self._routing[(path, method)] = found
        return found

    def _policies_for(self, path: str, method: str) -> list[Policy]:
        names: list[str] = []
        for rule in self.rules:
            if rule.applies(path, method):
                names.extend(n for n in rule.policies if n not in names)
        return [self.policies[n] for n in names]

    # -- lifecycle --------------------------------------------------------------------

    @property
    def backend(self) -> LimitBackend:
        if self._backend is None:
            url = self.hw.settings.backend_url("limits")
            cls = registry.resolve("limits", url)
            self._backend = cls(url, self.hw.connections, prefix=self.settings.key_prefix)
        return self._backend

    @property
    def checker(self) -> Checker:
        if self._checker is None:
            s = self.settings
            inner: Checker = (
                _Direct(self.backend) if s.mode == "direct" else Coalescer(self.backend)
            )
            if s.mode == "lease":
                self._checker = self.lease = LeaseCache(inner, s.lease_size, s.lease_ttl)
            else:
                self._checker = inner
        return self._checker

    async def start(self) -> None:
        self._running = True
        if self.exported is not None:
            self.exported.totals.start()
        try:
            await self.backend.open()
        except BackendUnavailableError as exc:  # fail-open policies keep the app up
            self.log.log(logging.WARNING, "start", "rate-limit backend down at start: %s", exc)

    async def stop(self) -> None:
        self._running = False
        if self.exported is not None:
            await self.exported.totals.stop()
        for checker in (self._checker, getattr(self._checker, "inner", None)):
            if isinstance(checker, Coalescer | LeaseCache):
                await checker.drain()
        if self._backend is not None:
            await self._backend.close()

    def install(self, app: Starlette) -> None:
        from headway.ratelimit.middleware import RateLimitMiddleware

        app.add_middleware(RateLimitMiddleware, limits=self)

    # -- checking ---------------------------------------------------------------------

    async def hit(
        self, policy: str | Policy, key: str, *, tenant: str | None = None, cost: int | None = None
    ) -> Decision:
        """Count one use of ``policy`` by ``key`` (within ``tenant``); never raises 429.

        Call ``decision.raise_for_status()`` to turn a denial into an exception.
        """
        p = self.get_policy(policy)
        rate = p.rate_for(Identity(tenant=tenant) if tenant else None)
        check = self._check(p, rate, limit_key(p.name, key, tenant), cost)
        return await self._decide([p], [rate], [check])

    async def reset(self, policy: str | Policy, key: str, *, tenant: str | None = None) -> None:
        """Forget the usage of ``key`` under ``policy`` (e.g. after a successful login)."""
        await self.backend.reset([limit_key(self.get_policy(policy).name, key, tenant)])

    async def check_request(
        self, scope: Scope, policies: Sequence[Policy], cost: int | None = None
    ) -> Decision:
        """Check ``policies`` for the request ``scope`` (all must pass)."""
        identity = await self.identity_of(scope) if self.identify is not None else None
        subject = Subject(scope, identity, self.client_ip)
        tenant = identity.tenant if identity else None
        rates, checks = [], []
        for p in policies:
            rate = p.rate_for(identity)
            parts = p.scope_for(identity)
            key = subject.key(parts) or subject.ip
            ns = None if "tenant" in parts or "global" in parts else tenant
            rates.append(rate)
            checks.append(self._check(p, rate, self._limit_key(p.name, key, ns), cost))
        return await self._decide(policies, rates, checks)

    # -- the middleware's hot path: one policy, a caller without identity -------------

    def fast_plan(self, scope: Scope) -> Any:
        """The middleware's first look: the request's :class:`Plan`, None when no rule
        applies, or :data:`SLOW` (several policies, an identify hook, trusted proxies:
        :meth:`routed` and :meth:`check_request` answer). One lookup per request, by
        path, method and peer address."""
        if (
            self.identify is not None
            or self.client_ip.trusted
            or self._routing_rules != len(self.rules)
            or not self.settings.enabled
        ):
            return SLOW
        client = scope.get("client")
        key = (scope["path"], scope["method"], client[0] if client else None)
        found = self._fast.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            policies = self.routed(key[0], key[1])
            found = (self.plan_for(scope, policies) or SLOW) if policies else None
            if len(self._fast) >= CACHE_MAX:
                self._fast.clear()
            self._fast[key] = found
        return found

    def plan_for(self, scope: Scope, policies: Sequence[Policy]) -> Plan | None:
        """The request's check when it is one policy's and its key depends on the client
        address alone (cached per policy and address: per peer address when no proxy is
        trusted, so the address is not even parsed again); else None, and
        :meth:`check_request` answers."""
        if len(policies) != 1 or self.identify is not None or not self.settings.enabled:
            return None
        policy = policies[0]
        client = scope.get("client")
        peer: str | None = client[0] if client else None
        if self.client_ip.trusted:
            peer = self.client_ip.resolve(peer, scope["headers"])
        plan: Plan | None = self._plans.get((policy.name, peer), _UNKNOWN)
        if plan is _UNKNOWN:
            plan = self._plan(scope, policy, peer)
        return plan

    def take_local(self, plan: Plan) -> Answer | None:
        """Lease mode: the plan's check served from the local share (no await, no round
        trip, no allocation but the answer), or None when the share does not hold the
        units."""
        lease = self.lease
        if lease is None:
            return None
        answer = lease.take_answer(plan.check)
        if answer is not None:
            plan.allowed[0] += 1
        return answer

    async def check_plan(self, plan: Plan) -> Answer | Decision:
        """:meth:`check_request` of a planned request: its answer when allowed, else the
        Decision (denied, or the backend unavailable)."""
        try:
            outcome = await self.checker.one(plan.check)
        except BackendUnavailableError as exc:
            return self._unavailable(plan.policies, exc)
        if outcome.allowed:
            plan.allowed[0] += 1
            return max(0, outcome.remaining), max(0, math.ceil(outcome.reset_ms / 1000))
        result = Result.of(plan.policy.name, plan.limit, plan.window, outcome)
        self._record(plan.policy, plan.check, result)
        return Decision([result])

    def _plan(self, scope: Scope, policy: Policy, peer: str | None) -> Plan | None:
        parts = policy.scope_for(None)
        plan = None
        if all(isinstance(p, str) and p in _ADDRESS_ONLY for p in parts):
            rate = policy.rate_for(None)
            subject = Subject(scope, None, self.client_ip)
            key = self._limit_key(policy.name, subject.key(parts) or subject.ip, None)
            check = self._check(policy, rate, key, None)
            plan = Plan(check, policy, rate.period, self.metrics.allowed_cell(policy.name))
        if len(self._plans) >= CACHE_MAX:
            self._plans.clear()
            self._fast.clear()
        self._plans[(policy.name, peer)] = plan
        return plan

    def _limit_key(self, policy: str, key: str, ns: str | None) -> str:
        found = self._keys.get((policy, key, ns))
        if found is None:
            found = limit_key(policy, key, ns)
            if len(self._keys) >= CACHE_MAX:
                self._keys.clear()
            self._keys[(policy, key, ns)] = found
        return found

    async def identity_of(self, scope: Scope) -> Identity | None:
        """The caller's identity from the ``identify`` hook, resolved once per request."""
        if self.identify is None:
            return None
        state = scope.setdefault("state", {})
        if IDENTITY_STATE not in state:
            state[IDENTITY_STATE] = await self.identify(scope)
        identity: Identity | None = state[IDENTITY_STATE]
        return identity

    def _check(self, p: Policy, rate: Rate, key: str, cost: int | None) -> Check:
        """The (immutable) check; made and validated once per distinct check."""
        spec = (p.algorithm, key, rate.limit, rate.period_ms, cost or p.cost, p.burst)
        check = self._checks.get(spec)
        if check is None:
            check = Check(*spec)
            validate(check)
            if len(self._checks) >= CACHE_MAX:
                self._checks.clear()
            self._checks[spec] = check
        return check

    async def _decide(
        self, policies: Sequence[Policy], rates: Sequence[Rate], checks: Sequence[Check]
    ) -> Decision:
        if not self.settings.enabled or not checks:
            return Decision()
        try:
            outcomes = await self.checker.run(checks)
        except BackendUnavailableError as exc:
            return self._unavailable(policies, exc)
        results = [
            Result.of(p.name, r.limit, r.period, o)
            for p, r, o in zip(policies, rates, outcomes, strict=True)
        ]
        for p, check, result in zip(policies, checks, results, strict=True):
            self._record(p, check, result)
        return Decision(results)

    def _record(self, p: Policy, check: Check, result: Result) -> None:
        if result.allowed:
            self.metrics.add(p.name, "allowed")
            return
        self.metrics.add(p.name, "denied")
        self._count_denied(p.name, check.key)
        tenant = check.key.partition(":t=")[2].partition("/")[0] or None
        self.log.log(
            logging.INFO,
            f"v:{check.key}",
            "rate limit exceeded: policy=%s key=%s tenant=%s retry_after=%ss",
            p.name,
            hashed(check.key),
            tenant,
            result.retry_after,
        )

    def _count_denied(self, policy: str, key: str) -> None:
        top = self.denied_keys
        top[(policy, key)] += 1
        if len(top) > 2 * MOST_LIMITED_KEEP:  # keep the heavy hitters, forget the tail
            self.denied_keys = Counter(dict(top.most_common(MOST_LIMITED_KEEP)))

    def most_limited(self, n: int = 20) -> list[dict[str, Any]]:
        """The keys refused most often in this process (policy, key, tenant, denials),
        from its last :data:`MOST_LIMITED_KEEP` heavy hitters; for operators only (keys
        may hold client addresses)."""
        return [
            {
                "policy": policy,
                "key": key,
                "tenant": key.partition(":t=")[2].partition("/")[0] or None,
                "denied": count,
            }
            for (policy, key), count in self.denied_keys.most_common(n)
        ]

    def _unavailable(self, policies: Sequence[Policy], exc: Exception) -> Decision:
        self.backend_errors += 1
        decision = Decision(unavailable=[p.name for p in policies])
        for p in policies:
            self.metrics.add(p.name, "fail_open" if p.fail_open else "fail_closed")
            decision.refused = decision.refused or not p.fail_open
        self.log.log(
            logging.ERROR,
            "backend",
            "rate-limit backend unavailable (%s); fail-open policies let requests through: %s",
            ", ".join(decision.unavailable),
            exc,
        )
        return decision

    # -- observability hooks (headway.observe) -------------------------------------

    def register_metrics(self, registry: CollectorRegistry) -> None:
        from headway.ratelimit.metrics import LimitMetrics

        self.exported = LimitMetrics(registry, self)
        if self._running:
            self.exported.totals.start()

    async def refresh_metrics(self) -> None:
        if self.exported is not None:
            self.exported.totals.flush()

    async def check_ready(self) -> Readiness | None:
        """One backend ping; critical unless every policy fails open."""
        if not self.settings.enabled:
            return None
        from headway.observe.health import probe

        closed = sorted(n for n, p in self.policies.items() if not p.fail_open)
        url = self.hw.settings.backend_url("limits")
        detail = {"backend": registry.scheme_of(url), "fail_closed": closed}
        return await probe(self.backend.ping, critical=bool(closed), detail=detail)

    # -- FastAPI ----------------------------------------------------------------------

    def dependency(self, *policies: str, cost: int | None = None) -> Dependency:
        """``Depends(hw.limits.dependency("upload", cost=10))``: per-route policies."""
        return make_dependency(self, *policies, cost=cost)

    def limit(
        self, *policies: str, cost: int | None = None, key: Callable[..., str] | None = None
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
        """Decorator: on a FastAPI endpoint, or with ``key=`` on any async function."""
        return make_decorator(self, *policies, cost=cost, key=key)

    def describe(self) -> dict[str, Any]:
        """Policies, rules and counters (for the CLI and the dashboard)."""
        return {
            "mode": self.settings.mode,
            "policies": [p.describe() for p in self.policies.values()],
            "rules": [{"prefix": r.prefix, "policies": list(r.policies)} for r in self.rules],
            "metrics": self.metrics.snapshot(),
            "most_limited": self.most_limited(),
        }


__all__ = ["IDENTITY_STATE", "IdentifyFn", "RateLimits", "Rule"]
