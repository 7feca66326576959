"""`python -m bot demo`: the sandbox AWS, the Slack stand-in and the real bot (`python -m bot serve`, a separate
process over HTTP), then a blue/green deployment and a two-person switchover of `orders-pg`, typed as two people.

The conversation is printed as it unfolds: new messages and thread replies in full, checklist edits as one line.
With `--web`, no script: the channel is served as a web page (sandbox/slack/web_page.py) where the viewer acts as
alice or bob, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sandbox.aws import Sandbox
from sandbox.slack import Message, SlackStandInThread
from sandbox.slack.render import render_message
from sandbox.slack.web_page import Person

CHANNEL = "C0OPS"
ALICE, BOB = "U0ALICE", "U0BOB"
DATABASE = "orders-pg"
TARGET_VERSION = "16.4"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _say(text: str) -> None:
    print(text, flush=True)


class Narrator:
    """Prints the channel as it changes: posts in full, edits of a checklist as a one-line status."""

    def __init__(self) -> None:
        self._last_status: dict[str, str] = {}

    def __call__(self, event: str, message: Message) -> None:
        lines = render_message(message, indent="    " if message.thread_ts else "")
        if event == "posted":
            where = "thread" if message.thread_ts else "channel"
            _say(f"\n  [{where}] bluegreen-bot:")
            for line in lines:
                _say(f"  {line}")
        elif event == "updated":
            headline = next((line.strip() for line in lines if line.strip()), "")
            if self._last_status.get(message.ts) != headline:
                self._last_status[message.ts] = headline
                _say(f"  (edited) {headline}")


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the bot exited with code {process.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the bot was not healthy at {url} after {timeout:.0f} s")


def _approve_button(message: Message) -> tuple[str, dict] | None:
    """The (block_id, button) labelled Approve in a message, found as a person finds it: by its label."""
    for block in message.blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("type") == "button" and element.get("text", {}).get("text") == "Approve":
                return block.get("block_id", ""), element
    return None


def _approval_message(slack: SlackStandInThread) -> Message | None:
    for message in slack.messages(CHANNEL):
        for reply in message.replies:
            if _approve_button(reply) is not None:
                return reply
    return None


def _click_approve(slack: SlackStandInThread, user: str, message: Message) -> None:
    found = _approve_button(message)
    assert found is not None, "the approval request has no Approve button"
    block_id, button = found
    slack.click(
        user_id=user,
        action_id=button["action_id"],
        value=button.get("value", ""),
        channel_id=CHANNEL,
        message_ts=message.ts,
        block_id=block_id,
    )


def _scenario(slack: SlackStandInThread, timeout: float) -> int:
    _say(f"\n> alice: /bluegreen create {DATABASE} --engine-version {TARGET_VERSION}")
    reply = slack.send_command(user_id=ALICE, text=f"create {DATABASE} --engine-version {TARGET_VERSION}")
    _say(f"  (acknowledged in {reply.elapsed * 1000:.0f} ms)")
    slack.wait_for(lambda: _count_finished(slack) >= 1, timeout=timeout)
    if _count_succeeded(slack) < 1:
        _say("\nthe create run did not succeed; see the thread above")
        return 1

    _say(f"\n> alice: /bluegreen switchover {DATABASE}")
    reply = slack.send_command(user_id=ALICE, text=f"switchover {DATABASE}")
    _say(f"  (acknowledged in {reply.elapsed * 1000:.0f} ms)")
    slack.wait_for(lambda: _approval_message(slack) is not None, timeout=timeout)
    approval = _approval_message(slack)
    assert approval is not None

    _say("\n> alice clicks [Approve] on her own switchover")
    refusals = len(slack.ephemerals(ALICE))
    _click_approve(slack, ALICE, approval)
    slack.wait_for(lambda: len(slack.ephemerals(ALICE)) > refusals, timeout=10)
    _say(f"  (only alice sees) {slack.ephemerals(ALICE)[-1].get('text', '')}")

    _say("\n> bob clicks [Approve]")
    _click_approve(slack, BOB, approval)
    slack.wait_for(lambda: _count_finished(slack) >= 2, timeout=timeout)
    ok = _count_succeeded(slack) >= 2
    _say("\n==== the channel at the end ====\n")
    _say(slack.render_channel(CHANNEL))
    return 0 if ok else 1


def _count_finished(slack: SlackStandInThread) -> int:
    return sum(
        1
        for message in slack.messages(CHANNEL)
        for reply in message.replies
        if reply.broadcast and ("succeeded" in reply.text or "failed" in reply.text)
    )


def _count_succeeded(slack: SlackStandInThread) -> int:
    return sum(1 for m in slack.messages(CHANNEL) for r in m.replies if r.broadcast and "succeeded" in r.text)


@dataclass(frozen=True)
class _Stack:
    """The demo's running pieces: the sandbox AWS, the Slack stand-in, and the real bot pointed at both."""

    sandbox: Sandbox
    slack: SlackStandInThread
    bot: subprocess.Popen[bytes]
    log_path: Path

    def bot_log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@contextlib.contextmanager
