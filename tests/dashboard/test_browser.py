"""The dashboard as a person uses it: Chromium (Playwright) against the reference service
served by uvicorn on a free 127.0.0.1 port (stopped by PID).

Screenshots of every page go to ``tests/dashboard/artifacts/`` (``-s`` prints the path).
Debian's Chromium is installed when /usr/bin/chromium is absent (as root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import IN_CI

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page
expect = playwright_sync.expect

CHROMIUM = "/usr/bin/chromium"
TOKEN = "browser-admin-token-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).with_name("artifacts")
UI = "/admin/ui"
WAIT = 15_000  # ms, for anything the live updates must show
expect.set_options(timeout=WAIT)


def _ensure_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=False, timeout=600)
    if not os.path.exists(CHROMIUM):
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("browser")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWAY_")}
    env.update(
        HEADWAY_ADMIN_TOKEN=TOKEN,
        HEADWAY_DATABASE_URL=f"sqlite:///{tmp / 'app.db'}",
        HEADWAY_DATA_DIR=str(tmp / ".headway"),
        HEADWAY_DASHBOARD_REFRESH_INTERVAL="1",
        HEADWAY_WEBHOOKS_ALLOW_HOSTS="127.0.0.1",
        HEADWAY_WEBHOOKS_RETRY_SCHEDULE="0",
        DASHBOARD_TEST_DIR=str(tmp),
        PYTHONPATH=str(ROOT),
    )
    app = "tests.dashboard.browser_app:create"
    command = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning"]
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / "server.log").open("wb")
    proc = subprocess.Popen(command, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the server did not start:\n" + (ARTIFACTS / "server.log").read_text())
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _ensure_chromium()
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser: object, server: str) -> Iterator[Page]:
    ARTIFACTS.mkdir(exist_ok=True)
    print(f"\nscreenshots: {ARTIFACTS}")
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=server, viewport={"width": 1280, "height": 860}, color_scheme="light"
    )
    context.set_default_timeout(WAIT)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())  # the confirm() of dangerous actions
    yield tab
    context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def enqueue(server: str, task: str, n: int = 1) -> list[str]:
    r = httpx.post(f"{server}/_test/enqueue", params={"task": task, "n": n}, timeout=10)
    r.raise_for_status()
    return list(r.json()["ids"])


def queue_cell(page: Page, queue: str, state: str) -> object:
    return page.locator(f'#queues tr[data-queue="{queue}"] td[data-state="{state}"]')


def test_login(page: Page, server: str) -> None:
    page.goto("/admin")
    expect(page).to_have_url(f"{server}{UI}/login?next=%2Fadmin%2Fui%2F")
    shot(page, "login")
    page.get_by_label("Token or password").fill("hw_acme_not-an-admin-credential-000")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong token or password.")
    page.get_by_label("Token or password").fill(TOKEN)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator(".check strong").first).to_have_text("database")


def test_a_post_without_the_csrf_token_is_refused(page: Page) -> None:
    status = page.evaluate(
        "fetch('/admin/ui/jobs/queues/low/pause', {method: 'POST'}).then(r => r.status)"
    )
    assert status == 403


def test_queue_counts_change_while_jobs_run(page: Page, server: str) -> None:
    enqueue(server, "slow", 1)
    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(queue_cell(page, "low", "succeeded")).to_have_text("1")
    row = page.locator('#queues tr[data-queue="low"]')
    row.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_have_text("Queue low paused.")
    expect(row.locator(".badge.paused")).to_be_visible()

    enqueue(server, "slow", 5)  # the page is not reloaded: the live table shows them
    expect(queue_cell(page, "low", "queued")).to_have_text("5")
    shot(page, "jobs")
    page.locator('#queues tr[data-queue="low"]').get_by_role("button", name="Resume").click()
    expect(queue_cell(page, "low", "succeeded")).to_have_text("6")
    expect(queue_cell(page, "low", "queued")).to_have_text("0")


def test_retry_a_failed_job_and_see_it_succeed(page: Page, server: str) -> None:
    (job_id,) = enqueue(server, "flaky")
    page.goto(f"{UI}/jobs")
    expect(queue_cell(page, "low", "failed")).to_have_text("1")
    queue_cell(page, "low", "failed").get_by_role("link").click()
    page.get_by_role("link", name=job_id[:12]).click()
    expect(page.locator("pre.error")).to_have_text("RuntimeError: the first run fails on purpose")
    expect(page.get_by_text("Traceback", exact=True)).to_be_visible()
    shot(page, "job-failed")
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_have_text(f"Job {job_id} requeued.")
    expect(page.locator("#job-live .badge").first).to_have_text("succeeded")  # live update
    expect(page.get_by_text('"fine on the second run"')).to_be_visible()
    shot(page, "job-succeeded")


def test_toggle_a_flag_and_see_the_evaluation_change(page: Page) -> None:
    page.get_by_role("link", name="Flags").click()
    expect(page.get_by_role("heading", name="Feature flags")).to_be_visible()
    shot(page, "flags")
    page.get_by_role("link", name="ai-recommendations").click()
    page.get_by_label("User", exact=True).fill("user-7")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#evaluation .badge")).to_have_text("off")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("status").first).to_have_text("Flag ai-recommendations turned on.")
    page.get_by_label("User", exact=True).fill("user-7")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#evaluation .badge")).to_have_text("on")
    expect(page.locator("table").last).to_contain_text("dashboard:token")
    shot(page, "flag")


def test_approve_a_workflow_step(page: Page, server: str) -> None:
    r = httpx.post(f"{server}/_test/workflow", params={"topic": "otters"}, timeout=10)
    run_id = r.json()["id"]
    page.get_by_role("link", name="Workflows").click()
    row = page.locator("#workflows tr[data-approval]", has_text=run_id[:12])
    expect(row).to_contain_text("review")  # shown by the live update once the draft ran
    shot(page, "workflows")
    row.get_by_label("Comment").fill("looks good")
    row.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_have_text(f"Step review of run {run_id} approved.")
    expect(page.locator("#run-live .badge").first).to_have_text("completed")
    expect(page.locator('tr[data-step="publish"] .badge')).to_have_text("succeeded")
    expect(page.locator("#run-live pre").last).to_contain_text('"published": "a post about otters"')
    shot(page, "workflow-run")


def test_every_page_and_the_audit_log(page: Page, server: str) -> None:
    for i in range(40):  # some traffic and cache reads for the overview's charts
        httpx.get(f"{server}/_test/cached/k{i % 8}", timeout=5)
    page.get_by_role("link", name="Breakers").click()
    page.locator('tr[data-breaker="external-api"]').get_by_role("button", name="Force open").click()
    expect(page.locator('tr[data-breaker="external-api"] .badge.open')).to_be_visible()
    for name, label in [("cache", "Cache"), ("limits", "Rate limits"), ("breakers", "Breakers"),
                        ("storage", "Storage"), ("database", "Database")]:  # fmt: skip
        page.get_by_role("link", name=label, exact=True).click()
        expect(page).to_have_url(f"{server}{UI}/{name}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        shot(page, name)
    hook = f"http://127.0.0.1:{_free_port()}/hook"  # nobody listens: the delivery fails
    made = httpx.post(f"{server}/_test/webhook", params={"url": hook}, timeout=10).json()
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("Tenant").fill("acme")
    page.get_by_role("button", name="Show endpoints").click()
    page.get_by_role("link", name=made["endpoint"]).click()
    expect(page.locator("td code", has_text=made["message"])).to_be_visible()  # once delivered
    shot(page, "webhook")
    page.get_by_role("link", name="Audit log").click()
    for action in ("login_failed", "login", "queue_pause", "job_retry", "flag_toggle",
                   "approval_approve", "breaker_open"):  # fmt: skip
        expect(page.locator("td code", has_text=action).first).to_be_visible()
    shot(page, "audit")
    page.get_by_role("link", name="Overview").click()
    expect(page.locator("figure.chart polyline").first).to_be_visible()
    shot(page, "overview")


def test_dark_theme_and_keyboard(browser: object, server: str, page: Page) -> None:
    cookies = page.context.cookies()
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=server, viewport={"width": 1280, "height": 860}, color_scheme="dark"
    )
    context.add_cookies(cookies)
    dark = context.new_page()
    dark.goto(f"{UI}/jobs")
    background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 22)"
    dark.keyboard.press("Tab")
    expect(dark.get_by_role("link", name="Skip to content")).to_be_focused()
    dark.keyboard.press("Tab")
    dark.keyboard.press("Tab")
    expect(dark.get_by_role("link", name="Overview")).to_be_focused()
    dark.keyboard.press("Enter")
    expect(dark.get_by_role("heading", name="Overview")).to_be_visible()
    shot(dark, "overview-dark")
    context.close()


def test_works_without_javascript(browser: object, server: str, page: Page) -> None:
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=server, viewport={"width": 1280, "height": 860}, java_script_enabled=False
    )
    context.add_cookies(page.context.cookies())
    plain = context.new_page()
    plain.goto(f"{UI}/jobs")
    row = plain.locator('#queues tr[data-queue="low"]')
    row.get_by_role("button", name="Pause").click()  # a plain form POST, then a redirect
    expect(plain.get_by_role("status")).to_have_text("Queue low paused.")
    plain.locator('#queues tr[data-queue="low"]').get_by_role("button", name="Resume").click()
    expect(plain.get_by_role("status")).to_have_text("Queue low resumed.")
    context.close()
