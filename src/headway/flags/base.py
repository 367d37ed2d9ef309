"""The flag store contract: what ``memory://``, SQLite and PostgreSQL implement.

Semantics every store keeps (``tests/flags/test_contract.py`` checks them all):

- A flag is a JSON definition under ``(tenant, key)``; tenant ``""`` is the global flag,
  a tenant's own flag of the same key overrides it for that tenant only.
- Every write (``put``, ``delete``) increments one store-wide ``version`` and appends an
  audit entry (who, when by the store's clock, action, before, after) in the same
  transaction; ``version()`` is the cheap query every process polls.
- ``put(..., create=True)`` refuses to replace an existing flag (:class:`FlagExists`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from headway.web.errors import HTTPError

if TYPE_CHECKING:
    from headway.connections import Connections


class FlagExists(HTTPError):
    def __init__(self, key: str) -> None:
        super().__init__(409, "conflict", f"flag {key!r} already exists")


class FlagNotFound(HTTPError):
    def __init__(self, key: str) -> None:
        super().__init__(404, "not_found", f"no flag {key!r}")


@dataclass(frozen=True, slots=True)
class StoredFlag:
    tenant: str
    key: str
    definition: dict[str, Any]
    updated_at: datetime | None = None
    updated_by: str = ""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime | None
    actor: str
    tenant: str
    key: str
    action: str  # create | update | delete
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat() if self.at else None,
            "actor": self.actor,
            "tenant": self.tenant or None,
            "key": self.key,
            "action": self.action,
            "before": self.before,
            "after": self.after,
        }


class FlagStore(ABC):
    """One store of flag definitions, constructed with its URL and the hub's connections."""

    def __init__(self, url: str, connections: Connections | None = None) -> None:
        self.url = url
        self.connections = connections

    async def setup(self) -> None:
        """Create what the store needs (tables); idempotent."""
        return None

    async def close(self) -> None:
        return None

    @abstractmethod
    async def version(self) -> int: ...

    @abstractmethod
    async def load(self) -> tuple[int, list[StoredFlag]]:
        """The version and every flag, read together."""

    @abstractmethod
    async def get(self, tenant: str, key: str) -> StoredFlag | None: ...

    @abstractmethod
    async def put(
        self, tenant: str, key: str, definition: dict[str, Any], actor: str, *, create: bool
    ) -> int:
        """Store a definition; return the new version."""

    @abstractmethod
    async def delete(self, tenant: str, key: str, actor: str) -> int:
        """Delete a flag (FlagNotFound if absent); return the new version."""

    @abstractmethod
    async def audit(
        self, tenant: str | None = None, key: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Newest first; ``tenant``/``key`` None = any."""
