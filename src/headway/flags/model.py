"""A flag's definition (JSON, validated on every write: an invalid one is a 422).

::

    {"key": "vision-analysis", "enabled": true, "rollout": 10}          # 10 % of users
    {"key": "checkout", "variants": {"a": "blue", "b": "green"},
     "weights": {"a": 50, "b": 50}, "stickiness": "user"}              # an A/B test
    {"key": "beta", "allow": [{"attribute": "tenant", "values": ["acme"]}],
     "rules": [{"conditions": [{"attribute": "plan", "operator": "in",
                                "values": ["pro"]}], "variant": "on"}],
     "default_variant": "off"}

Evaluation order: disabled -> ``off_variant``; a block target -> ``off_variant``; an
allow target -> ``allow_variant``; the first rule whose conditions all hold -> its
variant; ``weights`` (split) or ``rollout`` (percentage) on the stickiness attribute;
else ``default_variant``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
Operator = Literal[
    "eq", "neq", "in", "not_in", "contains", "starts_with", "ends_with",
    "gt", "gte", "lt", "lte", "matches", "exists",
]  # fmt: skip
NUMERIC = {"gt", "gte", "lt", "lte"}


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attribute: str = Field(min_length=1, max_length=100)
    operator: Operator = "in"
    values: list[str | int | float | bool] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _values_fit(self) -> Condition:
        if self.operator != "exists" and not self.values:
            raise ValueError(f"operator {self.operator!r} needs at least one value")
        if self.operator in NUMERIC and not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in self.values
        ):
            raise ValueError(f"operator {self.operator!r} compares numbers")
        if self.operator == "matches":
            for v in self.values:
                try:
                    re.compile(str(v))
                except re.error as exc:
                    raise ValueError(f"invalid regular expression {v!r}: {exc}") from None
        return self


class Target(BaseModel):
    """Everyone whose ``attribute`` (``user``, ``tenant``, any context key) is listed."""

    model_config = ConfigDict(extra="forbid")

    attribute: str = Field(min_length=1, max_length=100)
    values: list[str] = Field(min_length=1, max_length=100_000)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200)
    conditions: list[Condition] = Field(min_length=1, max_length=100)
    variant: str


class FlagDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    description: str = Field("", max_length=2000)
    enabled: bool = True
    variants: dict[str, Any] = Field(default_factory=lambda: {"on": True, "off": False})
    default_variant: str | None = None
    off_variant: str | None = None
    allow_variant: str | None = None
    allow: list[Target] = Field(default_factory=list, max_length=100)
    block: list[Target] = Field(default_factory=list, max_length=100)
    rules: list[Rule] = Field(default_factory=list, max_length=100)
    rollout: float | None = None
    rollout_variant: str | None = None
    weights: dict[str, float] | None = None
    stickiness: str = Field("user", min_length=1, max_length=100)

    @field_validator("variants")
    @classmethod
    def _variants(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("a flag needs at least one variant")
        if len(v) > 100 or any(not re.match(KEY_PATTERN, name) for name in v):
            raise ValueError("at most 100 variants, named like keys")
        return v

    @field_validator("rollout")
    @classmethod
    def _rollout(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and 0 <= v <= 100):
            raise ValueError(f"rollout must be a percentage between 0 and 100, got {v}")
        return v

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        if not v or any(not math.isfinite(w) or w < 0 for w in v.values()):
            raise ValueError("weights must be non-negative percentages")
        if abs(sum(v.values()) - 100) > 1e-6:
            raise ValueError(f"weights must sum to 100 (%), got {sum(v.values()):g}")
        return v

    @model_validator(mode="after")
    def _fill_and_check(self) -> FlagDefinition:
        boolean = set(self.variants) == {"on", "off"}
        first = next(iter(self.variants))
        self.off_variant = self.off_variant or ("off" if boolean else first)
        self.default_variant = self.default_variant or ("on" if boolean else first)
        self.allow_variant = self.allow_variant or ("on" if boolean else self.default_variant)
        self.rollout_variant = self.rollout_variant or ("on" if boolean else first)
        if self.rollout is not None and self.weights is not None:
            raise ValueError("use either rollout (a percentage) or weights (a split), not both")
        named = [
            self.off_variant, self.default_variant, self.allow_variant, self.rollout_variant,
            *(r.variant for r in self.rules), *(self.weights or {}),
        ]  # fmt: skip
        unknown = sorted({n for n in named if n not in self.variants})
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; variants: {sorted(self.variants)}")
        return self

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class FlagPatch(BaseModel):
    """Fields of a partial update (``PATCH``); the result is validated as a whole."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    enabled: bool | None = None
    variants: dict[str, Any] | None = None
    default_variant: str | None = None
    off_variant: str | None = None
    allow_variant: str | None = None
    allow: list[Target] | None = None
    block: list[Target] | None = None
    rules: list[Rule] | None = None
    rollout: float | None = None
    rollout_variant: str | None = None
    weights: dict[str, float] | None = None
    stickiness: str | None = None
