"""Evaluating a flag against a context, from the in-process snapshot (no I/O).

A :class:`CompiledFlag` is built once per definition (sets for targets, compiled
regexes), so an evaluation is a few dict and set lookups plus at most one murmur3 hash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from headway.flags.bucketing import pick_variant, rollout_bucket
from headway.flags.model import Condition, FlagDefinition

TARGETING_MATCH, SPLIT, DEFAULT, DISABLED, ERROR = (
    "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED", "ERROR",
)  # fmt: skip
FLAG_NOT_FOUND, TYPE_MISMATCH, GENERAL = "FLAG_NOT_FOUND", "TYPE_MISMATCH", "GENERAL"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What an evaluation answers: the value, its variant, why, and any error."""

    key: str
    value: Any
    variant: str | None
    reason: str
    error_code: str | None = None
    error_message: str | None = None
    on: bool = False  # served a variant other than the flag's off variant

    @property
    def enabled(self) -> bool:
        return self.value is True if isinstance(self.value, bool) else self.on

    def public(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": self.value,
            "variant": self.variant,
            "reason": self.reason,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "enabled": self.enabled,
        }


Test = Callable[[Any], bool]


def _test(cond: Condition) -> Test:
    op, values = cond.operator, cond.values
    texts = frozenset(str(v) for v in values)
    first = values[0] if values else None
    if op in ("eq", "in"):
        return lambda v: v is not None and str(v) in texts
    if op in ("neq", "not_in"):
        return lambda v: v is None or str(v) not in texts
    if op == "contains":
        return lambda v: v is not None and any(str(x) in str(v) for x in values)
    if op == "starts_with":
        return lambda v: v is not None and str(v).startswith(tuple(str(x) for x in values))
    if op == "ends_with":
        return lambda v: v is not None and str(v).endswith(tuple(str(x) for x in values))
    if op == "matches":
        patterns = [re.compile(str(x)) for x in values]
        return lambda v: v is not None and any(p.search(str(v)) for p in patterns)
    if op == "exists":
        return lambda v: v is not None
    return _numeric(op, float(first))  # type: ignore[arg-type]


def _numeric(op: str, bound: float) -> Test:
    compare: dict[str, Callable[[float], bool]] = {
        "gt": lambda x: x > bound,
        "gte": lambda x: x >= bound,
        "lt": lambda x: x < bound,
        "lte": lambda x: x <= bound,
    }
    check = compare[op]

    def test(v: Any) -> bool:
        try:
            return v is not None and not isinstance(v, bool) and check(float(v))
        except (TypeError, ValueError):
            return False

    return test


MAX_MEMO = 1024  # answers memoized per flag and id (cleared when full: bounded memory)


class CompiledFlag:
    """A definition prepared for evaluation; its answers are built once and shared.

    An :class:`Evaluation` is immutable, so each (variant, reason) answer is created once.
    ``fixed`` is the answer when no context can change it (disabled, or no targeting and
    no split); a split's answer is memoized per stickiness id (one murmur3 hash per id).
    """

    __slots__ = (
        "_answers", "_rollout", "_splits", "allow", "block", "counted",
        "definition", "fixed", "key", "rules", "simple", "splits", "weights",
    )  # fmt: skip

    def __init__(self, definition: FlagDefinition) -> None:
        self.definition = d = definition
        self.key = d.key
        self.block = [(t.attribute, frozenset(t.values)) for t in d.block]
        self.allow = [(t.attribute, frozenset(t.values)) for t in d.allow]
        self.rules = [([(c.attribute, _test(c)) for c in r.conditions], r.variant) for r in d.rules]
        self.weights = [(n, w) for n, w in (d.weights or {}).items() if w > 0]
        self.simple = not (self.block or self.allow or self.rules)
        self.splits = bool(self.weights) or d.rollout is not None
        self._answers: dict[tuple[str, str], Evaluation] = {}
        self._splits: dict[str, Evaluation] = {}
        # the metrics' keys of this flag's evaluations, per reason (no tuple per call)
        self.counted = {r: (d.key, r) for r in (TARGETING_MATCH, SPLIT, DEFAULT, DISABLED)}
        # the rollout's two answers, by whether the id is in the rollout
        self._rollout = (
            self._answer(d.off_variant or "", SPLIT),
            self._answer(d.rollout_variant or "", SPLIT),
        )
        self.fixed: Evaluation | None = None
        if not d.enabled:
            self.fixed = self._answer(d.off_variant or "", DISABLED)
        elif self.simple and not self.splits:
            self.fixed = self._answer(d.default_variant or "", DEFAULT)

    def _answer(self, variant: str, reason: str) -> Evaluation:
        found = self._answers.get((variant, reason))
        if found is None:
            d = self.definition
            on = variant != d.off_variant
            found = Evaluation(self.key, d.variants[variant], variant, reason, None, None, on)
            self._answers[(variant, reason)] = found
        return found

    def evaluate(self, ctx: Mapping[str, Any]) -> Evaluation:
        if self.fixed is not None:
            return self.fixed
        if not self.simple:
            found = self._targeted(ctx)
            if found is not None:
                return found
        if self.splits:
            return self.split(ctx.get(self.definition.stickiness))
        return self._answer(self.definition.default_variant or "", DEFAULT)

    def split(self, sticky: Any) -> Evaluation:
        """The weights' or rollout's answer for a stickiness value (None: the default)."""
        if sticky is None:
            return self._answer(self.definition.default_variant or "", DEFAULT)
        ident = sticky if type(sticky) is str else str(sticky)
        found = self._splits.get(ident)
        if found is None:
            if len(self._splits) >= MAX_MEMO:
                self._splits.clear()
            found = self._splits[ident] = self._bucket(ident)
        return found

    def _bucket(self, ident: str) -> Evaluation:
        if self.weights:
            return self._answer(pick_variant(self.key, ident, self.weights), SPLIT)
        rollout = self.definition.rollout or 0.0
        hit = rollout > 0 and rollout_bucket(self.key, ident) <= rollout  # in_rollout
        return self._rollout[hit]

    def _targeted(self, ctx: Mapping[str, Any]) -> Evaluation | None:
        d = self.definition
        for attribute, values in self.block:
            if str(ctx.get(attribute)) in values:
                return self._answer(d.off_variant or "", TARGETING_MATCH)
        for attribute, values in self.allow:
            if str(ctx.get(attribute)) in values:
                return self._answer(d.allow_variant or "", TARGETING_MATCH)
        for tests, variant in self.rules:
            if all(test(ctx.get(attribute)) for attribute, test in tests):
                return self._answer(variant, TARGETING_MATCH)
        return None


def not_found(key: str, default: Any) -> Evaluation:
    return Evaluation(key, default, None, ERROR, FLAG_NOT_FOUND, f"no flag {key!r}")
