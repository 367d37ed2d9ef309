"""A local SMTP server process (aiosmtpd, Maildir), an HTTP receiver and a hub with notify."""

from __future__ import annotations

import asyncio
import mailbox
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from tests.webhooks.receiver import Receiver, running_receiver

from headway import Headway, Settings
from headway.jobs import Worker
from headway.notify import Notify, NotifySettings
from headway.webhooks import Webhooks, WebhooksSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Smtp:
    port: int
    maildir: Path

    def messages(self) -> list[Message]:
        return list(mailbox.Maildir(self.maildir, create=False))

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Message]:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while True:
                found = self.messages()
                if len(found) >= count:
                    return found
                await asyncio.sleep(0.05)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[Smtp]:
    """``python -m aiosmtpd`` on a free 127.0.0.1 port, stopped by its PID afterwards."""
    port, maildir = free_port(), tmp_path / "maildir"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
         "-c", "aiosmtpd.handlers.Mailbox", str(maildir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"aiosmtpd did not start: {err}")
                time.sleep(0.05)
        yield Smtp(port, maildir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Env:
    hw: Headway
    notify: Notify
    smtp: Smtp
    receiver: Receiver
    worker: Worker


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def overrides() -> dict[str, Any]:
    """NotifySettings for this test (``@pytest.mark.parametrize("overrides", [...])``)."""
    return {}


@pytest.fixture
async def env(
    db_url: str, tmp_path: Path, smtp: Smtp, overrides: dict[str, Any]
) -> AsyncIterator[Env]:
    async with running_receiver() as receiver:
        settings = {
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_tls": "starttls",
            "smtp_from": "headway <noreply@headway.test>",
            "slack_webhook_url": receiver.url("/slack"),
            "discord_webhook_url": receiver.url("/discord"),
            "push_url": receiver.url("/push"), "rate_limit": "50/minute", "retry_delay": 0.05,
            **overrides,
        }  # fmt: skip
        jobs = f"sqlite:///{tmp_path / 'jobs.db'}"  # the PG job store ignores ?schema=
        hw = Headway(Settings(database_url=db_url, jobs_url=jobs, data_dir=tmp_path / ".headway"))
        notify = hw.add(Notify(hw, NotifySettings(**settings)))
        hook_settings = WebhooksSettings(allow_hosts=["127.0.0.1"], retry_schedule=[0])
        hw.add(Webhooks(hw, hook_settings))
        async with hw:
            worker = hw.jobs.worker(["notifications", "webhooks"], poll_interval=0.02, grace=1)
            task = asyncio.create_task(worker.run())
            try:
                yield Env(hw, notify, smtp, receiver, worker)
            finally:
                worker.stop()
                async with asyncio.timeout(10):
                    await task


async def wait_paths(receiver: Receiver, paths: set[str], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while True:
            if paths <= {r.path for r in receiver.requests}:
                return
            await asyncio.sleep(0.02)
