"""Every page renders from the capabilities' public API, and its actions do what they say."""

from __future__ import annotations

import asyncio
import re
import socket

import pytest
from tests.dashboard.conftest import UI, Admin

from headway import Headway


@pytest.fixture
async def hub_tasks(hub: Headway) -> Headway:
    @hub.jobs.task(name="demo.add", queue="low", retries=0)
    async def add(a: int, b: int) -> int:
        return a + b

    @hub.jobs.task(name="demo.boom", queue="low", retries=0)
    async def boom() -> None:
        raise RuntimeError("the provider said no")

    @hub.jobs.cron("*/5 * * * *", name="every-five")
    async def tick() -> None:
        return None

    hub.breakers.breaker("payments", failure_threshold=3)
    return hub


async def _run_worker(hw: Headway, until: int) -> None:
    """Run a worker on "low" until ``until`` jobs have finished there."""
    worker = hw.jobs.worker(["low"], grace=1)
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(20):
            while True:
                row = (await hw.jobs.stats()).get("low", {})
                if row.get("succeeded", 0) + row.get("failed", 0) >= until:
                    break
                await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await task


@pytest.mark.usefixtures("hub_tasks")
async def test_every_page_renders(admin: Admin) -> None:
    await admin.login()
    paths = ["/", "/overview/live", "/jobs", "/jobs/live", "/jobs/list?queue=low&state=failed"]
    paths += ["/cache", "/limits", "/breakers", "/flags", "/storage", "/database", "/audit"]
    for path in paths:
        r = await admin.client.get(UI + path)
        assert r.status_code == 200, (path, r.text[:300])
        assert "text/html" in r.headers["content-type"]
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


async def test_static_assets_are_packaged(admin: Admin) -> None:
    r = await admin.client.get(f"{UI}/static/htmx.min.js")
    assert r.status_code == 200
    assert "htmx" in r.text[:200]
    assert (await admin.client.get(f"{UI}/static/dashboard.css")).status_code == 200
    assert "Zero-Clause BSD" in (await admin.client.get(f"{UI}/static/NOTICE")).text
    assert (await admin.client.get(f"{UI}/static/../core.py")).status_code == 404


async def test_failed_job_detail_retry_and_delete(admin: Admin, hub_tasks: Headway) -> None:
    hw = hub_tasks
    await admin.login()
    failed = await hw.jobs.tasks["demo.boom"].enqueue()
    ok = await hw.jobs.tasks["demo.add"].enqueue(2, 3)
    await _run_worker(hw, 2)

    listing = await admin.client.get(f"{UI}/jobs/list?queue=low&state=failed")
    assert failed.id[:12] in listing.text and ok.id[:12] not in listing.text
    detail = await admin.client.get(f"{UI}/jobs/job/{failed.id}?queue=low")
    assert "the provider said no" in detail.text
    assert "Traceback" in detail.text and "RuntimeError" in detail.text
    done = await admin.client.get(f"{UI}/jobs/job/{ok.id}")
    assert re.search(r"<pre>5</pre>", done.text)

    r = await admin.post(f"/jobs/job/{failed.id}/retry", queue="low")
    assert r.status_code == 303
    assert (await hw.jobs.get(failed.id)).state == "queued"  # type: ignore[union-attr]
    page = await admin.client.get(r.headers["location"])
    assert f"Job {failed.id} requeued." in page.text

    r = await admin.post(f"/jobs/job/{ok.id}/delete", queue="low")
    assert r.status_code == 303
    assert await hw.jobs.get(ok.id) is None


async def test_a_missing_job_is_a_404_and_a_bad_action_an_error_message(admin: Admin) -> None:
    await admin.login()
    assert (await admin.client.get(f"{UI}/jobs/job/nope")).status_code == 404
    r = await admin.post("/jobs/job/nope/retry")
    assert r.status_code == 303
    page = await admin.client.get(r.headers["location"])
    assert "error: no job" in page.text
    r = await admin.post("/jobs/clean", state="queued", older_than_hours="1")
    assert r.status_code == 303
    assert (
        "error: clean takes a final state" in (await admin.client.get(r.headers["location"])).text
    )


async def test_search_by_task_and_tenant(admin: Admin, hub_tasks: Headway) -> None:
    hw = hub_tasks
    await admin.login()
    job = await hw.jobs.tasks["demo.add"].options(tenant="acme").enqueue(1, 1)
    other = await hw.jobs.tasks["demo.boom"].enqueue()
    r = await admin.client.get(f"{UI}/jobs/list?queue=low&state=queued&q=acme")
    assert job.id[:12] in r.text and other.id[:12] not in r.text
    r = await admin.client.get(f"{UI}/jobs/list?queue=low&state=queued&q=demo.boom")
    assert other.id[:12] in r.text and job.id[:12] not in r.text
    r = await admin.client.get(f"{UI}/jobs/list?queue=low&state=queued&q={job.id}")
    assert r.status_code == 303 and r.headers["location"].startswith(f"{UI}/jobs/job/{job.id}")


