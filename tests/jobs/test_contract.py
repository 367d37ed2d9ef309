"""The job backend contract: every backend (memory, SQLite, Redis) passes the same tests."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from tests.conftest import backend_params
from tests.jobs.conftest import ALL_BACKENDS

from headway.jobs import JobBackend
from headway.jobs.models import NewJob, Outcome, RateLimit

pytestmark = pytest.mark.parametrize("backend", backend_params(*ALL_BACKENDS))

Q = "default"


def new(job_id: str, *, priority: int = 0, delay: float = 0.0, attempts: int = 3) -> NewJob:
    data = orjson.dumps({"task": "t", "args": [job_id], "kwargs": {}})
    return NewJob(job_id, "t", data, priority, attempts, delay)


async def test_enqueue_then_claim_marks_running(store: JobBackend) -> None:
    assert await store.enqueue(Q, [new("a")]) == [True]
    rec = await store.get("a", Q)
    assert rec is not None and rec.state == "queued" and rec.attempts == 0
    [job] = await store.claim(Q, "w1", 10, 30)
    assert (job.id, job.queue, job.attempt, job.max_attempts) == ("a", Q, 1, 3)
    assert orjson.loads(job.data)["args"] == ["a"]
    rec = await store.get("a", Q)
    assert rec is not None
    assert (rec.state, rec.worker, rec.attempts) == ("running", "w1", 1)
    assert rec.started_at is not None and rec.enqueued_at is not None
    assert await store.claim(Q, "w2", 10, 30) == []


async def test_duplicate_id_is_not_stored_twice(store: JobBackend) -> None:
    assert await store.enqueue(Q, [new("a", priority=1)]) == [True]
    assert await store.enqueue(Q, [new("a", priority=5), new("b")]) == [False, True]
    rec = await store.get("a", Q)
    assert rec is not None and rec.priority == 1
    # still refused once it has finished
    await store.claim(Q, "w", 10, 30)
    await store.finish(Q, "w", [Outcome("a", 1, "succeeded", result=b"1")])
    assert await store.enqueue(Q, [new("a")]) == [False]


async def test_priority_then_fifo(store: JobBackend) -> None:
    await store.enqueue(Q, [new("low1", priority=-1), new("n1"), new("hi", priority=5)])
    await store.enqueue(Q, [new("n2"), new("low2", priority=-1)])
    order = [j.id for j in await store.claim(Q, "w", 2, 30)]
    order += [j.id for j in await store.claim(Q, "w", 10, 30)]
    assert order[:2] == ["hi", "n1"]
    assert order[2:3] == ["n2"] and sorted(order[3:]) == ["low1", "low2"]
    listed = await store.list(Q, "running", limit=10)
    assert len(listed) == 5


async def test_claim_respects_limit(store: JobBackend) -> None:
    await store.enqueue(Q, [new(f"j{i}") for i in range(25)])
    assert len(await store.claim(Q, "w", 10, 30)) == 10
    assert len(await store.claim(Q, "w", 100, 30)) == 15


async def test_delayed_job_waits_for_its_time(store: JobBackend) -> None:
    await store.enqueue(Q, [new("later", delay=0.3), new("now")])
    rec = await store.get("later", Q)
    assert rec is not None and rec.state == "scheduled"
    assert [j.id for j in await store.claim(Q, "w", 10, 30)] == ["now"]
    await asyncio.sleep(0.35)
    assert [j.id for j in await store.claim(Q, "w", 10, 30)] == ["later"]


async def test_expired_lease_is_reclaimed_and_old_owner_locked_out(store: JobBackend) -> None:
    await store.enqueue(Q, [new("a")])
    assert len(await store.claim(Q, "w1", 1, 0.2)) == 1
    assert await store.claim(Q, "w2", 1, 30) == []  # lease alive: nobody else gets it
    await asyncio.sleep(0.3)
    [second] = await store.claim(Q, "w2", 1, 30)
    assert (second.id, second.attempt) == ("a", 2)
    assert await store.heartbeat(Q, "w1", [("a", 1)], 30) == (["a"], [])
    assert await store.finish(Q, "w1", [Outcome("a", 1, "succeeded", result=b"1")]) == [False]
    assert await store.set_progress(Q, ("a", 1), 50, None) is False
    assert await store.release(Q, "w1", [("a", 1)]) == 0
    assert await store.finish(Q, "w2", [Outcome("a", 2, "succeeded", result=b"2")]) == [True]
    rec = await store.get("a", Q)
    assert rec is not None and rec.state == "succeeded" and rec.result == b"2"


async def test_heartbeat_keeps_the_lease(store: JobBackend) -> None:
    await store.enqueue(Q, [new("a")])
    await store.claim(Q, "w1", 1, 0.3)
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert await store.heartbeat(Q, "w1", [("a", 1)], 0.3) == ([], [])
    assert await store.claim(Q, "w2", 1, 30) == []


async def test_lease_expiry_after_last_attempt_fails_the_job(store: JobBackend) -> None:
    await store.enqueue(Q, [new("a", attempts=1)])
    await store.claim(Q, "w1", 1, 0.1)
    await asyncio.sleep(0.2)
    assert await store.claim(Q, "w2", 1, 30) == []
    rec = await store.get("a", Q)
    assert rec is not None and rec.state == "failed" and "lease expired" in (rec.error or "")


async def test_finish_outcomes(store: JobBackend) -> None:
    await store.enqueue(Q, [new("ok"), new("bad"), new("again")])
    await store.claim(Q, "w", 10, 30)
    outcomes = [
        Outcome("ok", 1, "succeeded", result=b'{"x":1}'),
        Outcome("bad", 1, "failed", error="ValueError: no", traceback="Traceback..."),
        Outcome("again", 1, "retry", error="E", delay=0.2),
    ]
    assert await store.finish(Q, "w", outcomes) == [True, True, True]
    ok, bad, again = [await store.get(i, Q) for i in ("ok", "bad", "again")]
    assert ok and ok.state == "succeeded" and ok.result == b'{"x":1}' and ok.finished_at
    assert ok.progress == 100
    assert bad and bad.state == "failed" and bad.error == "ValueError: no"
    assert bad.traceback == "Traceback..."
    assert again and again.state == "scheduled" and again.error == "E"
    assert await store.claim(Q, "w", 10, 30) == []
    await asyncio.sleep(0.25)
    [job] = await store.claim(Q, "w", 10, 30)
    assert (job.id, job.attempt) == ("again", 2)


async def test_release_gives_the_attempt_back(store: JobBackend) -> None:
    await store.enqueue(Q, [new("a"), new("b")])
    await store.claim(Q, "w", 10, 30)
    assert await store.release(Q, "w", [("a", 1), ("b", 1)]) == 2
    rec = await store.get("a", Q)
    assert rec is not None and rec.state == "queued" and rec.attempts == 0
    assert {j.attempt for j in await store.claim(Q, "w", 10, 30)} == {1}


async def test_progress(store: JobBackend) -> None:
    await store.enqueue(Q, [new("a")])
    assert await store.set_progress(Q, ("a", 1), 10, None) is False  # not running
    await store.claim(Q, "w", 1, 30)
    assert await store.set_progress(Q, ("a", 1), 40, "step 2") is True
    rec = await store.get("a", Q)
    assert rec is not None and (rec.progress, rec.progress_message) == (40, "step 2")


async def test_pause_and_resume(store: JobBackend) -> None:
    await store.enqueue(Q, [new("a")])
    await store.pause(Q)
    assert await store.paused() == {Q}
    assert await store.claim(Q, "w", 10, 30) == []
    assert await store.enqueue(Q, [new("b")]) == [True]
    await store.resume(Q)
    assert await store.paused() == set()
    assert len(await store.claim(Q, "w", 10, 30)) == 2


async def test_counts_queues_and_get_anywhere(store: JobBackend) -> None:
    await store.enqueue(Q, [new("a"), new("b"), new("c", delay=60)])
    await store.enqueue("email", [new("e")])
    await store.claim(Q, "w", 1, 30)
    assert await store.queues() == [Q, "email"] or await store.queues() == ["default", "email"]
    counts = await store.counts()
    assert counts[Q]["queued"] == 1 and counts[Q]["running"] == 1
    assert counts[Q]["scheduled"] == 1 and counts["email"]["queued"] == 1
    assert counts["email"]["failed"] == 0
    rec = await store.get("e")
    assert rec is not None and rec.queue == "email"
    assert await store.get("nope") is None


async def test_retry_cancel_delete(store: JobBackend) -> None:
    await store.enqueue(Q, [new("f1"), new("f2"), new("q"), new("s", delay=60)])
    await store.claim(Q, "w", 2, 30)
    await store.finish(Q, "w", [Outcome(i, 1, "failed", error="x") for i in ("f1", "f2")])
    assert await store.cancel(Q, "q") and await store.cancel(Q, "s")
    assert not await store.cancel(Q, "f1")
    assert [r.id for r in await store.list(Q, "cancelled")] in (["s", "q"], ["q", "s"])
    assert await store.retry(Q, ["f1"]) == 1
    rec = await store.get("f1", Q)
    assert rec is not None and rec.state == "queued" and rec.attempts == 0
    assert await store.retry(Q, None) == 1  # every failed job (f2), not the cancelled ones
    assert await store.retry(Q, ["q"]) == 1  # a cancelled job by id
    running = await store.claim(Q, "w", 1, 30)
    assert not await store.delete(Q, running[0].id)  # running: refused
    assert await store.delete(Q, "s") and await store.get("s", Q) is None
    assert not await store.delete(Q, "s")


async def test_clean_by_count_and_age(store: JobBackend) -> None:
    await store.enqueue(Q, [new(f"j{i}") for i in range(6)])
    for i in range(6):
        await store.claim(Q, "w", 1, 30)
        await store.finish(Q, "w", [Outcome(f"j{i}", 1, "succeeded", result=b"0")])
        await asyncio.sleep(0.01)
    assert await store.clean(Q, "succeeded", keep=4) == 2
    assert [r.id for r in await store.list(Q, "succeeded")] == ["j5", "j4", "j3", "j2"]
    assert await store.clean(Q, "succeeded", older_than=3600) == 0
    await asyncio.sleep(0.05)
    assert await store.clean(Q, "succeeded", older_than=0.03) == 4
    assert await store.clean(Q, "queued") == 0  # only final states are cleaned


async def test_concurrent_claims_never_share_a_job(store: JobBackend) -> None:
    await store.enqueue(Q, [new(f"j{i}") for i in range(200)])
    batches = await asyncio.gather(*(store.claim(Q, f"w{i}", 7, 30) for i in range(40)))
    ids = [j.id for batch in batches for j in batch]
    assert len(ids) == len(set(ids)) == 200


async def test_cancel_a_running_job_is_a_request_its_worker_acks(store: JobBackend) -> None:
    await store.enqueue(Q, [new("a"), new("b"), new("c"), new("d")])
    await store.claim(Q, "w", 4, 30)
    for job_id in "abcd":
        assert await store.cancel(Q, job_id)
    rec = await store.get("a", Q)
    assert rec is not None and rec.state == "running" and rec.cancel_requested
    beat = await store.heartbeat(Q, "w", [("a", 1), ("b", 1), ("zz", 1)], 30)
    assert beat == (["zz"], ["a", "b"])
    outcomes = [
        Outcome("a", 1, "cancelled", error="cancelled on request"),
        Outcome("b", 1, "retry", error="E", delay=0),  # asked to cancel: no more tries
        Outcome("c", 1, "succeeded", result=b"1"),  # finished first: the result stands
    ]
    assert await store.finish(Q, "w", outcomes) == [True, True, True]
    assert await store.release(Q, "w", [("d", 1)]) == 1  # put back: cancelled instead
    states = {i: (await store.get(i, Q)).state for i in "abcd"}  # type: ignore[union-attr]
    assert states == {"a": "cancelled", "b": "cancelled", "c": "succeeded", "d": "cancelled"}
    assert not await store.cancel(Q, "c") and not await store.cancel(Q, "nope")
    assert await store.claim(Q, "w", 10, 30) == []
    assert await store.retry(Q, ["a"]) == 1  # a retried job starts afresh
    rec = await store.get("a", Q)
    assert rec is not None and rec.state == "queued" and not rec.cancel_requested


async def test_cancel_requested_job_whose_worker_died_ends_cancelled(store: JobBackend) -> None:
    await store.enqueue(Q, [new("a")])
    await store.claim(Q, "w1", 1, 0.1)
    assert await store.cancel(Q, "a")
    await asyncio.sleep(0.2)
    assert await store.claim(Q, "w2", 1, 30) == []  # not run again
    rec = await store.get("a", Q)
    assert rec is not None and rec.state == "cancelled" and rec.finished_at


def uniq(job_id: str, key: str, ttl: float = 0.0) -> NewJob:
    return NewJob(job_id, "t", b"{}", 0, 3, 0.0, None, key, ttl)


async def test_unique_key_while_unfinished(store: JobBackend) -> None:
    assert await store.enqueue(Q, [uniq("a", "k")]) == [True]
    assert await store.enqueue(Q, [uniq("b", "k"), new("c")]) == ["a", True]
    assert await store.enqueue(Q, [uniq("x", "k3"), uniq("y", "k3")]) == [True, "x"]
    assert await store.enqueue("email", [uniq("z", "k")]) == [True]  # per queue
    claimed = {j.id for j in await store.claim(Q, "w", 10, 30)}
    assert claimed == {"a", "c", "x"} and await store.get("b", Q) is None
    assert await store.enqueue(Q, [uniq("d", "k")]) == ["a"]  # running: still held
    await store.finish(Q, "w", [Outcome("a", 1, "succeeded", result=b"1")])
    assert await store.enqueue(Q, [uniq("e", "k")]) == [True]  # finished, no TTL: free
    assert await store.enqueue(Q, [uniq("e", "other")]) == [False]  # id taken: as before


async def test_unique_key_ttl_outlives_the_job(store: JobBackend) -> None:
    assert await store.enqueue(Q, [uniq("f", "k2", ttl=0.4)]) == [True]
    await store.claim(Q, "w", 1, 30)
    await store.finish(Q, "w", [Outcome("f", 1, "failed", error="x")])
    assert await store.enqueue(Q, [uniq("g", "k2", ttl=0.4)]) == ["f"]
    await asyncio.sleep(0.45)
    assert await store.enqueue(Q, [uniq("h", "k2")]) == [True]


async def test_unique_key_is_atomic_under_concurrency(store: JobBackend) -> None:
    replies = await asyncio.gather(*(store.enqueue(Q, [uniq(f"j{i}", "same")]) for i in range(20)))
    flat = [r[0] for r in replies]
    winners = [f"j{i}" for i, r in enumerate(flat) if r is True]
    assert len(winners) == 1 and all(r == winners[0] for r in flat if r is not True)
    counts = await store.counts()
    assert counts[Q]["queued"] == 1


def tjob(job_id: str, tenant: str | None, priority: int = 0) -> NewJob:
    return NewJob(job_id, "t", b"{}", priority, 3, 0.0, tenant)


async def test_a_busy_tenant_delays_another_by_one_claim_at_most(store: JobBackend) -> None:
    for start in range(0, 10_000, 500):
        await store.enqueue(Q, [tjob(f"a{i}", "A") for i in range(start, start + 500)])
    await store.enqueue(Q, [tjob("b0", "B")])
    ids = [j.id for j in await store.claim(Q, "w", 50, 30)]
    assert len(ids) == 50 and "b0" in ids
    assert [i for i in ids if i != "b0"] == [f"a{i}" for i in range(49)]  # A: in order
    assert (await store.counts())[Q]["queued"] == 10_000 - 49


async def test_tenants_take_turns_claim_after_claim(store: JobBackend) -> None:
    jobs = [tjob(f"{t or 'n'}{i}", t) for t in ("A", "B", None) for i in range(3)]
    jobs.append(tjob("A-urgent", "A", priority=5))
    await store.enqueue(Q, jobs)
    order = []
    for _ in range(10):
        [job] = await store.claim(Q, "w", 1, 30)
        order.append(job.id)
    owner = [i[0] if i[0] != "n" else "" for i in order]
    for window in (owner[0:3], owner[3:6], owner[6:9]):  # every source once per round
        assert sorted(window) == ["", "A", "B"], order
    assert order.index("A-urgent") < order.index("A0")  # priority within a tenant
    assert await store.claim(Q, "w", 1, 30) == []
    listed = [r.id for r in await store.list(Q, "running", limit=20)]
    assert sorted(listed) == sorted(order)


async def test_rate_limited_queue_waits_for_the_window(store: JobBackend) -> None:
    rate = RateLimit(starts=3, period=0.5)
    await store.enqueue(Q, [new(f"j{i}") for i in range(8)])
    first = await store.claim(Q, "w1", 10, 30, rate)
    assert [j.id for j in first] == ["j0", "j1", "j2"]
    await store.finish(Q, "w1", [Outcome(j.id, 1, "succeeded") for j in first])
    assert await store.claim(Q, "w2", 10, 30, rate) == []  # starts, not running jobs
    assert (await store.counts())[Q]["queued"] == 5  # they wait, they do not fail
    await asyncio.sleep(0.55)
    assert [j.id for j in await store.claim(Q, "w2", 10, 30, rate)] == ["j3", "j4", "j5"]
    assert len(await store.claim(Q, "w1", 10, 30)) == 2  # no limit given: no limit


async def test_rate_limit_is_shared_by_concurrent_claims(store: JobBackend) -> None:
    rate = RateLimit(starts=5, period=30)
    await store.enqueue(Q, [new(f"j{i}") for i in range(40)])
    batches = await asyncio.gather(*(store.claim(Q, f"w{i}", 3, 30, rate) for i in range(10)))
    assert sum(len(b) for b in batches) == 5


async def test_per_tenant_rate_limit(store: JobBackend) -> None:
    rate = RateLimit(per_tenant=2, period=0.5)
    await store.enqueue(Q, [tjob(f"{t or 'n'}{i}", t) for t in ("A", "B", None) for i in range(4)])
    got = [j.id for j in await store.claim(Q, "w", 20, 30, rate)]
    assert sorted(got) == ["A0", "A1", "B0", "B1", "n0", "n1"]
    assert await store.claim(Q, "w", 20, 30, rate) == []
    await store.enqueue(Q, [tjob("C0", "C")])  # a tenant with room still gets in
    assert [j.id for j in await store.claim(Q, "w", 20, 30, rate)] == ["C0"]
    await asyncio.sleep(0.55)
    assert len(await store.claim(Q, "w", 20, 30, rate)) == 6
