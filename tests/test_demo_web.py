"""The demo as a page, in a real browser: `python -m bot demo --web` (sandbox AWS, Slack stand-in, the real bot) and a
headless Chromium (Debian's package, driven by Playwright). Alice types a create and a switchover, the page shows the
approval request with Approve and Reject, bob approves through the confirm dialog, and the switchover completes: in
the thread on the page and in the sandbox.

The screenshot goes to the test's tmp dir and, with BLUEGREEN_SCREENSHOT_DIR set (`BLUEGREEN_SCREENSHOT_DIR=docs`),
to that directory as demo-web.png: the README's picture.

Chromium: `.ci/run` installs it in the background and exports CHROMIUM_INSTALL_LOG; this test waits for it. Outside
CI without chromium it is skipped, saying how to install it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.clients import boto3_client
from sandbox.waiting import WaitTimeout, wait_until

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_FINISHED = "chromium install finished: exit"
INSTALL_WAIT = 240.0  # seconds: apt-get install -y chromium takes 20-40 s once the package lists are there
SPEED = "20"  # the sandbox's clock: the runs take about a second; Slack's pacing of the bot's posts sets the pace
STEP_TIMEOUT_MS = 30_000
ALICE, BOB = "U0ALICE", "U0BOB"


def _in_ci() -> bool:
    return bool(os.environ.get("CHROMIUM_INSTALL_LOG") or os.environ.get("CI"))


def _chromium() -> Path:
    """/usr/bin/chromium, once there: in CI `.ci/run` is installing it in the background."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    if not _in_ci():
        pytest.skip(f"no {CHROMIUM}: `apt-get install -y chromium` (Debian's package; .ci/run installs it in CI)")
    log = Path(os.environ.get("CHROMIUM_INSTALL_LOG", "/tmp/chromium-install.log"))

    def installed_or_given_up() -> bool:
        # .ci/run appends "chromium install finished: exit N" once apt-get is done, whatever the outcome.
        finished = log.is_file() and INSTALL_FINISHED in log.read_text(errors="replace")
        return os.access(CHROMIUM, os.X_OK) or finished

    try:
        wait_until(installed_or_given_up, INSTALL_WAIT, interval=0.5, what=f"{CHROMIUM} to appear")
    except WaitTimeout:
        pass
    if not os.access(CHROMIUM, os.X_OK):
        text = log.read_text(errors="replace") if log.is_file() else "(no such file)"
        outcome = "finished without it" if INSTALL_FINISHED in text else f"did not finish in {INSTALL_WAIT:.0f} s"
        pytest.fail(
            f"no {CHROMIUM}: .ci/run's background `apt-get install chromium` {outcome}. "
            f"Its log, {log}, ends:\n{text[-2000:]}"
        )
    return CHROMIUM


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        message = "Playwright is missing: pip install -e '.[dev]' (it is in the dev extra; no `playwright install`)"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright


class WebDemo:
    """`python -m bot demo --web` as a newcomer runs it, on a free port, its output in a file."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "demo", "--web", "--speed", SPEED, "--port", "0"],
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def printed(self, pattern: str, what: str) -> str:
        """The first group of `pattern` in the demo's output, once printed."""

        def found() -> str | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"the web demo exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            match = re.search(pattern, self.output())
            return match.group(1) if match else None

        return wait_until(found, 60, interval=0.05, what=what)

    def interrupt(self) -> int:
        """Ctrl-C, as a person stops it: returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(30)
        finally:
            self.stop()

    def stop(self) -> None:
        """Ctrl-C first, so the demo stops the bot it started; SIGKILL only if it does not exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


@pytest.fixture(name="web_demo")
def web_demo_fixture(tmp_path: Path) -> Iterator[WebDemo]:
    demo = WebDemo(tmp_path / "demo.log")
    try:
        yield demo
    finally:
        demo.stop()