async def test_queues_cron_and_scheduled(admin: Admin, hub_tasks: Headway) -> None:
    hw = hub_tasks
    await admin.login()
    later = await hw.jobs.tasks["demo.add"].options(delay=3600).enqueue(1, 2)
    await admin.post("/jobs/queues/low/pause")
    page = (await admin.client.get(f"{UI}/jobs")).text
    assert "every-five" in page and "*/5 * * * *" in page
    assert later.id[:12] in page
    assert re.search(r'data-queue="low">\s*<th scope="row">low <span class="badge paused">', page)
    assert re.search(r'data-state="scheduled"><a [^>]*>1</a>', page)


async def test_retry_all_and_clean(admin: Admin, hub_tasks: Headway) -> None:
    hw = hub_tasks
    await admin.login()
    for _ in range(3):
        await hw.jobs.tasks["demo.boom"].enqueue()
    await _run_worker(hw, 3)
    r = await admin.post("/jobs/retry-all", queue="low")
    assert (
        "3 failed job(s) of queue low requeued."
        in (await admin.client.get(r.headers["location"])).text
    )
    assert (await hw.jobs.stats())["low"]["queued"] == 3
    await _run_worker(hw, 3)
    r = await admin.post("/jobs/clean", state="failed", older_than_hours="0", queue="low")
    assert (await hw.jobs.stats())["low"]["failed"] == 0


async def test_flags_toggle_rollout_targets_and_evaluate(admin: Admin) -> None:
    hw = admin.hw
    await admin.login()
    r = await admin.post("/flags-new", key="new-editor", description="The new editor")
    assert r.status_code == 303
    flag = await hw.flags.get("new-editor")
    assert flag["enabled"] is False

    evaluated = await admin.client.get(f"{UI}/flags/new-editor?user=u1&evaluate=1")
    assert re.search(r'id="evaluation"[^>]*><span class="badge off">', evaluated.text)
    await admin.post("/flags/new-editor/toggle")
    evaluated = await admin.client.get(f"{UI}/flags/new-editor?user=u1&evaluate=1")
    assert re.search(r'id="evaluation"[^>]*><span class="badge on">', evaluated.text)

    await admin.post("/flags/new-editor/rollout", rollout="0")
    assert (await hw.flags.get("new-editor"))["rollout"] == 0
    await admin.post("/flags/new-editor/targets", kind="allow", attribute="user", values="u1, u2")
    assert await hw.flags.is_enabled("new-editor", user="u1")
    assert not await hw.flags.is_enabled("new-editor", user="u3")
    r = await admin.post("/flags/new-editor/rollout", rollout="150")
    assert "error:" in (await admin.client.get(r.headers["location"])).text

    page = await admin.client.get(f"{UI}/flags/new-editor")
    assert "dashboard:token" in page.text  # the flag's own audit shows who changed it


async def test_breakers_force_and_reset(admin: Admin, hub_tasks: Headway) -> None:
    await admin.login()
    await admin.post("/breakers/payments/open")
    assert (await hub_tasks.breakers.describe("payments"))["state"] == "open"
    page = await admin.client.get(f"{UI}/breakers")
    assert 'data-breaker="payments"' in page.text and "forced open" in page.text
    await admin.post("/breakers/payments/reset")
    assert (await hub_tasks.breakers.describe("payments"))["state"] == "closed"
    r = await admin.post("/breakers/nope/open")
    assert "error:" in (await admin.client.get(r.headers["location"])).text


async def test_cache_clear_a_namespace_and_a_tenant(admin: Admin) -> None:
    cache = admin.hw.cache
    await admin.login()
    await cache.set("post:1", "a", tenant="acme")
    await cache.set("user:1", "b", tenant="acme")
    await cache.set("post:1", "c", tenant="globex")
    await cache.get("post:1", tenant="acme")
    page = await admin.client.get(f"{UI}/cache")
    assert '<th scope="row">post</th>' in page.text
    await admin.post("/cache/clear-namespace", namespace="post", tenant="acme")
    assert await cache.get("post:1", tenant="acme") is None
    assert await cache.get("user:1", tenant="acme") == "b"
    assert await cache.get("post:1", tenant="globex") == "c"
    await admin.post("/cache/clear-tenant", tenant="acme")
    assert await cache.get("user:1", tenant="acme") is None
    assert await cache.get("post:1", tenant="globex") == "c"
    r = await admin.post("/cache/clear-namespace", namespace="*")
    assert "error:" in (await admin.client.get(r.headers["location"])).text


