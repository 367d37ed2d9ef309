"""``memory://``: flags in this process only (tests and throwaway scripts)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from headway.flags.base import AuditEntry, FlagExists, FlagNotFound, FlagStore, StoredFlag


class MemoryFlagStore(FlagStore):
    def __init__(self, url: str = "memory://", connections: Any = None) -> None:
        super().__init__(url, connections)
        self._flags: dict[tuple[str, str], StoredFlag] = {}
        self._audit: list[AuditEntry] = []
        self._version = 0

    async def version(self) -> int:
        return self._version

    async def load(self) -> tuple[int, list[StoredFlag]]:
        return self._version, list(self._flags.values())

    async def get(self, tenant: str, key: str) -> StoredFlag | None:
        return self._flags.get((tenant, key))

    def _log(self, actor: str, tenant: str, key: str, action: str, before: Any, after: Any) -> int:
        self._version += 1
        now = datetime.now(UTC)
        entry = AuditEntry(len(self._audit) + 1, now, actor, tenant, key, action, before, after)
        self._audit.append(entry)
        return self._version

    async def put(
        self, tenant: str, key: str, definition: dict[str, Any], actor: str, *, create: bool
    ) -> int:
        old = self._flags.get((tenant, key))
        if old is not None and create:
            raise FlagExists(key)
        stored = StoredFlag(tenant, key, copy.deepcopy(definition), datetime.now(UTC), actor)
        self._flags[(tenant, key)] = stored
        before = None if old is None else old.definition
        action = "create" if old is None else "update"
        return self._log(actor, tenant, key, action, before, stored.definition)

    async def delete(self, tenant: str, key: str, actor: str) -> int:
        old = self._flags.pop((tenant, key), None)
        if old is None:
            raise FlagNotFound(key)
        return self._log(actor, tenant, key, "delete", old.definition, None)

    async def audit(
        self, tenant: str | None = None, key: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        rows = [
            e
            for e in reversed(self._audit)
            if (tenant is None or e.tenant == tenant) and (key is None or e.key == key)
        ]
        return rows[:limit]
