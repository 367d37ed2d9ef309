"""Evaluating a flag against a context, from the in-process snapshot (no I/O).

A :class:`CompiledFlag` is built once per definition (sets for targets, compiled
regexes), so an evaluation is a few dict and set lookups plus at most one murmur3 hash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from headway.flags.bucketing import in_rollout, pick_variant
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


class CompiledFlag:
    __slots__ = ("allow", "block", "definition", "key", "rules", "simple", "weights")

    def __init__(self, definition: FlagDefinition) -> None:
        self.definition = d = definition
        self.key = d.key
        self.block = [(t.attribute, frozenset(t.values)) for t in d.block]
        self.allow = [(t.attribute, frozenset(t.values)) for t in d.allow]
        self.rules = [([(c.attribute, _test(c)) for c in r.conditions], r.variant) for r in d.rules]
        self.weights = [(n, w) for n, w in (d.weights or {}).items() if w > 0]
        self.simple = not (self.block or self.allow or self.rules)

    def _answer(self, variant: str, reason: str) -> Evaluation:
        d = self.definition
        on = variant != d.off_variant
        return Evaluation(self.key, d.variants[variant], variant, reason, None, None, on)

    def evaluate(self, ctx: Mapping[str, Any]) -> Evaluation:
        d = self.definition
        if not d.enabled:
            return self._answer(d.off_variant or "", DISABLED)
        if not self.simple:
            found = self._targeted(ctx)
            if found is not None:
                return found
        if self.weights or d.rollout is not None:
            sticky = ctx.get(d.stickiness)
            if sticky is None:
                return self._answer(d.default_variant or "", DEFAULT)
            if self.weights:
                return self._answer(pick_variant(self.key, str(sticky), self.weights), SPLIT)
            hit = in_rollout(self.key, str(sticky), d.rollout or 0.0)
            return self._answer((d.rollout_variant if hit else d.off_variant) or "", SPLIT)
        return self._answer(d.default_variant or "", DEFAULT)

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
