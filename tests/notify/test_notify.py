"""Notifications through the worker: a real SMTP server process and an HTTP receiver."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from tests.notify.conftest import Env, wait_paths
from tests.notify.sms import ListProvider

from headway.jobs import FAILED
from headway.notify import InvalidNotification, NotifySettings, Recipient
from headway.settings import public_view

ALICE = Recipient("7", email="alice@acme.test", phone="+15550100", name="Alice")


async def test_email_has_text_and_html_from_the_templates(env: Env) -> None:
    context = {"execution_id": 42, "agent_name": "Writer <b>", "url": "https://x.test/e/42"}
    queued = await env.notify.send(
        user=ALICE, tenant="acme", event="execution.completed", context=context
    )
    assert queued.channels == ["email"]  # the default channels
    (mail,) = await env.smtp.wait_for(1)
    assert mail["To"] == "alice@acme.test"
    assert mail["From"] == "headway <noreply@headway.test>"
    assert mail["Subject"] == "Execution 42 of Writer <b> completed"
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in mail.walk()
        if not p.is_multipart()
    }
    assert "Hello Alice" in parts["text/plain"]
    assert "https://x.test/e/42" in parts["text/plain"]
    assert "Writer &lt;b&gt;" in parts["text/html"]  # escaped in HTML
    assert "Writer <b>" not in parts["text/html"]


async def test_preferences_choose_the_channels(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    prefs = {"execution.failed": ["slack", "discord", "push", "sms"], "*": []}
    await env.notify.set_preferences("acme", "7", prefs)
    assert await env.notify.get_preferences("acme", "7") == prefs
    caplog.set_level(logging.INFO, "headway.notify")
    queued = await env.notify.send(
        user=ALICE, tenant="acme", event="execution.failed",
        context={"execution_id": 9, "error": "model timeout"},
    )  # fmt: skip
    assert sorted(queued.channels) == ["discord", "push", "slack", "sms"]
    await wait_paths(env.receiver, {"/slack", "/discord", "/push"})
    by_path = {r.path: r.json() for r in env.receiver.requests}
    assert "Execution 9" in by_path["/slack"]["text"]
    assert "model timeout" in by_path["/slack"]["blocks"][0]["text"]["text"]
    assert by_path["/discord"]["embeds"][0]["title"].startswith("Execution 9")
    assert by_path["/push"]["event"] == "execution.failed"
    assert by_path["/push"]["context"]["error"] == "model timeout"
    await _until(lambda: "SMS (log provider" in caplog.text)
    assert "+15550100" not in caplog.text  # the number is masked
    opted_out = await env.notify.send(user=ALICE, tenant="acme", event="execution.completed")
    assert opted_out.channels == []  # "*": [] opts out of the rest


@pytest.mark.parametrize("overrides", [{"rate_limit": "2/minute"}])
async def test_a_rate_limit_per_user_and_tenant(env: Env) -> None:
    send = env.notify.send
    for _ in range(2):
        assert not (
            await send(user=ALICE, tenant="acme", event="e", channels=["push"])
        ).rate_limited
    assert (await send(user=ALICE, tenant="acme", event="e", channels=["push"])).rate_limited
    bob = Recipient("8")
    assert not (await send(user=bob, tenant="acme", event="e", channels=["push"])).rate_limited
    assert not (await send(user=ALICE, tenant="globex", event="e", channels=["push"])).rate_limited


async def test_failed_sends_are_retried(env: Env) -> None:
    env.receiver.script = [500, 503]
    await env.notify.send(user=ALICE, tenant="acme", event="e", channels=["slack"])
    await _until(lambda: len(env.receiver.requests) >= 3)
    assert [r.path for r in env.receiver.requests] == ["/slack"] * 3


async def test_a_recipient_without_an_address_is_not_retried(env: Env) -> None:
    await env.notify.send(user=Recipient("9"), tenant="acme", event="e", channels=["email"])

    async def failed() -> list[object]:
        return list(await env.hw.jobs.list("notifications", FAILED))

    async with asyncio.timeout(10):
        while True:
            jobs = await failed()
            if jobs:
                break
            await asyncio.sleep(0.02)
    assert jobs[0].attempts == 1  # type: ignore[attr-defined]
    assert "no e-mail address" in (jobs[0].error or "")  # type: ignore[attr-defined]


async def test_recipients_by_id_come_from_the_loader(env: Env) -> None:
    @env.notify.recipient_loader
    async def load(tenant: str, user_id: str) -> Recipient | None:
        return (
            Recipient(user_id, email=f"user{user_id}@{tenant}.test") if tenant == "acme" else None
        )

    await env.notify.send(user=12, tenant="acme", event="execution.completed")
    (mail,) = await env.smtp.wait_for(1)
    assert mail["To"] == "user12@acme.test"


async def test_a_disabled_webhook_endpoint_emails_its_owner(env: Env) -> None:
    @env.notify.recipient_loader
    async def load(tenant: str, user_id: str) -> Recipient:
        return Recipient(user_id, email="owner@acme.test", name="Owner")

    env.receiver.script = [410]
    ep = await env.hw.webhooks.create_endpoint("acme", env.receiver.url(), owner="1")
    await env.hw.webhooks.send("acme", "execution.completed", {})
    (mail,) = await env.smtp.wait_for(1)
    assert mail["Subject"] == f"Webhook endpoint {ep.id} was disabled"
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    assert "410" in text.get_payload(decode=True).decode()


async def test_bad_input_is_a_typed_error(env: Env) -> None:
    with pytest.raises(InvalidNotification):
        await env.notify.send(user=ALICE, tenant="acme", event="bad event")
    with pytest.raises(InvalidNotification):
        await env.notify.send(user=ALICE, tenant="acme", event="e", context={"x": object()})
    with pytest.raises(InvalidNotification):
        await env.notify.send(user=ALICE, tenant="acme", event="e", channels=["pigeon"])
    with pytest.raises(InvalidNotification):
        await env.notify.set_preferences("acme", "7", {"e": "email"})  # type: ignore[dict-item]


@pytest.mark.parametrize("overrides", [{"sms_provider": "tests.notify.sms:ListProvider"}])
async def test_a_pluggable_sms_provider(env: Env) -> None:
    ListProvider.sent.clear()
    await env.notify.send(
        user=ALICE, tenant="acme", event="execution.failed", channels=["sms"],
        context={"execution_id": 3},
    )  # fmt: skip
    await _until(lambda: bool(ListProvider.sent))
    phone, text = ListProvider.sent[0]
    assert phone == "+15550100" and text.startswith("Execution 3")


def test_template_directory_overrides_the_packaged_ones(tmp_path: Path) -> None:
    from headway.notify.templates import Templates

    (tmp_path / "execution.completed.subject.txt").write_text("Done: {{ execution_id }}")
    rendered = Templates(str(tmp_path)).render("execution.completed", {"execution_id": 5})
    assert rendered.subject == "Done: 5"
    assert "Execution 5" in rendered.text  # the packaged body template is still used
    fallback = Templates().render("something.else", {"title": "Hi", "k": "v"})
    assert fallback.subject == "Hi" and "k: v" in fallback.text


def test_secrets_are_masked() -> None:
    settings = NotifySettings(
        smtp_password="hunter2-secret",  # type: ignore[arg-type]
        slack_webhook_url="https://hooks.slack.test/T000/B000/XXXX",  # type: ignore[arg-type]
    )
    shown = str(public_view(settings)) + repr(settings)
    assert "hunter2" not in shown and "XXXX" not in shown


async def _until(check: object, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while True:
            if check():  # type: ignore[operator]
                return
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("overrides", [{"rate_limit": "1/minute"}])
async def test_metrics(env: Env) -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    env.notify.register_metrics(registry)
    await env.notify.send(user=ALICE, tenant="acme", event="e", channels=["push"])
    await env.notify.send(user=ALICE, tenant="acme", event="e", channels=["push"])
    labels = {"channel": "push", "outcome": "sent"}
    await _until(lambda: registry.get_sample_value("headway_notify_sent_total", labels) == 1)
    assert registry.get_sample_value("headway_notify_rate_limited_total") == 1
    ready = await env.notify.check_ready()
    assert ready is not None and ready.ok and "email" in ready.detail["channels"]
