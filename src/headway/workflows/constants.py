"""States and defaults of the workflow engine, in one place."""

from __future__ import annotations

# Run states. A run is "running" from start until it ends; a run with a step waiting
# for approval is shown as "waiting" by the read API (derived, never stored).
RUNNING = "running"
WAITING = "waiting"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
RUN_STATES = (RUNNING, WAITING, COMPLETED, FAILED, CANCELLED)
ACTIVE_RUN = (RUNNING,)  # stored states in which steps may still move
FINAL_RUN = frozenset({COMPLETED, FAILED, CANCELLED})

# Step states. "queued" = its job is enqueued (it may be running: the read API asks the
# job system); "waiting" = an approval step waiting for a decision.
PENDING = "pending"
QUEUED = "queued"
STEP_RUNNING = "running"
SUCCEEDED = "succeeded"
STEP_FAILED = "failed"
STEP_CANCELLED = "cancelled"
SKIPPED = "skipped"
STEP_STATES = (
    PENDING,
    QUEUED,
    STEP_RUNNING,
    WAITING,
    SUCCEEDED,
    STEP_FAILED,
    STEP_CANCELLED,
    SKIPPED,
)
OPEN_STEP = (PENDING, QUEUED, WAITING)

# Step kinds.
TASK = "task"
APPROVAL = "approval"
COMPENSATION = "compensation"

# Approval states.
APPROVAL_PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
EXPIRED = "expired"
APPROVAL_CANCELLED = "cancelled"  # the run ended before anyone decided
APPROVAL_STATES = (APPROVAL_PENDING, APPROVED, REJECTED, EXPIRED, APPROVAL_CANCELLED)

# How a step receives its input.
INPUT = "input"  # the run's input (root steps)
VALUE = "value"  # the one dependency's result
LIST = "list"  # the dependencies' results, in declared order (a group's join step)
DICT = "dict"  # {dependency name: result}
COLLECT_MODES = (INPUT, VALUE, LIST, DICT)

DEFAULT_QUEUE = "workflows"
DEFAULT_APPROVAL_EXPIRY = 7 * 86400.0
DEFAULT_SWEEP_INTERVAL = 30.0
DEFAULT_RETENTION = 30 * 86400.0
REDIS_PREFIX = "hw"

# The job meta key that marks a job as a workflow step: {"run": id, "step": name}.
META_KEY = "hw_workflow"
