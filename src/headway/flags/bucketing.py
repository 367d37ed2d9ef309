"""Consistent bucketing, as Unleash does it, so every process and language agrees.

Gradual rollout: ``murmur3_32("<group>:<id>", seed 0) % 100 + 1 <= percentage`` (Unleash's
``normalizedValue``; the group is the flag key). Raising the percentage keeps everyone
who had the flag. Variants: the same hash with Unleash's variant seed 86028157 over
10,000 buckets, walked in the order of the weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import mmh3

VARIANT_SEED = 86028157


def rollout_bucket(group: str, identifier: str) -> int:
    """1..100."""
    return int(mmh3.hash(f"{group}:{identifier}", 0, signed=False)) % 100 + 1


def in_rollout(group: str, identifier: str, percentage: float) -> bool:
    return percentage > 0 and rollout_bucket(group, identifier) <= percentage


def variant_bucket(group: str, identifier: str) -> int:
    """1..10000."""
    return int(mmh3.hash(f"{group}:{identifier}", VARIANT_SEED, signed=False)) % 10000 + 1


def pick_variant(group: str, identifier: str, weights: Sequence[tuple[str, float]]) -> str:
    """The variant whose cumulative weight (percent) covers this identifier's bucket."""
    bucket = variant_bucket(group, identifier)
    total = 0.0
    for name, weight in weights:
        total += weight * 100
        if bucket <= total:
            return name
    return weights[-1][0]
