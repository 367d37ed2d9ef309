"""Rate limits of the reference service: every /api/ route is under the tenant's plan quota.

The limiter learns who is calling from the API key (cached per key digest for a minute,
so the hot path does not query the database), then applies the ``plan`` policy: free
100/min, default 500/min, professional 1,000/min, enterprise 10,000/min, anonymous
callers 30/min per IP (``HEADWAY_RATELIMIT_PLANS`` / ``_ANONYMOUS`` change them).
"""

from __future__ import annotations

from headway import Headway
from headway.demo.auth import find_key
from headway.demo.db import sessionmaker
from headway.ratelimit import Identity, bearer_identity


def install_limits(hub: Headway) -> None:
    async def lookup(token: str) -> Identity | None:
        async with sessionmaker(hub.connections.engine())() as session:
            key = await find_key(session, token)
        if key is None:
            return None
        return Identity(
            tenant=str(key.tenant_id),
            plan=key.tenant.plan,
            user=None if key.user_id is None else str(key.user_id),
            api_key=str(key.id),
        )

    hub.limits.identify = bearer_identity(lookup, ttl=60)
    hub.limits.protect("/api/", "plan")