@pytest.fixture
def flow(hub: Headway) -> Headway:
    from headway.workflows import approval

    @hub.jobs.task(name="wf.draft", retries=0)
    async def draft(topic: str) -> str:
        return f"draft about {topic}"

    @hub.jobs.task(name="wf.publish", retries=0)
    async def publish(text: str) -> dict[str, str]:
        return {"published": text}

    hub.workflows.chain("post", draft, approval("review", role="editor"), publish)
    return hub


async def _until(check: object, seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if await check():  # type: ignore[operator]
                return
            await asyncio.sleep(0.05)


async def test_workflow_runs_and_approvals(flow: Headway, admin: Admin) -> None:
    wf = flow.workflows
    await admin.login()
    worker = flow.jobs.worker(["workflows", "default"], poll_interval=0.01, grace=1)
    task = asyncio.create_task(worker.run())
    try:
        first = await wf.start("post", "cats", tenant="acme")
        second = await wf.start("post", "dogs", tenant="acme")

        async def two_waiting() -> bool:
            return len(await wf.approvals()) == 2

        await _until(two_waiting)
        page = await admin.client.get(f"{UI}/workflows")
        assert page.text.count("data-approval=") == 2 and "role <code>editor</code>" in page.text
        run_page = await admin.client.get(f"{UI}/workflows/runs/{first.id}")
        assert re.search(r'data-step="draft">.*?badge succeeded', run_page.text, re.S)
        assert re.search(r'data-step="review">.*?badge waiting', run_page.text, re.S)

        ids = {a.run_id: a.id for a in await wf.approvals()}
        r = await admin.post(f"/workflows/approvals/{ids[first.id]}/approve", comment="ok")
        assert r.headers["location"] == f"{UI}/workflows/runs/{first.id}"
        await admin.post(f"/workflows/approvals/{ids[second.id]}/reject")
        done = await wf.wait(first.id, 20)
        assert done.state == "completed" and done.output == {"published": "draft about cats"}
        assert (await wf.wait(second.id, 20)).state == "failed"
        decided = await wf.get_approval(ids[first.id])
        assert (decided.decided_by, decided.comment) == ("dashboard:token", "ok")
        r = await admin.post(f"/workflows/approvals/{ids[first.id]}/approve")
        assert "error:" in (await admin.client.get(r.headers["location"])).text
    finally:
        worker.stop()
        await task


@pytest.fixture
def hooks(hub: Headway, monkeypatch: pytest.MonkeyPatch) -> Headway:
    monkeypatch.setenv("HEADWAY_WEBHOOKS_ALLOW_HOSTS", "127.0.0.1")
    monkeypatch.setenv("HEADWAY_WEBHOOKS_RETRY_SCHEDULE", "0")  # one attempt, at once
    monkeypatch.setenv("HEADWAY_WEBHOOKS_DISABLE_AFTER", "1")
    hub.webhooks
    return hub


async def test_webhook_endpoints_deliveries_enable_and_replay(hooks: Headway, admin: Admin) -> None:
    wh = hooks.webhooks
    await admin.login()
    with socket.socket() as s:  # a port nobody listens on: every delivery fails
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = await wh.create_endpoint("acme", f"http://127.0.0.1:{port}/hook")
    other = await wh.create_endpoint("globex", f"http://127.0.0.1:{port}/other")
    sent = await wh.send("acme", "post.published", {"id": 1})
    worker = hooks.jobs.worker(["webhooks"], poll_interval=0.01, grace=1)
    task = asyncio.create_task(worker.run())
    try:

        async def disabled() -> bool:
            return (await wh.get_endpoint("acme", endpoint.id)).disabled

        await _until(disabled)
        listing = await admin.client.get(f"{UI}/webhooks?tenant=acme")
        assert endpoint.id in listing.text and other.id not in listing.text
        assert endpoint.secret not in listing.text
        url = f"{UI}/webhooks/endpoints/{endpoint.id}?tenant=acme"
        detail = await admin.client.get(url)
        assert sent.message_id in detail.text and "badge failed" in detail.text
        assert endpoint.secret not in detail.text
        assert (
            await admin.client.get(f"{UI}/webhooks/endpoints/{other.id}?tenant=acme")
        ).status_code == 404

        r = await admin.post(f"/webhooks/endpoints/{endpoint.id}/replay", tenant="acme",
                             message_id=sent.message_id)  # fmt: skip
        assert (
            "error: the endpoint is disabled"
            in (await admin.client.get(r.headers["location"])).text
        )
        await admin.post(f"/webhooks/endpoints/{endpoint.id}/enable", tenant="acme")
        assert not (await wh.get_endpoint("acme", endpoint.id)).disabled
        r = await admin.post(f"/webhooks/endpoints/{endpoint.id}/replay", tenant="acme",
                             message_id=sent.message_id)  # fmt: skip
        assert "1 message(s) queued" in (await admin.client.get(r.headers["location"])).text

        async def two_attempts() -> bool:
            return len(await wh.deliveries("acme", endpoint.id)) == 2

        await _until(two_attempts)
    finally:
        worker.stop()
        await task


@pytest.mark.usefixtures("hooks")
async def test_bad_input_is_a_clear_answer_never_a_500(admin: Admin) -> None:
    await admin.login()
    pages = [
        "/jobs/list?state=bogus", "/jobs/list?queue=%00&state=failed", "/jobs/list?offset=-9",
        "/jobs/list?offset=x&q=" + "z" * 500, "/jobs/job/" + "x" * 300, "/flags/nope",
        "/flags/%20bad%20key", "/workflows?state=bogus", "/workflows/runs/nope",
        "/webhooks?tenant=" + "t" * 300, "/webhooks/endpoints/nope",
        "/webhooks/endpoints/x?tenant=a",
        "/breakers/live", "/audit?action=" + "a" * 300, "/static/nope.js",
    ]  # fmt: skip
    for path in pages:
        r = await admin.client.get(UI + path)
        assert r.status_code < 500, (path, r.status_code, r.text[:200])
    actions = [
        ("/jobs/clean", {"state": "failed", "older_than_hours": "abc"}),
        ("/jobs/clean", {"state": "failed", "older_than_hours": "-1"}),
        ("/jobs/queues/bad%20name!/pause", {}),
        ("/flags/nope/toggle", {}),
        ("/flags/enable-x/rollout", {"rollout": "lots"}),
        ("/flags-new", {"key": "bad key!"}),
        ("/flags/x/targets", {"kind": "maybe"}),
        ("/workflows/approvals/nope/approve", {}),
        ("/workflows/runs/nope/cancel", {}),
        ("/webhooks/endpoints/nope/enable", {"tenant": ""}),
        ("/webhooks/endpoints/nope/replay", {"tenant": "acme", "since_hours": "x"}),
        ("/cache/clear-tenant", {"tenant": ""}),
    ]
    for path, form in actions:
        r = await admin.post(path, **form)
        assert r.status_code == 303, (path, r.status_code, r.text[:200])
        page = await admin.client.get(r.headers["location"])
        assert page.status_code < 500 and "error:" in page.text, path
    r = await admin.client.post(
        f"{UI}/jobs/clean", content=b"\xff\xfe", headers={"X-CSRF-Token": admin.csrf}
    )
    assert r.status_code == 400


async def test_storage_usage_per_tenant(admin: Admin) -> None:
    storage = admin.hw.storage
    await admin.login()
    await storage.upload("acme", "avatars", "a.png", b"x" * 2048, content_type="image/png")
    await storage.upload("acme", "docs", "b.txt", b"y" * 10, content_type="text/plain")
    await storage.upload("globex", "docs", "c.txt", b"z" * 5, content_type="text/plain")
    page = (await admin.client.get(f"{UI}/storage")).text
    assert "3 files" in page and "3 tenant(s)" not in page and "2 tenant(s)" in page
    acme = page.index('<th scope="row">acme</th>')
    globex = page.index('<th scope="row">globex</th>')
    assert acme < globex  # the largest first
    assert "2.0 KiB" in page[acme:globex] and "avatars: 1" in page[acme:globex]


async def test_limits_page_lists_the_most_limited_keys(admin: Admin, hub: Headway) -> None:
    hub.limits.policy("search", "2/minute")
    for _ in range(5):
        await hub.limits.hit("search", "ip=203.0.113.7", tenant="acme")
    await hub.limits.hit("search", "ip=198.51.100.1", tenant="acme")
    top = hub.limits.most_limited()
    assert top[0]["policy"] == "search" and top[0]["denied"] == 3
    assert "203.0.113.7" in top[0]["key"] and top[0]["tenant"] == "acme"
    assert all("198.51.100.1" not in k["key"] for k in top)  # never refused
    await admin.login()
    page = (await admin.client.get(UI + "/limits")).text
    assert "Most-limited keys" in page and "203.0.113.7" in page
