"""Evaluation rules, bucketing statistics, stickiness, monotonic rollouts, validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tests.flags.conftest import MakeFlags

from headway.flags import FlagDefinition
from headway.flags.bucketing import in_rollout, rollout_bucket
from headway.flags.evaluate import CompiledFlag

IDS = [f"user-{i}" for i in range(100_000)]


def test_rollout_statistics_and_monotonicity() -> None:
    ten = {i for i in IDS if in_rollout("vision-analysis", i, 10)}
    twenty = {i for i in IDS if in_rollout("vision-analysis", i, 20)}
    assert abs(len(ten) / len(IDS) - 0.10) <= 0.005
    assert abs(len(twenty) / len(IDS) - 0.20) <= 0.005
    assert ten <= twenty  # raising the percentage keeps everyone who had it
    assert not any(in_rollout("x", i, 0) for i in IDS[:1000])
    assert all(in_rollout("x", i, 100) for i in IDS[:1000])


def test_bucketing_is_stable_and_matches_murmur3() -> None:
    # murmur3_32("flag:user-1", seed 0) is a fixed number: same answer in every process,
    # after restarts, and in any language's murmur3 (Unleash's normalizedValue).
    import mmh3

    assert rollout_bucket("flag", "user-1") == mmh3.hash("flag:user-1", 0, signed=False) % 100 + 1
    assert [rollout_bucket("flag", f"u{i}") for i in range(5)] == [
        rollout_bucket("flag", f"u{i}") for i in range(5)
    ]


def test_weighted_variants_split() -> None:
    flag = CompiledFlag(
        FlagDefinition(
            key="ab",
            variants={"a": "blue", "b": "green", "c": "red"},
            weights={"a": 50, "b": 30, "c": 20},
        )
    )
    counts = {"a": 0, "b": 0, "c": 0}
    for i in IDS[:20_000]:
        ev = flag.evaluate({"user": i})
        assert ev.reason == "SPLIT"
        counts[str(ev.variant)] += 1
    assert abs(counts["a"] / 20_000 - 0.5) < 0.02 and abs(counts["c"] / 20_000 - 0.2) < 0.02
    no_user = flag.evaluate({})
    assert (no_user.variant, no_user.reason) == ("a", "DEFAULT")


def test_targeting_order_and_reasons() -> None:
    flag = CompiledFlag(
        FlagDefinition.model_validate(
            {
                "key": "beta",
                "allow": [{"attribute": "tenant", "values": ["acme"]}],
                "block": [{"attribute": "user", "values": ["mallory"]}],
                "rules": [
                    {
                        "conditions": [
                            {"attribute": "plan", "operator": "in", "values": ["pro"]},
                            {"attribute": "age", "operator": "gte", "values": [18]},
                        ],
                        "variant": "on",
                    }
                ],
                "rollout": 0,
            }
        )
    )
    assert flag.evaluate({"tenant": "acme", "user": "mallory"}).reason == "TARGETING_MATCH"
    assert flag.evaluate({"tenant": "acme", "user": "mallory"}).value is False  # block first
    assert flag.evaluate({"tenant": "acme", "user": "bob"}).value is True
    ev = flag.evaluate({"plan": "pro", "age": 30, "user": "x"})
    assert (ev.value, ev.reason) == (True, "TARGETING_MATCH")
    ev = flag.evaluate({"plan": "pro", "age": 12, "user": "x"})
    assert (ev.value, ev.reason) == (False, "SPLIT")
    off = CompiledFlag(FlagDefinition(key="off", enabled=False)).evaluate({})
    assert (off.value, off.reason) == (False, "DISABLED")
    on = CompiledFlag(FlagDefinition(key="on")).evaluate({})
    assert (on.value, on.reason) == (True, "DEFAULT")


@pytest.mark.parametrize(
    "bad",
    [
        {"key": "x", "rollout": 101},
        {"key": "x", "rollout": -1},
        {"key": "x", "variants": {"a": 1, "b": 2}, "weights": {"a": 50, "b": 40}},
        {"key": "x", "variants": {"a": 1}, "weights": {"z": 100}},
        {"key": "x", "rules": [{"conditions": [{"attribute": "a", "operator": "like",
                                                "values": ["1"]}], "variant": "on"}]},
        {"key": "x", "rules": [{"conditions": [{"attribute": "a", "operator": "gt",
                                                "values": ["ten"]}], "variant": "on"}]},
        {"key": "bad key"},
        {"key": "x", "default_variant": "nope"},
        {"key": "x", "rollout": 5, "weights": {"on": 100}},
    ],
)  # fmt: skip
def test_invalid_definitions(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FlagDefinition.model_validate(bad)


async def test_stickiness_survives_restart(make_flags: MakeFlags, sqlite_url: str) -> None:
    first = await make_flags(sqlite_url)
    await first.save({"key": "mobile-app", "rollout": 5})
    before = [await first.is_enabled("mobile-app", user=i) for i in IDS[:2000]]
    second = await make_flags(sqlite_url)  # a new process reading the same database
    after = [await second.is_enabled("mobile-app", user=i) for i in IDS[:2000]]
    assert before == after and 0 < sum(before) < 400


def test_split_answers_are_memoized_per_id_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from headway.flags import evaluate

    monkeypatch.setattr(evaluate, "MAX_MEMO", 100)
    flag = CompiledFlag(FlagDefinition(key="vision-analysis", rollout=10))
    for i in IDS[:1000]:
        ev = flag.evaluate({"user": i})
        assert ev.value is in_rollout("vision-analysis", i, 10) and ev.reason == "SPLIT"
        assert flag.split(i) is ev  # an Evaluation is immutable: built once, shared
    assert flag.split(42) is flag.split("42")  # ids are compared as text, as hashed
    assert flag.evaluate({}).reason == "DEFAULT"  # no stickiness id


async def test_is_enabled_agrees_with_evaluate_now(make_flags: MakeFlags) -> None:
    """The precomputed answers (on/off, splits) equal the full evaluation, counts too."""
    flags = await make_flags("memory://")
    await flags.save({"key": "on"})
    await flags.save({"key": "off", "enabled": False, "rollout": 50})
    await flags.save({"key": "split", "rollout": 50})
    await flags.save({"key": "by-tenant", "rollout": 50, "stickiness": "tenant"})
    await flags.save({"key": "by-org", "rollout": 50, "stickiness": "org"})
    await flags.save({"key": "ab", "variants": {"a": 1, "b": 2}, "weights": {"a": 50, "b": 50}})
    await flags.save({"key": "beta", "allow": [{"attribute": "org", "values": ["o1"]}]})
    allow_t1 = [{"attribute": "tenant", "values": ["t1"]}]
    await flags.save({"key": "t-beta", "allow": allow_t1, "rollout": 50})
    await flags.save({"key": "on", "enabled": False}, tenant="t1")  # a tenant's override
    cases: list[dict[str, object]] = [
        {},
        {"tenant": "t1"},
        {"user": "u1"},
        {"tenant": "t2", "user": "u2"},
        {"context": {"org": "o1", "user": "u3"}},
        {"context": {"org": "o2", "tenant": "t9"}, "user": "u4"},
        {"context": {"user": "u5"}, "user": "u6"},  # the argument wins over the context
    ]
    keys = ["on", "off", "split", "by-tenant", "by-org", "ab", "beta", "t-beta", "missing"]
    for case in cases:
        for key in keys:
            ev = flags.evaluate_now(key, **case)  # type: ignore[arg-type]
            assert await flags.is_enabled(key, **case) is ev.enabled, (key, case)  # type: ignore[arg-type]
    assert await flags.is_enabled("missing", default=True) is True
    assert sum(flags.evaluations.values()) == 2 * len(cases) * len(keys) + 1
    assert all(n % 2 == 0 for k, n in flags.evaluations.items() if k != ("missing", "ERROR"))
    assert not await flags.is_enabled("on", tenant="t1") and await flags.is_enabled("on")
    assert await flags.is_enabled("t-beta", tenant="t1", user="anyone")
