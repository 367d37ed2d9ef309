"""``headway.db``: query monitor (fingerprints, percentiles, slow log with EXPLAIN, N+1),
index advice, database statistics and read-replica sessions, as ``hw.db``."""

from __future__ import annotations

from headway.db.core import Database
from headway.db.monitor import NPlusOneError, QueryMonitor, Scope, current_scope
from headway.db.settings import DbSettings
from headway.db.sqltext import UnsafeStatement, check_single_select, fingerprint

__all__ = [
    "Database",
    "DbSettings",
    "NPlusOneError",
    "QueryMonitor",
    "Scope",
    "UnsafeStatement",
    "check_single_select",
    "current_scope",
    "fingerprint",
]
