"""Workflow definitions: chains, groups and DAGs of named steps, checked when defined.

A step runs a registered job task (given as the task object or its name) with ONE
positional argument, its input: the run's input for a root step, the result of its one
dependency, or the results of several (a dict by name; a list for a group's join step).
An approval step waits for a human decision and passes its input through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headway.jobs import Task
from headway.workflows import constants as c
from headway.workflows.models import DefinitionError

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
TaskRef = Task | str


@dataclass(frozen=True, slots=True)
class Step:
    """One node of a workflow; build it with :func:`step` or :func:`approval`."""

    task: str | None
    after: tuple[str, ...] = ()
    kind: str = c.TASK
    name: str | None = None
    collect: str | None = None
    queue: str | None = None
    compensate: str | None = None
    approvers: tuple[str, ...] = ()
    role: str | None = None
    expires_in: float | None = None

    def named(
        self, name: str, after: Sequence[str] | None = None, collect: str | None = None
    ) -> Step:
        return Step(
            self.task, tuple(self.after if after is None else after), self.kind, name,
            self.collect or collect, self.queue, self.compensate, self.approvers, self.role,
            self.expires_in,
        )  # fmt: skip

    @property
    def mode(self) -> str:
        """How the input is built (see :mod:`headway.workflows.constants`)."""
        if self.collect:
            return self.collect
        return c.INPUT if not self.after else c.VALUE if len(self.after) == 1 else c.DICT

    def to_spec(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "task": self.task, "after": list(self.after),
            "collect": self.mode, "queue": self.queue, "compensate": self.compensate,
            "approvers": list(self.approvers), "role": self.role, "expires_in": self.expires_in,
        }  # fmt: skip

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Step:
        return cls(
            spec.get("task"), tuple(spec.get("after") or ()), str(spec["kind"]), str(spec["name"]),
            spec.get("collect"), spec.get("queue"), spec.get("compensate"),
            tuple(spec.get("approvers") or ()), spec.get("role"), spec.get("expires_in"),
        )  # fmt: skip


def _task_name(task: TaskRef, what: str) -> str:
    if isinstance(task, Task):
        return task.name
    if isinstance(task, str) and task:
        return task
    raise DefinitionError(f"{what} must be a job task or a task name, got {task!r}")


def _after(after: str | Iterable[str] | None) -> tuple[str, ...]:
    if after is None:
        return ()
    return (after,) if isinstance(after, str) else tuple(after)


def step(
    task: TaskRef,
    *,
    after: str | Iterable[str] | None = None,
    name: str | None = None,
    collect: str | None = None,
    queue: str | None = None,
    compensate: TaskRef | None = None,
) -> Step:
    """A task step. ``compensate``: a task run (with ``{"input", "error", "run_id"}``) when
    this step fails after its retries; the run then ends ``failed``."""
    if collect is not None and collect not in c.COLLECT_MODES:
        raise DefinitionError(f"collect must be one of {', '.join(c.COLLECT_MODES)}")
    comp = None if compensate is None else _task_name(compensate, "compensate")
    return Step(_task_name(task, "a step"), _after(after), c.TASK, name, collect, queue, comp)


def approval(
    name: str,
    *,
    after: str | Iterable[str] | None = None,
    approvers: Iterable[str | int] = (),
    role: str | None = None,
    expires_in: float | None = None,
    compensate: TaskRef | None = None,
) -> Step:
    """A human approval step: the run pauses until one of ``approvers`` (user ids) or a
    user with ``role`` approves (the run goes on) or rejects (the step fails)."""
    if expires_in is not None and expires_in <= 0:
        raise DefinitionError("expires_in must be > 0 seconds")
    comp = None if compensate is None else _task_name(compensate, "compensate")
    who = tuple(str(a) for a in approvers)
    return Step(None, _after(after), c.APPROVAL, name, None, None, comp, who, role, expires_in)


@dataclass(frozen=True, slots=True)
class Workflow:
    """A validated DAG of named steps (topologically ordered)."""

    name: str
    steps: Mapping[str, Step] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name(self.name, "workflow")
        if not self.steps:
            raise DefinitionError(f"workflow {self.name!r} has no steps")
        for key, st in self.steps.items():
            _check_name(key, "step")
            if st.name != key:
                raise DefinitionError(f"step {key!r} is named {st.name!r}")
        object.__setattr__(self, "steps", {n: self.steps[n] for n in _topological(self)})

    def to_spec(self) -> dict[str, Any]:
        return {"name": self.name, "steps": [s.to_spec() for s in self.steps.values()]}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Workflow:
        steps = [Step.from_spec(s) for s in spec["steps"]]
        return cls(str(spec["name"]), {str(s.name): s for s in steps})

    def tasks(self) -> set[str]:
        """Every task name the workflow runs (steps and compensations)."""
        names = {s.task for s in self.steps.values() if s.task}
        return names | {s.compensate for s in self.steps.values() if s.compensate}


def _check_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise DefinitionError(f"invalid {what} name {name!r}: use 1-100 of A-Z a-z 0-9 _ . -")


def _topological(wf: Workflow) -> list[str]:
    """Kahn's algorithm; a missing dependency or a cycle raises DefinitionError."""
    for key, st in wf.steps.items():
        for dep in st.after:
            if dep not in wf.steps:
                raise DefinitionError(f"step {key!r} depends on a missing step {dep!r}")
            if dep == key:
                raise DefinitionError(f"step {key!r} depends on itself (a cycle)")
        if len(set(st.after)) != len(st.after):
            raise DefinitionError(f"step {key!r} lists a dependency twice")
    remaining = {k: set(s.after) for k, s in wf.steps.items()}
    order: list[str] = []
    while remaining:
        ready = [k for k, deps in remaining.items() if not deps]
        if not ready:
            raise DefinitionError(
                f"workflow {wf.name!r} has a cycle through steps {sorted(remaining)}"
            )
        for k in ready:
            del remaining[k]
            order.append(k)
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def _short(ref: Step | TaskRef) -> str:
    if isinstance(ref, Step):
        return ref.name or (ref.task or "approval").rsplit(".", 1)[-1]
    return _task_name(ref, "a step").rsplit(".", 1)[-1]


