"""Tasks, handles and the worker, end to end on every backend."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from tests.conftest import backend_params
from tests.jobs.conftest import ALL_BACKENDS, eventually

from headway.errors import BackendUnavailableError
from headway.jobs import (
    Backoff,
    JobCancelled,
    JobFailed,
    JobHandle,
    JobNotFound,
    Jobs,
    Retry,
    UnknownTask,
    Worker,
    current_job,
)
from headway.jobs.models import NewJob

every_backend = pytest.mark.parametrize("backend", backend_params(*ALL_BACKENDS))
memory_only = pytest.mark.parametrize("backend", backend_params("memory"))
FAST = Backoff(base=0.01, cap=0.05, jitter=False)


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)


def fast_worker(jobs: Jobs, queues: list[str] | None = None, **kw: Any) -> Worker:
    kw.setdefault("poll_interval", 0.01)
    return jobs.worker(queues, **kw)


@every_backend
async def test_enqueue_run_result_and_record(jobs: Jobs) -> None:
    @jobs.task(name="add")
    async def add(a: int, b: int) -> dict[str, int]:
        ctx = current_job()
        await ctx.set_progress(50, "halfway")
        return {"sum": a + b, "attempt": ctx.attempt}

    handle = await add.options(tenant="t1", user_id="u1", meta={"k": "v"}).enqueue(2, b=3)
    assert handle.created and await handle.status() == "queued"
    async with running(fast_worker(jobs)):
        assert await handle.result(timeout=5) == {"sum": 5, "attempt": 1}
    job = await handle.info()
    assert job.state == "succeeded" and job.args == [2] and job.kwargs == {"b": 3}
    assert (job.tenant, job.user_id, job.meta) == ("t1", "u1", {"k": "v"})
    assert job.progress == 100 and job.worker  # the record keeps who ran it
    assert job.started_at and job.finished_at and job.enqueued_at


@every_backend
async def test_retries_with_backoff_then_failed_store(jobs: Jobs) -> None:
    calls: list[float] = []
    failures: list[str] = []
    retries: list[float] = []

    @jobs.task(name="flaky", retries=2, backoff=Backoff(base=0.05, factor=2, jitter=False))
    async def flaky() -> None:
        calls.append(time.monotonic())
        raise ValueError("boom")

    jobs.on_failure(lambda ctx, exc: failures.append(f"{ctx.id}:{exc}"))
    jobs.on_retry(lambda ctx, exc, delay: retries.append(delay))
    handle = await flaky.enqueue()
    async with running(fast_worker(jobs)):
        with pytest.raises(JobFailed, match="ValueError: boom"):
            await handle.result(timeout=5)
    assert len(calls) == 3 and retries == [0.05, 0.1]
    assert calls[1] - calls[0] >= 0.045 and calls[2] - calls[1] >= 0.095
    assert failures == [f"{handle.id}:boom"]
    [failed] = await jobs.failed()
    assert failed.id == handle.id and failed.attempts == 3
    assert failed.traceback and "ValueError: boom" in failed.traceback
    # retry from the failed store, now with a task that works
    jobs.tasks["flaky"].fn = _async_return("fixed")
    assert await jobs.retry(handle.id)
    async with running(fast_worker(jobs)):
        assert await handle.result(timeout=5) == "fixed"


def _async_return(value: Any) -> Callable[[], Any]:
    async def fn() -> Any:
        return value

    return fn


@memory_only
async def test_retry_exception_and_no_retry_list(jobs: Jobs) -> None:
    seen: list[int] = []

    @jobs.task(name="polite", retries=1)
    async def polite() -> str:
        seen.append(current_job().attempt)
        if len(seen) == 1:
            raise Retry(delay=0.05)
        return "done"

    @jobs.task(name="fatal", retries=5, no_retry_on=[KeyError], backoff=FAST)
    async def fatal() -> None:
        raise KeyError("x")

    @jobs.task(name="only_os", retries=5, retry_on=[OSError], backoff=FAST)
    async def only_os() -> None:
        raise RuntimeError("not retried")

    h1, h2, h3 = await polite.enqueue(), await fatal.enqueue(), await only_os.enqueue()
    async with running(fast_worker(jobs)):
        assert await h1.result(timeout=5) == "done"
        for h in (h2, h3):
            with pytest.raises(JobFailed):
                await h.result(timeout=5)
    assert seen == [1, 2]
    assert (await h2.info()).attempts == 1 and (await h3.info()).attempts == 1


@every_backend
async def test_non_json_argument_fails_at_enqueue(jobs: Jobs) -> None:
    @jobs.task(name="t")
    async def t(x: Any) -> None: ...

    for bad in (object(), {1: "int key"}, dt.datetime.now(), {"s": {1, 2}}):
        with pytest.raises(TypeError, match="JSON serializable"):
            await t.enqueue(bad)
    with pytest.raises(TypeError):  # nothing of a bad batch is written
        await jobs.enqueue_many([t.call(1), t.call(object())])
    assert (await jobs.stats()).get("default", {}).get("queued", 0) == 0
    with pytest.raises(UnknownTask):
        await jobs.submit("no.such.task")
    with pytest.raises(ValueError, match="priority"):
        await t.options(priority=5000).enqueue(1)
    with pytest.raises(ValueError, match="queue name"):
        await t.options(queue="bad{tag}").enqueue(1)


@every_backend
async def test_unknown_task_and_corrupt_payload_go_to_failed_store(jobs: Jobs) -> None:
    @jobs.task(name="fine")
    async def fine() -> str:
        return "ok"

    good = orjson.dumps({"task": "gone", "args": [], "kwargs": {}})
    await jobs.backend.enqueue("default", [NewJob("unknown", "gone", good)])
    await jobs.backend.enqueue("default", [NewJob("corrupt", "fine", b"\xff{not json")])
    handle = await fine.enqueue()
    async with running(fast_worker(jobs)):
        assert await handle.result(timeout=5) == "ok"  # the worker kept running
        for job_id in ("unknown", "corrupt"):
            with pytest.raises(JobFailed):
                await jobs.handle(job_id).result(timeout=5)
    unknown, corrupt = await jobs.get("unknown"), await jobs.get("corrupt")
    assert unknown and "unknown task 'gone'" in (unknown.error or "")
    assert corrupt and "corrupt job payload" in (corrupt.error or "")
    assert corrupt.meta.get("payload_error")


@memory_only
async def test_non_json_result_timeout_and_sync_tasks(jobs: Jobs) -> None:
    @jobs.task(name="weird")
    async def weird() -> object:
        return object()

    @jobs.task(name="slow", timeout=0.05, retries=0)
    async def slow() -> None:
        await asyncio.sleep(5)

    @jobs.task(name="blocking")
    def blocking(x: int) -> int:
        time.sleep(0.01)
        return x * 2

    h1, h2, h3 = await weird.enqueue(), await slow.enqueue(), await blocking.enqueue(21)
    async with running(fast_worker(jobs)):
        with pytest.raises(JobFailed, match="JSON serializable"):
            await h1.result(timeout=5)
        with pytest.raises(JobFailed, match=r"timed out after 0\.05s"):
            await h2.result(timeout=5)
        assert await h3.result(timeout=5) == 42


@every_backend
async def test_unique_job_id_returns_the_existing_job(jobs: Jobs) -> None:
    @jobs.task(name="once")
    async def once(x: int) -> int:
        return x

    first = await once.options(job_id="report-2024").enqueue(1)
    second = await once.options(job_id="report-2024").enqueue(2)
    assert first.created and not second.created and second.id == first.id
    async with running(fast_worker(jobs)):
        assert await second.result(timeout=5) == 1


@every_backend
async def test_delay_run_at_priority_and_bulk(jobs: Jobs) -> None:
    order: list[str] = []

    @jobs.task(name="rec")
    async def rec(tag: str) -> None:
        order.append(tag)

    await jobs.enqueue_many([rec.call(f"b{i}") for i in range(3)])
    await rec.options(priority=10).enqueue("urgent")
    later = await rec.options(delay=0.3).enqueue("later")
    at = await rec.options(run_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.3)).enqueue("at")
    assert await later.status() == "scheduled" and await at.status() == "scheduled"
    async with running(fast_worker(jobs, concurrency=1)):
        await later.result(timeout=5)
        await at.result(timeout=5)
    assert order[:4] == ["urgent", "b0", "b1", "b2"] and set(order[4:]) == {"later", "at"}


@memory_only
async def test_per_queue_limits_and_queue_priority(jobs: Jobs) -> None:
    active: dict[str, int] = {"reports": 0}
    peak: dict[str, int] = {"reports": 0}
    order: list[str] = []

    @jobs.task(name="report", queue="reports")
    async def report() -> None:
        active["reports"] += 1
        peak["reports"] = max(peak["reports"], active["reports"])
        await asyncio.sleep(0.02)
        active["reports"] -= 1

    @jobs.task(name="tag")
    async def tag(t: str) -> None:
        order.append(t)

    await jobs.enqueue_many([report.call() for _ in range(8)])
    await jobs.enqueue_many([tag.options(queue="low").call("low") for _ in range(3)])
    await jobs.enqueue_many([tag.options(queue="high").call("high") for _ in range(3)])
    worker = fast_worker(jobs, ["high", "low", "reports"], concurrency=1 + 2)
    async with running(worker):
        await eventually(lambda: worker.stats.succeeded >= 14)
    assert peak["reports"] == 2  # DEFAULT_QUEUE_LIMITS["reports"]
    assert order == ["high"] * 3 + ["low"] * 3


@memory_only
async def test_weighted_order_lets_low_run_before_high_is_empty(jobs: Jobs) -> None:
    order: list[str] = []

    @jobs.task(name="tag")
    async def tag(t: str) -> None:
        order.append(t)

    await jobs.enqueue_many([tag.options(queue="high").call("high") for _ in range(200)])
    await jobs.enqueue_many([tag.options(queue="low").call("low") for _ in range(20)])
    worker = fast_worker(jobs, ["high", "low"], concurrency=1, weighted={"high": 3, "low": 1})
    async with running(worker):
        await eventually(lambda: len(order) >= 220)
    assert "low" in order[:100]  # strict order would run all 200 high first


@every_backend
async def test_pause_resume_and_stats(jobs: Jobs) -> None:
    @jobs.task(name="noop", queue="email")
    async def noop() -> None: ...

    await jobs.pause("email")
    handle = await noop.enqueue()
    async with running(fast_worker(jobs, ["email"])):
        await asyncio.sleep(0.2)
        assert await handle.status() == "queued"
        stats = await jobs.stats()
        assert stats["email"]["paused"] is True and stats["email"]["queued"] == 1
        await jobs.resume("email")
        await handle.result(timeout=5)
    stats = await jobs.stats()
    assert stats["email"]["paused"] is False and stats["email"]["succeeded"] == 1
    assert [j.id for j in await jobs.list("email", "succeeded")] == [handle.id]


@every_backend
async def test_graceful_stop_puts_unfinished_jobs_back(jobs: Jobs) -> None:
    started = asyncio.Event()

    @jobs.task(name="quick")
    async def quick() -> str:
        return "q"

    @jobs.task(name="long")
    async def long() -> None:
        started.set()
        await asyncio.sleep(30)

    handle = await long.enqueue()
    worker = fast_worker(jobs, grace=0.2)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5)
    quick_handle = await quick.enqueue()
    await quick_handle.result(timeout=5)
    worker.stop()
    await asyncio.wait_for(task, 5)
    job = await handle.info()
    assert job.state == "queued" and job.attempts == 0 and worker.stats.released == 1


@every_backend
async def test_lost_lease_cancels_the_local_run(jobs: Jobs) -> None:
    cancelled = asyncio.Event()

    @jobs.task(name="stuck")
    async def stuck() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    handle = await stuck.enqueue()
    worker = fast_worker(jobs, lease=0.3)
    async with running(worker):
        await eventually(lambda: _is_running(handle))
        await jobs.pause("default")  # another owner takes the lease away:
        assert await jobs.backend.release("default", worker.id, [(handle.id, 1)]) == 1
        await asyncio.wait_for(cancelled.wait(), 5)
    assert worker.stats.lost == 1


@memory_only
async def test_retention_keeps_the_newest(jobs: Jobs) -> None:
    jobs.keep_succeeded = 3

    @jobs.task(name="noop")
    async def noop() -> None: ...

    handles = await jobs.enqueue_many([noop.call() for _ in range(6)])
    async with running(fast_worker(jobs, concurrency=1, retention_interval=0.05)):
        await handles[-1].result(timeout=5)
        await asyncio.sleep(0.2)
    assert len(await jobs.list("default", "succeeded")) == 3
    with pytest.raises(JobNotFound):
        await handles[0].info()


@memory_only
async def test_clean_cancel_delete_api(jobs: Jobs) -> None:
    @jobs.task(name="noop")
    async def noop() -> None: ...

    h1, h2 = await noop.enqueue(), await noop.options(delay=60).enqueue()
    assert await h2.cancel() and await h2.status() == "cancelled"
    assert await jobs.clean("cancelled") == 1
    assert await jobs.delete(h1.id)
    with pytest.raises(JobNotFound):
        await jobs.delete(h1.id)
    with pytest.raises(ValueError):
        await jobs.clean("queued")


async def test_redis_down_at_enqueue_is_a_typed_error(tmp_path: Any) -> None:
    from headway import Headway

    hub = Headway(jobs_url="redis://127.0.0.1:1/0", data_dir=tmp_path, connect_timeout=0.5)
    jobs = hub.add(Jobs(hub))

    @jobs.task(name="t")
    async def t() -> None: ...

    async with hub:
        with pytest.raises(BackendUnavailableError):
            await t.enqueue()


async def _is_running(handle: JobHandle) -> bool:
    return await handle.status() == "running"


@every_backend
async def test_cancel_a_running_job(jobs: Jobs) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    @jobs.task(name="endless")
    async def endless() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.set()
            raise

    @jobs.task(name="quick")
    async def quick() -> str:
        return "ok"

    handle = await endless.enqueue()
    queued = await quick.options(delay=60).enqueue()
    async with running(fast_worker(jobs, lease=0.6)) as worker:
        await asyncio.wait_for(started.wait(), 5)
        assert await handle.cancel() and await queued.cancel()
        await asyncio.wait_for(stopped.wait(), 5)
        with pytest.raises(JobCancelled):
            await handle.result(timeout=5)
        assert worker.stats.cancelled == 1 and worker.stats.failed == 0
    job = await handle.info()
    assert job.state == "cancelled" and job.attempts == 1 and job.error == "cancelled on request"
    assert await queued.status() == "cancelled"
    assert not await handle.cancel()  # already final


@every_backend
async def test_timeout_counts_as_a_failed_attempt(jobs: Jobs) -> None:
    attempts: list[int] = []

    @jobs.task(name="slow", timeout=0.05, retries=1, backoff=FAST)
    async def slow() -> None:
        attempts.append(current_job().attempt)
        await asyncio.sleep(5)

    handle = await slow.enqueue()
    async with running(fast_worker(jobs)):
        with pytest.raises(JobFailed, match=r"TimeoutError: timed out after 0\.05s"):
            await handle.result(timeout=5)
    assert attempts == [1, 2] and (await handle.info()).attempts == 2


@every_backend
async def test_unique_jobs_return_the_existing_handle(jobs: Jobs) -> None:
    @jobs.task(name="report")
    async def report(day: str) -> str:
        return day

    first = await report.options(unique_key="report:2024-01-01").enqueue("a")
    again = await report.options(unique_key="report:2024-01-01").enqueue("b")
    [bulk] = await jobs.enqueue_many([report.options(unique_key="report:2024-01-01").call("c")])
    other = await jobs.submit("report", ["d"], unique_key="report:2024-01-02", unique_ttl=60)
    assert first.created and not again.created and not bulk.created and other.created
    assert again.id == bulk.id == first.id != other.id
    async with running(fast_worker(jobs)):
        assert await again.result(timeout=5) == "a"
        assert await other.result(timeout=5) == "d"
    later = await report.options(unique_key="report:2024-01-01").enqueue("e")
    assert later.created and later.id != first.id  # the first one finished: no TTL
    assert (await jobs.submit("report", ["f"], unique_key="report:2024-01-02")).id == other.id
    for bad in ({"unique_key": ""}, {"unique_key": "k", "unique_ttl": -1}, {"unique_ttl": 5}):
        with pytest.raises(ValueError, match="unique"):
            await report.options(**bad).enqueue("x")


@every_backend
async def test_rate_limited_queue_across_workers(jobs: Jobs) -> None:
    starts: list[float] = []

    @jobs.task(name="call_model", queue="ai")
    async def call_model() -> None:
        starts.append(time.monotonic())

    jobs.rate_limit("ai", 4, per=0.4)
    await jobs.enqueue_many([call_model.call() for _ in range(10)])
    two = [fast_worker(jobs, ["ai"], concurrency=10) for _ in range(2)]
    async with running(two[0]), running(two[1]):
        await eventually(lambda: len(starts) == 10, within=10)
    starts.sort()
    # any 5 consecutive starts span about a period (never more than 4 per 0.4 s; the
    # margin is for a task that starts late after its claim on a busy machine)
    assert all(b - a >= 0.2 for a, b in zip(starts, starts[4:], strict=False)), starts
    assert (await jobs.stats())["ai"]["succeeded"] == 10 and not await jobs.failed()
    with pytest.raises(ValueError, match="starts"):
        jobs.rate_limit("ai", 0)
    with pytest.raises(ValueError, match="give starts"):
        jobs.rate_limit("ai")