def test_the_demo_page_shows_the_approval_and_bob_completes_the_switchover(web_demo: WebDemo, tmp_path: Path) -> None:
    chromium = _chromium()
    sync_playwright = _playwright()
    from playwright.sync_api import expect

    with sync_playwright() as playwright:
        # Chromium starts while the demo starts its sandbox, stand-in and bot.
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 900},
        )
        try:
            url = web_demo.printed(r"open (http://\S+) in a browser", "the page's URL")
            endpoint = web_demo.printed(r"sandbox AWS .* on (http://\S+)", "the sandbox's endpoint")
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.goto(url)

            def type_command(text: str) -> None:
                page.fill("#composer-input", text)
                page.press("#composer-input", "Enter")
                typed = page.locator("#messages .note.command").filter(has_text=text)
                expect(typed).to_be_visible(timeout=STEP_TIMEOUT_MS)  # shown once the bot acknowledged it

            expect(page.locator("#acting-as")).to_have_text("Acting as alice")
            expect(page.locator(f"[data-as={ALICE}]")).to_have_attribute("aria-checked", "true")
            type_command("/bluegreen create orders-pg --engine-version 16.4")
            created = page.locator("#messages .message.broadcast").filter(has_text="succeeded")
            expect(created.filter(has_text="Create blue/green deployment: orders-pg")).to_be_visible(
                timeout=STEP_TIMEOUT_MS
            )

            type_command("/bluegreen switchover orders-pg")
            thread = page.locator("#thread-messages")
            requested = thread.locator(".message").filter(has_text="approval needed for the switchover")
            expect(requested).to_be_visible(timeout=STEP_TIMEOUT_MS)
            # The same message by its ts: once decided, its text changes (Slack's chat.update).
            approval = thread.locator(f'[id="thread-{requested.get_attribute("data-ts")}"]')
            approve = approval.locator("button.primary[data-action-id]", has_text="Approve")
            reject = approval.locator("button[data-action-id]", has_text="Reject")
            expect(approve).to_be_visible()
            expect(reject).to_be_visible()
            expect(approval).to_contain_text("requested by @alice")

            # In one page task: the page replaces the thread's HTML whenever a reply arrives, which can detach the
            # button in the middle of Playwright's own scroll (it waits for the element to be stable first).
            approve.evaluate("button => button.scrollIntoView({block: 'center'})")
            screenshot = tmp_path / "demo-web.png"
            page.screenshot(path=str(screenshot))
            assert screenshot.stat().st_size > 10_000, "the screenshot is (nearly) empty"
            if os.environ.get("BLUEGREEN_SCREENSHOT_DIR"):
                target = Path(os.environ["BLUEGREEN_SCREENSHOT_DIR"])
                target = target if target.is_absolute() else REPO / target
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(screenshot, target / "demo-web.png")

            page.click(f"[data-as={BOB}]")
            expect(page.locator("#acting-as")).to_have_text("Acting as bob")
            approve.click()
            dialog = page.locator("#dialog")
            expect(dialog).to_be_visible()
            expect(dialog.locator("#dialog-title")).to_have_text("Switch over orders-pg?")
            dialog.locator("#dialog-confirm").click()

            expect(approval).to_contain_text("Approved by @bob", timeout=STEP_TIMEOUT_MS)
            expect(approval.locator("button")).to_have_count(0)
            # The run's summary, in the thread and also sent to the channel.
            summary = thread.locator(".message.broadcast").filter(has_text="Switchover: orders-pg")
            expect(summary.filter(has_text="succeeded")).to_have_count(1, timeout=STEP_TIMEOUT_MS)
        finally:
            browser.close()

    rds = boto3_client(endpoint, "rds")
    deployments = rds.describe_blue_green_deployments()["BlueGreenDeployments"]
    assert [d["Status"] for d in deployments] == ["SWITCHOVER_COMPLETED"], deployments
    assert web_demo.interrupt() == 0, web_demo.output()[-3000:]
