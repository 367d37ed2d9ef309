"""Defaults of the job system, in one place."""

from __future__ import annotations

# Job states. "scheduled" = waiting for its run time (a delay or a retry's backoff).
QUEUED = "queued"
SCHEDULED = "scheduled"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
STATES = (QUEUED, SCHEDULED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})

DEFAULT_QUEUE = "default"
DEFAULT_QUEUES = (
    "critical",
    "high",
    "default",
    "low",
    "webhooks",
    "notifications",
    "workflows",
    "email",
    "reports",
    "exports",
    "cleanup",
)
# Per worker process: at most this many jobs of the queue run at once.
DEFAULT_QUEUE_LIMITS = {
    "email": 10,
    "reports": 2,
    "ai": 3,
    "exports": 5,
    "notifications": 20,
    "cleanup": 1,
}
# Weighted order (`--weighted`): relative chance that a queue is polled first in a round.
DEFAULT_WEIGHTS = {"critical": 8, "high": 6, "default": 4, "low": 1}

# Retries: `retries` is the number of *re*-tries, so 2 means 3 attempts in all.
DEFAULT_RETRIES = 2
BACKOFF_BASE = 1.0
BACKOFF_FACTOR = 2.0
BACKOFF_CAP = 300.0

# Priorities: higher runs first within a queue.
MIN_PRIORITY = -1000
MAX_PRIORITY = 1000

# Leases: a running job's worker extends it every LEASE / 3 seconds.
DEFAULT_LEASE = 30.0
# ... and at least this often (seconds), which is how soon a running job's cancel lands.
CANCEL_CHECK = 1.0
DEFAULT_CONCURRENCY = 50
DEFAULT_POLL_INTERVAL = 0.05
DEFAULT_GRACE = 30.0
MAX_BATCH = 500  # jobs per claim / ack / enqueue round trip

# Retention, per queue.
KEEP_SUCCEEDED = 100
KEEP_FAILED = 500
RETENTION_INTERVAL = 10.0

# Redis key prefix (the `?prefix=` query option of a redis:// jobs URL overrides it).
REDIS_PREFIX = "hw"

# Cron: a tick older than this when the scheduler sees it is skipped, not run late.
CRON_MISFIRE_GRACE = 60.0