def _as_step(ref: Step | TaskRef) -> Step:
    return ref if isinstance(ref, Step) else step(ref)


class _Names:
    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, ref: Step | TaskRef) -> str:
        base = _short(ref)
        given = isinstance(ref, Step) and ref.name is not None
        if given and base in self.used:
            raise DefinitionError(f"two steps are named {base!r}")
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}-{n}"
        self.used.add(name)
        return name


ChainItem = Step | TaskRef | Sequence[Step | TaskRef]


def _members(item: ChainItem) -> list[Step | TaskRef]:
    if isinstance(item, Step | Task | str):
        return [item]
    if isinstance(item, list | tuple):
        return list(item)
    raise DefinitionError(f"a chain item is a task, a step or a list of them, not {item!r}")


def chain(name: str, *items: ChainItem) -> Workflow:
    """Steps in sequence: each one's result is the next one's input. An item that is a
    list (of tasks/steps) is a group: its members run at once on the same input and the
    next item receives the list of their results."""
    if not items:
        raise DefinitionError("a chain needs at least one step")
    names, steps = _Names(), {}
    prev: list[str] = []
    prev_group = False
    for item in items:
        members = _members(item)
        if not members:
            raise DefinitionError("an empty group in a chain")
        current = []
        for ref in members:
            key = names.take(ref)
            collect = c.LIST if prev_group else None
            steps[key] = _as_step(ref).named(key, prev, collect)
            current.append(key)
        prev, prev_group = current, len(members) > 1 or isinstance(item, list | tuple)
    return Workflow(name, steps)


def group(name: str, members: Sequence[Step | TaskRef], *, then: Step | TaskRef) -> Workflow:
    """Fan-out: every member runs on the run's input at once; ``then`` runs once all of
    them succeeded, with the list of their results (in ``members`` order)."""
    if not members:
        raise DefinitionError("a group needs at least one member")
    return chain(name, list(members), then)


def dag(name: str, steps: Mapping[str, Step | TaskRef]) -> Workflow:
    """Named steps with dependencies (``step(task, after=[...])``); roots get the input."""
    if not isinstance(steps, Mapping):
        raise DefinitionError("dag() takes a mapping {step name: step}")
    return Workflow(name, {key: _as_step(ref).named(key) for key, ref in steps.items()})
