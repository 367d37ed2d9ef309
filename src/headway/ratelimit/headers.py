"""Response headers: IETF ``RateLimit-Policy`` / ``RateLimit`` and ``X-RateLimit-*``.

The IETF fields follow draft-ietf-httpapi-ratelimit-headers-11: both are Structured
Field Lists of Items whose value is the policy name (a String), with ``q`` (quota) and
``w`` (window, seconds) on the policy, ``r`` (remaining) and ``t`` (seconds until the
quota resets; the Retry-After time for an exhausted one) on the state::

    RateLimit-Policy: "plan";q=1000;w=60, "upload";q=10;w=60
    RateLimit: "plan";r=998;t=42, "upload";r=9;t=42

``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (delta seconds) describe the
tightest policy: the violated one, else the one with the fewest units left.
"""

from __future__ import annotations

from collections.abc import Sequence

from headway.ratelimit.decision import Result

RawHeaders = list[tuple[bytes, bytes]]
_policy_cache: dict[tuple[tuple[str, int, int], ...], bytes] = {}


def policy_field(results: Sequence[Result]) -> bytes:
    """The ``RateLimit-Policy`` value (cached: it only changes with the policies)."""
    key = tuple((r.policy, r.limit, r.window) for r in results)
    value = _policy_cache.get(key)
    if value is None:
        value = ", ".join(f'"{p}";q={q};w={w}' for p, q, w in key).encode()
        if len(_policy_cache) > 1024:
            _policy_cache.clear()
        _policy_cache[key] = value
    return value


def state_field(results: Sequence[Result]) -> bytes:
    return ", ".join(f'"{r.policy}";r={r.remaining};t={r.reset}' for r in results).encode()


def tightest(results: Sequence[Result]) -> Result:
    denied = [r for r in results if not r.allowed]
    if denied:
        return max(denied, key=lambda r: r.retry_after)
    return min(results, key=lambda r: (r.remaining, -r.reset))


# policy -> (limit, window, RateLimit-Policy value, b'"policy";r=', limit as bytes)
_one_cache: dict[str, tuple[int, int, bytes, bytes, bytes]] = {}


def _parts(result: Result) -> tuple[int, int, bytes, bytes, bytes]:
    """The bytes of a single result's headers that only change with its policy."""
    found = _one_cache.get(result.policy)
    if found is None or found[0] != result.limit or found[1] != result.window:
        if len(_one_cache) > 1024:
            _one_cache.clear()
        found = _one_cache[result.policy] = (
            result.limit,
            result.window,
            policy_field((result,)),
            f'"{result.policy}";r='.encode(),
            b"%d" % result.limit,
        )
    return found


def _one(result: Result, ietf: bool, legacy: bool) -> RawHeaders:
    """:func:`rate_limit_headers` of a single result (the common case), built directly."""
    remaining, reset = result.remaining, result.reset
    parts = _parts(result)
    out: RawHeaders = []
    if ietf:
        out.append((b"ratelimit-policy", parts[2]))
        out.append((b"ratelimit", b"%b%d;t=%d" % (parts[3], remaining, reset)))
    if legacy:
        out.append((b"x-ratelimit-limit", parts[4]))
        out.append((b"x-ratelimit-remaining", b"%d" % remaining))
        out.append((b"x-ratelimit-reset", b"%d" % reset))
    if not result.allowed:
        out.append((b"retry-after", b"%d" % result.retry_after))
    return out


def rate_limit_headers(
    results: Sequence[Result], ietf: bool = True, legacy: bool = True
) -> RawHeaders:
    """The raw header list for ``results`` (empty when there are none)."""
    if not results:
        return []
    if len(results) == 1 and _ints(results[0]):
        return _one(results[0], ietf, legacy)
    out: RawHeaders = []
    if ietf:
        out.append((b"ratelimit-policy", policy_field(results)))
        out.append((b"ratelimit", state_field(results)))
    if legacy:
        tight = tightest(results)
        out.append((b"x-ratelimit-limit", str(tight.limit).encode()))
        out.append((b"x-ratelimit-remaining", str(tight.remaining).encode()))
        out.append((b"x-ratelimit-reset", str(tight.reset).encode()))
    denied = [r.retry_after for r in results if not r.allowed]
    if denied:
        out.append((b"retry-after", str(max(denied)).encode()))
    return out


def _ints(r: Result) -> bool:
    """Plain ints, which ``%d`` writes as ``str()`` does (not an int subclass)."""
    return (
        type(r.limit) is int
        and type(r.remaining) is int
        and type(r.reset) is int
        and type(r.retry_after) is int
    )


def as_dict(headers: RawHeaders) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in headers}


__all__ = ["as_dict", "policy_field", "rate_limit_headers", "state_field", "tightest"]