def _running(speed: float) -> Iterator[_Stack]:
    """Starts the sandbox, the stand-in and `python -m bot serve` (waits until it is healthy); stops all three."""
    signing_secret = secrets.token_hex(16)
    bot_token = "xoxb-demo-" + secrets.token_hex(8)
    with (
        Sandbox(speed=speed) as sandbox,
        tempfile.TemporaryDirectory() as workdir,
        SlackStandInThread(signing_secret=signing_secret, bot_token=bot_token) as slack,
    ):
        _say(f"sandbox AWS (legacy RDS Proxy behaviour, speed {speed:g}) on {sandbox.endpoint}")
        port = _free_port()
        probes = ",".join(f"{proxy}={address}" for proxy, address in sandbox.control.listeners().items())
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BLUEGREEN_", "AWS_"))},
            "SLACK_BOT_TOKEN": bot_token,
            "SLACK_SIGNING_SECRET": signing_secret,
            "SLACK_API_URL": slack.base_url,
            "PORT": str(port),
            "BLUEGREEN_DB": str(Path(workdir) / "bluegreen.db"),
            "BLUEGREEN_OPERATORS": f"{ALICE},{BOB}",
            "BLUEGREEN_APPROVERS": BOB,
            "BLUEGREEN_PROXY_PROBES": probes,
            "BLUEGREEN_AWS_DESCRIBE_RATE": "1000",  # the sandbox has no RDS rate limit; 10/s is for real accounts
            "AWS_ENDPOINT_URL": sandbox.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
        }
        log_path = Path(workdir) / "bot.log"
        with open(log_path, "wb") as log:
            bot = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, stdout=log, stderr=log)
            try:
                _wait_healthy(f"http://127.0.0.1:{port}/healthz", bot)
                slack.app_url = f"http://127.0.0.1:{port}/slack/events"
                _say(f"the real bot (python -m bot serve, pid {bot.pid}) on :{port}; Slack stand-in {slack.base_url}")
                _say(f"alice ({ALICE}) may start runs; bob ({BOB}) may start and approve them")
                yield _Stack(sandbox, slack, bot, log_path)
            finally:
                bot.terminate()
                try:
                    bot.wait(10)
                except subprocess.TimeoutExpired:
                    bot.kill()


def _demo(speed: float, timeout: float) -> int:
    started = time.monotonic()
    with _running(speed) as stack:
        stack.slack.on_message = Narrator()
        code = _scenario(stack.slack, timeout)
        if code != 0:
            _say("\n---- bot log ----\n" + stack.bot_log())
    _say(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    return code


PEOPLE = (
    Person(ALICE, "alice", "operator: starts runs"),
    Person(BOB, "bob", "operator and approver"),
)
SUGGESTIONS = (
    f"/bluegreen create {DATABASE} --engine-version {TARGET_VERSION}",
    f"/bluegreen switchover {DATABASE}",
    f"/bluegreen status {DATABASE}",
    "/bluegreen runs",
    "/bluegreen help",
)


def _web_demo(speed: float, host: str, port: int) -> int:
    """The same pieces, and the channel as a web page instead of a script: until Ctrl-C (or SIGTERM) or the bot
    exits. Either signal unwinds the context managers, so the bot, the stand-in and the sandbox stop with the demo."""
    _interrupt_on(signal.SIGINT, signal.SIGTERM)
    try:
        with _running(speed) as stack:
            try:
                page = stack.slack.serve_page(
                    people=PEOPLE, channel=CHANNEL, channel_label="ops", suggestions=SUGGESTIONS, host=host, port=port
                )
            except OSError as error:
                _say(f"cannot serve the page on {host}:{port}: {error}. Pick another port: --port 0 takes a free one.")
                return 1
            _say(f"\nthe channel page: open {page.url} in a browser (Ctrl-C to stop)")
            _say("act as alice or bob from the page; its message box is filled with the first command to try")
            code = stack.bot.wait()
            _say(f"\nthe bot exited with code {code}\n---- bot log ----\n{stack.bot_log()}")
            return 1
    except KeyboardInterrupt:
        _say("\nstopped: the bot, the Slack stand-in and the sandbox")
        return 0


def _interrupt_on(*signums: signal.Signals) -> None:
    """Raise KeyboardInterrupt on these signals (even when started with SIGINT ignored, as `cmd &` does)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in signums:
        signal.signal(signum, interrupt)


def run_demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot demo", description=__doc__)
    parser.add_argument("--speed", type=float, default=1.0, help="sandbox speed factor (default 1: realistic-ish)")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up on a step after this many seconds")
    parser.add_argument(
        "--web", action="store_true", help="serve the channel as a web page to act in yourself, instead of the script"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="with --web: the page's address (default 127.0.0.1; anyone who can reach it acts as alice or bob)",
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="with --web: the page's port (default 8765; 0: any free)"
    )
    args = parser.parse_args(argv)
    if args.web:
        return _web_demo(args.speed, args.host, args.port)
    return _demo(args.speed, args.timeout)
