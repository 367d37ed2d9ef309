"""The workflow store contract: one small ABC every backend implements.

Semantics every backend guarantees (``tests/workflows/test_contract.py`` checks them):

- ``create_run`` stores a run and all its steps at once; ids are unique (the caller's).
- ``move_step`` and ``move_run`` are atomic compare-and-set transitions: the new state
  and fields are written only if the current state is one of ``from_states`` (and, for a
  step, the run's state is one of ``run_states`` when given). They return whether they
  wrote. Of several concurrent callers at most one wins a given transition: this is what
  makes advancing a run safe under at-least-once delivery.
- ``decide_approval`` is the same for approvals: pending -> ``to_state``, and only while
  not expired at ``at`` when ``unexpired`` is set.
- Fields not named in an update keep their value. Values are JSON values; ``result``,
  ``input`` and ``output`` round-trip exactly (large ints, nested objects).
- Lists are newest first; a ``tenant`` filter of None means every tenant.
- Times are seconds since the epoch from the engine's clock, kept to 0.1 ms at least
  (the Redis store merges a step's small fields with Lua cjson: 14 significant digits).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from headway.workflows.models import ApprovalRecord, RunRecord

if TYPE_CHECKING:
    from headway.connections import Connections


@dataclass(frozen=True, slots=True)
class StepMove:
    """One compare-and-set of :meth:`WorkflowBackend.move_steps`."""

    step: str
    from_states: Collection[str]
    to_state: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    run_states: Collection[str] | None = None
    requires: Mapping[str, Collection[str]] | None = None


class WorkflowBackend(ABC):
    """Stores runs, their steps and approval requests."""

    def __init__(self, url: str, connections: Connections | None = None) -> None:
        self.url = url
        self.connections = connections

    async def open(self) -> None:  # noqa: B027
        """Connect and create what is missing (tables, scripts); idempotent."""

    async def close(self) -> None:  # noqa: B027
        """Release what :meth:`open` took (shared pools belong to the hub)."""

    # -- runs and steps ---------------------------------------------------------------

    @abstractmethod
    async def create_run(self, run: RunRecord) -> None:
        """Store ``run`` with its ``steps``."""

    @abstractmethod
    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run with every step, or None."""

    @abstractmethod
    async def list_runs(
        self, *, tenant: str | None, state: str | None, limit: int, offset: int
    ) -> list[RunRecord]:
        """Runs (stored ``state`` filter), newest first; ``steps`` may be left empty."""

    @abstractmethod
    async def active_runs(self, limit: int) -> list[str]:
        """Ids of runs whose stored state is ``running`` (for the repair sweep)."""

    @abstractmethod
    async def move_step(
        self,
        run_id: str,
        step: str,
        *,
        from_states: Collection[str],
        to_state: str,
        fields: Mapping[str, Any],
        run_states: Collection[str] | None,
        requires: Mapping[str, Collection[str]] | None = None,
    ) -> bool:
        """Atomic CAS on one step (see the module docstring); ``requires``: other steps
        of the run must be in one of the given states too."""

    async def move_steps(
        self, run_id: str, moves: Sequence[StepMove]
    ) -> tuple[list[bool], RunRecord | None]:
        """Apply each move in order (each one a :meth:`move_step`, checked after the ones
        before it), then read the run: whether each applied, and the run as it is after
        them. A step's completion and the claims of the steps it made ready are one call
        (one round trip on Redis)."""
        applied = [
            await self.move_step(
                run_id, m.step, from_states=m.from_states, to_state=m.to_state,
                fields=m.fields, run_states=m.run_states, requires=m.requires,
            )
            for m in moves
        ]  # fmt: skip
        return applied, await self.get_run(run_id)

    @abstractmethod
    async def move_run(
        self, run_id: str, *, from_states: Collection[str], to_state: str,
        fields: Mapping[str, Any],
    ) -> bool:  # fmt: skip
        """Atomic CAS on the run's state; ``fields`` among output, error, finished_at."""

    @abstractmethod
    async def delete_runs(self, finished_before: float, limit: int) -> int:
        """Delete up to ``limit`` ended runs (completed, failed, cancelled) that finished
        before ``finished_before``, with their steps and their steps' approvals; returns
        how many."""

    # -- approvals --------------------------------------------------------------------

    @abstractmethod
    async def create_approval(self, approval: ApprovalRecord) -> None:
        """Store a new (pending) approval request."""

    @abstractmethod
    async def get_approval(self, approval_id: str) -> ApprovalRecord | None: ...

    @abstractmethod
    async def decide_approval(
        self, approval_id: str, *, to_state: str, by: str | None, at: float,
        comment: str | None, unexpired: bool,
    ) -> bool:  # fmt: skip
        """Atomic: pending -> ``to_state`` (and, with ``unexpired``, only if the expiry is
        unset or later than ``at``); records ``by``, ``at`` and ``comment``."""

    @abstractmethod
    async def list_approvals(
        self, *, tenant: str | None, state: str | None, limit: int, offset: int
    ) -> list[ApprovalRecord]:
        """Approvals, newest first."""

    @abstractmethod
    async def pending_approvals(self) -> int:
        """How many approvals are pending (every tenant), for the metrics."""
