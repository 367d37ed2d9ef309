"""Deliveries through the job worker to a receiver on 127.0.0.1, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import pytest
from standardwebhooks import Webhook
from tests.webhooks.conftest import Env, wait_disabled, wait_log

from headway.notify import Recipient
from headway.webhooks import EndpointDisabled, EndpointNotFound, InvalidEndpoint

OWNER = "u-1"


async def test_a_message_arrives_signed_and_logged(env: Env) -> None:
    ep = await env.webhooks.create_endpoint(
        "acme", env.receiver.url(), event_types=["execution.*"], description="ci"
    )
    sent = await env.webhooks.send("acme", "execution.completed", {"execution_id": 7})
    assert sent.endpoints == [ep.id]
    (request,) = await env.receiver.wait_for(1)
    assert request.headers["webhook-id"] == sent.message_id
    body = Webhook(ep.secret).verify(request.body, request.headers)
    assert body["type"] == "execution.completed"
    assert body["data"] == {"execution_id": 7}
    (row,) = await wait_log(env, "acme", ep.id, 1)
    assert (row.attempt, row.outcome, row.status_code) == (1, "succeeded", 200)
    assert row.response == '{"ok": true}'
    assert row.latency_ms > 0


async def test_only_subscribed_enabled_endpoints_get_a_message(env: Env) -> None:
    wanted = await env.webhooks.create_endpoint("acme", env.receiver.url("/a"), event_types=["*"])
    await env.webhooks.create_endpoint("acme", env.receiver.url("/b"), event_types=["post.*"])
    off = await env.webhooks.create_endpoint("acme", env.receiver.url("/c"))
    await env.webhooks.disable("acme", off.id)
    sent = await env.webhooks.send("acme", "execution.failed", {})
    assert sent.endpoints == [wanted.id]
    await env.receiver.wait_for(1)
    await asyncio.sleep(0.2)
    assert [r.path for r in env.receiver.requests] == ["/a"]


async def test_tenants_never_see_each_other(env: Env) -> None:
    ep = await env.webhooks.create_endpoint("acme", env.receiver.url())
    assert await env.webhooks.list_endpoints("globex") == []
    for call in (
        env.webhooks.get_endpoint("globex", ep.id),
        env.webhooks.update_endpoint("globex", ep.id, description="x"),
        env.webhooks.rotate_secret("globex", ep.id),
        env.webhooks.enable("globex", ep.id),
        env.webhooks.delete_endpoint("globex", ep.id),
        env.webhooks.deliveries("globex", ep.id),
        env.webhooks.replay("globex", ep.id, since=0),
    ):
        with pytest.raises(EndpointNotFound):
            await call
    assert (await env.webhooks.send("globex", "execution.completed", {})).endpoints == []
    assert (await env.webhooks.get_endpoint("acme", ep.id)).description == ""


@pytest.mark.parametrize("overrides", [{"retry_schedule": [0, 0.05, 0.05, 0.05], "timeout": 0.3}])
async def test_failures_retry_on_the_schedule_with_the_same_id(env: Env) -> None:
    env.receiver.script = [500, 302, ("sleep", 1.0, 200)]  # error, redirect, too slow, then 200
    ep = await env.webhooks.create_endpoint("acme", env.receiver.url())
    sent = await env.webhooks.send("acme", "execution.completed", {"n": 1})
    rows = await wait_log(env, "acme", ep.id, 4)
    assert [(r.attempt, r.outcome, r.status_code) for r in rows] == [
        (1, "failed", 500), (2, "failed", 302), (3, "failed", None), (4, "succeeded", 200),
    ]  # fmt: skip
    assert "redirects are not followed" in (rows[1].error or "")
    assert "no answer within" in (rows[2].error or "")
    assert {r.headers["webhook-id"] for r in env.receiver.requests} == {sent.message_id}
    assert all(r.path == "/hook" for r in env.receiver.requests)  # the 302 was not followed
    assert (await env.webhooks.get_endpoint("acme", ep.id)).failures == 0


async def test_a_410_disables_at_once_and_tells_the_owner(env: Env) -> None:
    await _owner_gets_push(env)
    env.receiver.script = [410]
    ep = await env.webhooks.create_endpoint("acme", env.receiver.url(), owner=OWNER)
    await env.webhooks.send("acme", "execution.completed", {})
    disabled = await wait_disabled(env, "acme", ep.id)
    assert "410" in (disabled.disabled_reason or "")
    push = await _push_received(env)
    assert push["event"] == "webhook.endpoint_disabled"
    assert push["context"]["endpoint_id"] == ep.id
    assert len(await wait_log(env, "acme", ep.id, 1)) == 1  # no retry after a 410


@pytest.mark.parametrize("overrides", [{"disable_after": 3}])
async def test_consecutive_failures_disable_then_enable_and_replay(env: Env) -> None:
    await _owner_gets_push(env)
    env.receiver.script = [500, 500, 500]
    ep = await env.webhooks.create_endpoint("acme", env.receiver.url(), owner=OWNER)
    first = await env.webhooks.send("acme", "execution.completed", {"n": 1})
    disabled = await wait_disabled(env, "acme", ep.id)
    assert disabled.disabled_reason == "3 consecutive failed deliveries"
    assert (await _push_received(env))["event"] == "webhook.endpoint_disabled"
    missed = await env.webhooks.send("acme", "execution.completed", {"n": 2})
    assert missed.endpoints == []  # kept for a replay, not sent
    with pytest.raises(EndpointDisabled):
        await env.webhooks.replay("acme", ep.id, since=0)
    await env.webhooks.enable("acme", ep.id)
    assert await env.webhooks.replay("acme", ep.id, since=time.time() - 60) == 2
    rows = await wait_log(env, "acme", ep.id, 5)
    ok = {r.message_id for r in rows if r.outcome == "succeeded"}
    assert ok == {first.message_id, missed.message_id}


async def test_replay_one_message_resends_the_same_webhook_id(env: Env) -> None:
    ep = await env.webhooks.create_endpoint("acme", env.receiver.url())
    sent = await env.webhooks.send("acme", "execution.completed", {"n": 1})
    await wait_log(env, "acme", ep.id, 1)
    assert await env.webhooks.replay("acme", ep.id, message_id=sent.message_id) == 1
    await wait_log(env, "acme", ep.id, 2)
    first, second = env.receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == sent.message_id
    assert first.body == second.body


async def test_a_repeated_send_with_the_same_id_is_delivered_once(env: Env) -> None:
    ep = await env.webhooks.create_endpoint("acme", env.receiver.url())
    await env.webhooks.send("acme", "execution.completed", {}, message_id="msg_once")
    await env.webhooks.send("acme", "execution.completed", {}, message_id="msg_once")
    await wait_log(env, "acme", ep.id, 1)
    await asyncio.sleep(0.2)
    assert len(env.receiver.requests) == 1


async def test_rotation_signs_with_both_secrets_during_the_overlap(env: Env) -> None:
    ep = await env.webhooks.create_endpoint("acme", env.receiver.url())
    rotated = await env.webhooks.rotate_secret("acme", ep.id)
    assert rotated.secret != ep.secret
    await env.webhooks.send("acme", "execution.completed", {})
    (request,) = await env.receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(ep.secret).verify(request.body, request.headers)
    Webhook(rotated.secret).verify(request.body, request.headers)


async def test_dns_rebinding_is_refused_at_delivery(env: Env) -> None:
    answers = {"hooks.example.test": ["93.184.216.34"]}

    async def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    env.webhooks.guard.resolver = resolve
    env.webhooks.guard.allow_nets = []  # this test: no allow-list
    url = f"http://hooks.example.test:{env.receiver.port}/hook"
    ep = await env.webhooks.create_endpoint("acme", url)
    answers["hooks.example.test"] = ["127.0.0.1"]  # the name now points inside
    await env.webhooks.send("acme", "execution.completed", {})
    row = (await wait_log(env, "acme", ep.id, 1))[0]
    assert row.outcome == "failed" and "non-public" in (row.error or "")
    assert env.receiver.requests == []


async def test_the_request_goes_to_the_checked_address(env: Env) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # a name no real DNS knows: only the pinned address reaches it

    env.webhooks.guard.resolver = resolve
    ep = await env.webhooks.create_endpoint(
        "acme", f"http://hooks.example.test:{env.receiver.port}/in"
    )
    await env.webhooks.send("acme", "execution.completed", {})
    (request,) = await env.receiver.wait_for(1)
    assert request.headers["host"] == f"hooks.example.test:{env.receiver.port}"
    assert (await wait_log(env, "acme", ep.id, 1))[0].outcome == "succeeded"


async def test_bad_input_is_a_typed_error(env: Env) -> None:
    for url in ("http://10.0.0.1/x", "ftp://127.0.0.1/x", "not a url"):
        with pytest.raises(InvalidEndpoint):
            await env.webhooks.create_endpoint("acme", url)
    with pytest.raises(InvalidEndpoint):
        await env.webhooks.create_endpoint("acme", env.receiver.url(), secret="nope")
    with pytest.raises(InvalidEndpoint):
        await env.webhooks.create_endpoint("acme", env.receiver.url(), event_types=["a b"])
    with pytest.raises(InvalidEndpoint):
        await env.webhooks.send("acme", "bad event", {})
    await env.webhooks.create_endpoint("acme", env.receiver.url())
    with pytest.raises(InvalidEndpoint):
        await env.webhooks.send("acme", "x", {"v": object()})
    with pytest.raises(InvalidEndpoint):
        await env.webhooks.send("acme", "x", "y" * 300_000)


@pytest.mark.parametrize("overrides", [{"log_keep": 2, "max_endpoints": 1}])
async def test_log_retention_and_endpoint_quota(env: Env) -> None:
    from headway.webhooks import TooManyEndpoints

    ep = await env.webhooks.create_endpoint("acme", env.receiver.url())
    with pytest.raises(TooManyEndpoints):
        await env.webhooks.create_endpoint("acme", env.receiver.url())
    for n in range(4):
        await env.webhooks.send("acme", "e", {"n": n})
    await wait_log(env, "acme", ep.id, 4)
    await env.webhooks.prune()
    rows = await env.webhooks.deliveries("acme", ep.id)
    assert len(rows) == 2
    env.webhooks.settings.log_retention = 1e-9
    await env.webhooks.prune()
    assert await env.webhooks.deliveries("acme", ep.id) == []


async def test_secrets_stay_out_of_reprs(env: Env) -> None:
    ep = await env.webhooks.create_endpoint("acme", env.receiver.url())
    assert ep.secret not in repr(ep)
    assert "secret" not in ep.as_json()


# -- helpers --------------------------------------------------------------------------------


async def _owner_gets_push(env: Env) -> None:
    """The owner's notifications go to the receiver's /notify by the generic push channel."""

    async def load(tenant: str, user_id: str) -> Recipient:
        return Recipient(user_id, push_url=env.receiver.url("/notify"))

    env.hw.notify.recipient_loader(load)


async def _push_received(env: Env) -> dict[str, object]:
    async with asyncio.timeout(10):
        while True:
            for request in env.receiver.requests:
                if request.path == "/notify":
                    return dict(request.json())
            await asyncio.sleep(0.02)


async def test_metrics_and_readiness(env: Env) -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    env.webhooks.register_metrics(registry)
    env.receiver.script = [200, 410]
    ep = await env.webhooks.create_endpoint("acme", env.receiver.url())
    await env.webhooks.send("acme", "e", {})
    await wait_log(env, "acme", ep.id, 1)
    await env.webhooks.send("acme", "e", {})
    await wait_disabled(env, "acme", ep.id)

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    async with asyncio.timeout(10):
        while True:
            if sample("headway_webhooks_endpoints_disabled_total", reason="gone") == 1:
                break
            await asyncio.sleep(0.02)
    assert sample("headway_webhooks_deliveries_total", outcome="succeeded") == 1
    assert sample("headway_webhooks_deliveries_total", outcome="gone") == 1
    assert sample("headway_webhooks_delivery_seconds_count") == 2
    assert sample("headway_webhooks_messages_total") == 2
    await env.webhooks.refresh_metrics()
    assert sample("headway_webhooks_endpoints", state="disabled") == 1
    ready = await env.webhooks.check_ready()
    assert ready is not None and ready.ok
    assert ready.detail["endpoints"] == {"enabled": 0, "disabled": 1}


@pytest.mark.parametrize("overrides", [{"rotation_overlap": 0, "excerpt_bytes": 4}])
async def test_overlap_ends_and_the_logged_body_is_bounded(env: Env) -> None:
    ep = await env.webhooks.create_endpoint("acme", env.receiver.url())
    rotated = await env.webhooks.rotate_secret("acme", ep.id)
    await env.webhooks.send("acme", "e", {})
    (request,) = await env.receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    Webhook(rotated.secret).verify(request.body, request.headers)
    (row,) = await wait_log(env, "acme", ep.id, 1)
    assert row.response == '{"ok'
