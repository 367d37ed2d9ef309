"""Alert rules (fire once, repeat after cooldown, resolve) and real deliveries:
Slack/Discord/webhook to a local HTTP receiver, e-mail to a local aiosmtpd server."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from tests.observe.conftest import Factory
from tests.observe.test_metrics import value

from headway.observe import Evaluator, RuleSpec
from headway.observe.alerts import DEFAULT_RULES, snapshot
from headway.observe.metrics import HttpMetrics, HubRegistry

# -- rules -----------------------------------------------------------------------------


def rule(**kw: Any) -> RuleSpec:
    base: dict[str, Any] = {"name": "r", "metric": "m", "threshold": 10}
    return RuleSpec(**{**base, **kw})


def test_fires_once_repeats_after_cooldown_and_resolves() -> None:
    ev = Evaluator([rule(over="max")], window=60, cooldown=100, started=0)
    high, low = {"m": [({}, 50.0)]}, {"m": [({}, 1.0)]}
    assert [e.status for e in ev.evaluate(high, now=10)] == ["firing"]
    assert ev.evaluate(high, now=20) == []
    assert ev.evaluate(high, now=100) == []
    repeat = ev.evaluate(high, now=111)
    assert [(e.status, e.repeat) for e in repeat] == [("firing", True)]
    resolved = ev.evaluate(low, now=120)
    assert [e.status for e in resolved] == ["resolved"]
    assert resolved[0].started_at == 10
    assert ev.evaluate(low, now=130) == []
    assert [e.status for e in ev.evaluate(high, now=140)] == ["firing"]


def test_no_data_does_not_fire() -> None:
    ev = Evaluator(DEFAULT_RULES, started=0)
    assert ev.evaluate({}, now=1) == []


def test_rate_per_minute_over_the_window() -> None:
    ev = Evaluator([rule(metric="c_total", over="rate_per_minute", labels={"s": "5.."})],
                   window=120, started=0)  # fmt: skip

    def snap(n5: float, n2: float) -> dict[str, Any]:
        return {"c_total": [({"s": "500"}, n5), ({"s": "200"}, n2)]}

    assert ev.evaluate(snap(5, 1000), now=60) == []  # 5/min
    events = ev.evaluate(snap(40, 1000), now=120)  # 35 more since t=60: 35/min
    assert [e.status for e in events] == ["firing"]
    assert events[0].value == pytest.approx(35.0)
    assert [e.status for e in ev.evaluate(snap(40, 5000), now=400)] == ["resolved"]


def test_p95_from_the_histogram() -> None:
    reg = HubRegistry()
    http = HttpMetrics(reg)
    for _ in range(90):
        http.observe("GET", "/a", 200, 0.01, 10)
    for _ in range(10):
        http.observe("GET", "/a", 200, 4.0, 10)
    ev = Evaluator([DEFAULT_RULES[0]], started=0)
    events = ev.evaluate(snapshot(reg), now=1)
    assert [e.rule for e in events] == ["high_latency"]
    assert 2.5 < (events[0].value or 0) <= 5.0


# -- deliveries --------------------------------------------------------------------------


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], Any]] = []
        received = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append((self.path, dict(self.headers), body))
                self.send_response(500 if self.path == "/broken" else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(body) for p, _, body in self.got if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        inbox.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=True)

    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=authenticator,
        auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    yield controller, inbox
    controller.stop()


async def test_alerts_reach_slack_discord_webhook_and_email(
    make: Factory, receiver: Receiver, smtp: tuple[Controller, Inbox]
) -> None:
    controller, inbox = smtp
    port = controller.port
    settings = {
        "alert_defaults": False,
        "alert_rules": [
            {
                "name": "errors",
                "metric": "http_requests_total",
                "labels": {"status": "5.."},
                "over": "value",
                "op": ">=",
                "threshold": 3,
                "severity": "critical",
                "summary": "too many 5xx",
            },
        ],
        "alert_window": 60,
        "alert_cooldown": 3600,
        "slack_webhook_url": f"{receiver.url}/slack",
        "discord_webhook_url": f"{receiver.url}/discord",
        "webhook_url": f"{receiver.url}/hook",
        "webhook_secret": "sign-me-please",
        "smtp_url": f"smtp://alerts:smtp-pass@127.0.0.1:{port}",
        "email_to": "ops@example.com, oncall@example.com",
    }
    async with make(**settings) as (hw, client, _):
        for _ in range(3):
            assert (await client.get("/fail")).status_code == 503
        fired = await hw.observe.evaluate_alerts(now=1000)
        again = await hw.observe.evaluate_alerts(now=1010)  # still firing: cooldown holds
        text = (await client.get("/metrics")).text
        hw.observe.evaluator.states["errors"].rule = hw.observe.evaluator.states[
            "errors"
        ].rule.model_copy(update={"threshold": 1000})
        resolved = await hw.observe.evaluate_alerts(now=1020)
        admin = hw.observe.evaluator.states["errors"]
    assert [e.status for e in fired] == ["firing"] and again == []
    assert [e.status for e in resolved] == ["resolved"] and not admin.firing
    assert value(text, "headway_alerts_firing", alert="errors") == 1
    assert value(text, "headway_alert_notifications_total", outcome="sent") == 4

    slack = receiver.bodies("/slack")
    assert [b["text"].split("]")[0] for b in slack] == ["[CRITICAL", "[RESOLVED"]
    assert slack[0]["blocks"][0]["type"] == "section" and "too many 5xx" in slack[0]["text"]

    discord = receiver.bodies("/discord")
    assert len(discord) == 2 and discord[0]["embeds"][0]["color"] == 0xE01E5A
    assert discord[1]["embeds"][0]["color"] == 0x2EB67D

    hook = receiver.bodies("/hook")
    assert [(b["rule"], b["status"], b["value"]) for b in hook] == [
        ("errors", "firing", 3.0),
        ("errors", "resolved", 3.0),
    ]
    raw = next(body for p, _, body in receiver.got if p == "/hook")
    headers = next(h for p, h, _ in receiver.got if p == "/hook")
    expected = hmac.new(b"sign-me-please", raw, hashlib.sha256).hexdigest()
    assert headers["x-headway-signature"] == f"sha256={expected}"

    assert len(inbox.messages) == 2
    assert inbox.logins[0] == ("alerts", "smtp-pass")
    first = message_from_bytes(inbox.messages[0].content)
    assert inbox.messages[0].rcpt_tos == ["ops@example.com", "oncall@example.com"]
    assert first["Subject"] == "[CRITICAL] errors: too many 5xx"
    assert "resolved" in message_from_bytes(inbox.messages[1].content)["Subject"].lower()


async def test_a_failing_notifier_does_not_stop_the_others(
    make: Factory, receiver: Receiver
) -> None:
    settings = {
        "alert_defaults": False,
        "alert_rules": [{"name": "always", "metric": "headway_info", "threshold": 0}],
        "slack_webhook_url": f"{receiver.url}/broken",
        "webhook_url": f"{receiver.url}/hook",
    }
    async with make(**settings) as (hw, client, stream):
        await hw.observe.evaluate_alerts()
        text = (await client.get("/metrics")).text
    assert len(receiver.bodies("/hook")) == 1
    assert value(text, "headway_alert_notifications_total", notifier="slack", outcome="failed") == 1
    assert receiver.url not in stream.getvalue()  # webhook URLs are credentials


async def test_database_down_rule_fires(make: Factory, receiver: Receiver) -> None:
    down = {"database_url": "postgresql://u:p@127.0.0.1:1/x"}
    async with make(hub=down, webhook_url=f"{receiver.url}/hook") as (hw, _, _):
        events = await hw.observe.evaluate_alerts()
    assert [e.rule for e in events] == ["database_down"]
    assert receiver.bodies("/hook")[0]["severity"] == "critical"


async def test_queue_backlog_rule_reads_the_jobs_gauge() -> None:
    """The default backlog rule watches what the jobs capability really exports."""
    from prometheus_client import CollectorRegistry

    from headway import Headway
    from headway.jobs import Jobs

    hw = Headway(data_dir="./.headway")
    jobs = hw.add(Jobs(hw, "memory://"))
    reg = CollectorRegistry()
    jobs.register_metrics(reg)

    @jobs.task(queue="default")
    async def noop() -> None: ...

    async with hw:
        await jobs.enqueue_many([noop.call() for _ in range(1001)])
        await jobs.refresh_metrics()
    rule = next(r for r in DEFAULT_RULES if r.name == "queue_backlog")
    events = Evaluator([rule], started=0).evaluate(snapshot(reg), now=1)
    assert [(e.rule, e.status) for e in events] == [("queue_backlog", "firing")]
