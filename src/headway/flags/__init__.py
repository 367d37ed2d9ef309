"""Feature flags: stored in the database, evaluated in process, changed everywhere in <1 s.

::

    if await hw.flags.is_enabled("vision-analysis", tenant=tenant_id, user=user_id):
        ...
    colour = await hw.flags.variant("checkout-button", user=user_id, default="blue")

    @router.get("/beta", dependencies=[Depends(feature_gate("beta"))])   # 404 when off

Targeting by tenant, user or any context attribute; allow and block lists; percentage
rollouts and weighted variants bucketed like Unleash (murmur3 of ``key:id``); a
``maintenance-mode`` flag answered with 503 by the middleware; an audit log of every
change; an OpenFeature provider in :mod:`headway.flags.openfeature`.
"""

from __future__ import annotations

from headway import registry
from headway.flags.base import AuditEntry, FlagExists, FlagNotFound, FlagStore, StoredFlag
from headway.flags.core import Flags
from headway.flags.evaluate import Evaluation
from headway.flags.model import Condition, FlagDefinition, Rule, Target
from headway.flags.settings import FlagsSettings
from headway.flags.web import MaintenanceMiddleware, feature_gate

registry.register("flags", "memory", "headway.flags.backends.memory:MemoryFlagStore")
for _scheme in ("sqlite", "postgresql", "postgres"):
    registry.register(
        "flags",
        _scheme,
        "headway.flags.backends.sql:SqlFlagStore",
        extra="postgres" if _scheme != "sqlite" else None,
    )

__all__ = [
    "AuditEntry",
    "Condition",
    "Evaluation",
    "FlagDefinition",
    "FlagExists",
    "FlagNotFound",
    "FlagStore",
    "Flags",
    "FlagsSettings",
    "MaintenanceMiddleware",
    "Rule",
    "StoredFlag",
    "Target",
    "feature_gate",
]
