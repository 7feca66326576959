"""The abuse matrix: requests Slack did not sign, or signed once and sent again, people who may not do what they
ask, identifiers carrying shell or Slack markup, oversized input; and no secret in any log or message of a run.

All through the Slack stand-in against the real Bolt app over HTTP, with the real engine on the sandbox AWS. Each
refused case checks the HTTP status or the ephemeral explanation, and that the sandbox timeline holds no AWS
mutation (any call but Describe*/List*/GetMetric*) made after the abuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.logs import LIBRARY_FLOOR, OWN_PACKAGES, configure_logging, known_secrets
from bot.sinks.console import ConsoleSink
from handlers.guards import ReplayGuard
from handlers.ids import ApprovalActions
from handlers.messages.approvals import ApprovalButtonValue
from sandbox.aws import Sandbox
from sandbox.slack import CommandResult, Message, SlackStandIn
from tests.bot_fixtures import (
    Bot,
    aws_mutations,
    make_settings,
    sandbox_engine,
    serve_bot,
)
from tests.slack_fixtures import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    OPS,
    RequestRecorder,
    approval_message,
    approve_value,
    assert_thread_complete,
    click_button,
    slack_fixture,  # noqa: F401  (the `slack` fixture)
    start_run,
)

RUN_TIMEOUT = 60
SWITCHOVER = "SwitchoverBlueGreenDeployment"


@pytest.fixture
def approval_ttl() -> float:
    return 600


@pytest.fixture
async def live(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path, approval_ttl: float) -> AsyncIterator[Bot]:
    settings = make_settings(tmp_path, slack.base_url, approval_ttl=approval_ttl)
    async with serve_bot(slack, settings, sandbox_engine(sandbox.endpoint)) as served:
        yield served


def timeline_end(sandbox: Sandbox) -> int:
    timeline = sandbox.control.timeline()
    return timeline[-1]["seq"] if timeline else 0


def successful(sandbox: Sandbox, action: str) -> int:
    return sum(e["action"] == action and e.get("code") is None for e in aws_mutations(sandbox.control.timeline()))


def mutations_since(sandbox: Sandbox, seq: int) -> list[str]:
    return [entry["action"] for entry in aws_mutations(sandbox.control.timeline(since=seq))]


async def explanation(slack: SlackStandIn, result: CommandResult, user: str, before: int) -> str:
    """The refusal shown to `user` only: in the acknowledgement, or posted to the response_url right after it."""
    assert result.status == 200, result.body
    if result.json and result.json.get("text"):
        assert result.json.get("response_type") == "ephemeral"
        return result.json["text"]
    await slack.wait_for(lambda: len(slack.ephemerals(user)) > before, timeout=10, description=f"a reply to {user}")
    return slack.ephemerals(user)[-1]["text"]


def signature_with(secret: str, timestamp: int, body: str) -> str:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


# ---------------------------------------------------------------- requests Slack did not sign (now)

UNSIGNED: dict[str, Any] = {  # name -> the send_command options that make the request unsigned (now)
    "forged signature": lambda now: {"signature": signature_with("not-the-signing-secret", now, "create")},
    "stale timestamp": lambda now: {"timestamp": now - 301},  # signed with the right secret, 5 min + 1 s ago
    "timestamp in the future": lambda now: {"timestamp": now + 400},
    "missing headers": lambda now: {"sign": False},
    "missing signature": lambda now: {"sign": False, "headers_override": {"X-Slack-Request-Timestamp": str(now)}},
    "missing timestamp": lambda now: {"sign": False, "headers_override": {"X-Slack-Signature": "v0=" + "0" * 64}},
}


@pytest.mark.parametrize("abuse", list(UNSIGNED), ids=list(UNSIGNED))
async def test_unsigned_commands_get_401_and_change_nothing(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox, abuse: str
) -> None:
    since = timeline_end(sandbox)
    options = UNSIGNED[abuse](int(time.time()))
    result = await slack.send_command(user_id=ALICE, text="create orders-pg", channel_id=OPS, **options)
    assert result.status == 401, (abuse, result.status, result.body)
    assert live.store.runs.list() == []
    assert slack.ephemerals() == [] and slack.calls("chat.postMessage") == []
    assert mutations_since(sandbox, since) == []


async def test_a_tampered_body_with_a_genuine_signature_gets_401(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox
) -> None:
    async with RequestRecorder(slack.app_url or "") as recorder:
        slack.app_url = recorder.url
        assert (await slack.send_command(user_id=DAVE, text="status orders-pg", channel_id=OPS)).status == 200
        body, headers = recorder.requests[-1]
        since = timeline_end(sandbox)
        tampered = body.replace(b"user_id=U0DAVE", b"user_id=U0ALICE").replace(b"status", b"create")
        status, _ = await recorder.send(tampered, headers)
    assert status == 401
    assert live.store.runs.list() == [] and mutations_since(sandbox, since) == []


# ---------------------------------------------------------------- replays of genuine signed requests


async def test_a_replayed_command_starts_no_second_run(slack: SlackStandIn, live: Bot, sandbox: Sandbox) -> None:
    async with RequestRecorder(slack.app_url or "") as recorder:
        slack.app_url = recorder.url
        run_id = await start_run(slack, live.store, ALICE, "create orders-pg")
        status, body = await recorder.send(*recorder.requests[-1])  # the same bytes, the same signature
        assert (status, body) == (401, "replayed request")
        assert (await live.engine.wait(run_id, within=RUN_TIMEOUT)).status == "succeeded"
        since = timeline_end(sandbox)
        status, _ = await recorder.send(*recorder.requests[-1])  # once the first run has ended, too
        assert status == 401
    assert [run.id for run in live.store.runs.list()] == [run_id]
    assert mutations_since(sandbox, since) == []
    creations = [
        e
        for e in aws_mutations(sandbox.control.timeline())
        if e["action"] == "CreateBlueGreenDeployment" and e.get("code") is None
    ]
    assert len(creations) == 1


async def switchover_waiting_for_approval(slack: SlackStandIn, bot: Bot) -> tuple[str, Message]:
    create = await start_run(slack, bot.store, ALICE, "create orders-pg")
    assert (await bot.engine.wait(create, within=RUN_TIMEOUT)).status == "succeeded"
    switchover = await start_run(slack, bot.store, ALICE, "switchover orders-pg")
    return switchover, await approval_message(slack, bot.store, switchover)


async def test_a_replayed_approval_makes_no_second_decision(slack: SlackStandIn, live: Bot, sandbox: Sandbox) -> None:
    run_id, request = await switchover_waiting_for_approval(slack, live)
    async with RequestRecorder(slack.app_url or "") as recorder:
        slack.app_url = recorder.url
        assert (await click_button(slack, request, BOB)).status == 200
        assert (await live.engine.wait(run_id, within=RUN_TIMEOUT)).status == "succeeded"
        audit_before = [entry.action for entry in live.store.audit.list(run_id=run_id)]
        since = timeline_end(sandbox)
        status, _ = await recorder.send(*recorder.requests[-1])
    assert status == 401
    assert [entry.action for entry in live.store.audit.list(run_id=run_id)] == audit_before
    assert mutations_since(sandbox, since) == []
    assert successful(sandbox, SWITCHOVER) == 1


# ---------------------------------------------------------------- people who may not do what they ask


@pytest.mark.parametrize("text", ["create orders-pg", "switchover orders-pg", "cancel r-12345678"])
async def test_a_non_operator_cannot_start_or_cancel(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox, text: str
) -> None:
    since = timeline_end(sandbox)
    result = await slack.send_command(user_id=DAVE, text=text, channel_id=OPS)
    assert "not an operator" in await explanation(slack, result, DAVE, 0)
    assert live.store.runs.list() == [] and mutations_since(sandbox, since) == []
    assert slack.calls("chat.postMessage") == []


def changed_plan(message: Message) -> str:
    value = ApprovalButtonValue.decode(approve_value(message))
    return ApprovalButtonValue(value.request_id, value.run_id, "fingerprint-of-another-plan").encode()


REFUSED_CLICKS = {
    # name: (who clicks, the button value (None: the genuine one), what the explanation says)
    "non-approver": (DAVE, None, "not an approver"),
    "self-approval": (ALICE, None, "two-person rule"),
    "changed plan": (BOB, changed_plan, "plan changed"),
    "not our button": (BOB, lambda message: "x" * 40_000, "does not belong to a current approval request"),
}


@pytest.mark.parametrize("case", list(REFUSED_CLICKS), ids=list(REFUSED_CLICKS))
async def test_a_refused_approval_changes_nothing(slack: SlackStandIn, live: Bot, sandbox: Sandbox, case: str) -> None:
    user, value_of, expected = REFUSED_CLICKS[case]
    run_id, request = await switchover_waiting_for_approval(slack, live)
    since = timeline_end(sandbox)
    before = len(slack.ephemerals(user))
    result = await click_button(slack, request, user, value=value_of(request) if value_of else None)
    assert expected in await explanation(slack, result, user, before)
    assert live.store.approvals.latest(run_id).status == "pending"
    assert live.store.runs.get(run_id).status == "waiting_approval"
    assert mutations_since(sandbox, since) == []


@pytest.mark.parametrize("approval_ttl", [1])
async def test_an_approval_after_expiry_changes_nothing(slack: SlackStandIn, live: Bot, sandbox: Sandbox) -> None:
    run_id, request = await switchover_waiting_for_approval(slack, live)
    expires_at = live.store.approvals.latest(run_id).expires_at
    await slack.wait_for(lambda: time.time() >= expires_at, timeout=5, description="the request's expiry")
    since = timeline_end(sandbox)
    result = await click_button(slack, request, BOB)
    assert "expired" in await explanation(slack, result, BOB, 0)
    assert live.store.approvals.latest(run_id).status == "expired"
    assert mutations_since(sandbox, since) == []


@pytest.mark.parametrize("signing", ["forged", "stale"])
async def test_an_unsigned_approval_gets_401(slack: SlackStandIn, live: Bot, sandbox: Sandbox, signing: str) -> None:
    run_id, request = await switchover_waiting_for_approval(slack, live)
    since = timeline_end(sandbox)
    options: dict[str, Any] = (
        {"signature": signature_with("not-the-secret", int(time.time()), "x")}
        if signing == "forged"
        else {"timestamp": int(time.time()) - 400}
    )
    result = await slack.click(
        user_id=BOB,
        action_id=ApprovalActions.approve.value,
        value=approve_value(request),
        channel_id=OPS,
        message_ts=request.ts,
        **options,
    )
    assert result.status == 401
    assert live.store.approvals.latest(run_id).status == "pending"
    assert mutations_since(sandbox, since) == [] and slack.ephemerals(BOB) == []


async def test_two_concurrent_approvals_make_one_switchover(slack: SlackStandIn, live: Bot, sandbox: Sandbox) -> None:
    run_id, request = await switchover_waiting_for_approval(slack, live)
    results = await asyncio.gather(*(click_button(slack, request, user) for user in (BOB, CAROL, BOB, CAROL)))
    assert [result.status for result in results] == [200] * 4
    assert (await live.engine.wait(run_id, within=RUN_TIMEOUT)).status == "succeeded"
    decided = [e.action for e in live.store.audit.list(run_id=run_id) if e.action == "approval:approved"]
    assert decided == ["approval:approved"]
    assert successful(sandbox, SWITCHOVER) == 1


# ---------------------------------------------------------------- identifiers with markup, oversized text

HOSTILE_TEXT = {
    "shell separator": "create orders-pg;rm -rf /",
    "user mention": "create <@U0BOB>",
    "channel mention": "create <!channel>",
    "here mention in a flag": "create orders-pg --engine-version <!here>",
    "command substitution": "create $(id)",
    "backticks": "create `reboot`",
    "backticks in a flag": "create orders-pg --parameter-group `reboot`",
    "substitution in a timeout": "switchover orders-pg --timeout $(id)",
    "64 characters": "create " + "a" * 64,
    "very long identifier": "create " + "a" * 5_000,
    "40 KB of text": "create " + "x" * 40_000,
    "40 KB of words": "create " + "orders-pg " * 4_000,
    "control characters": "create orders-pg\x00\x1b[2J",
}
MARKUP = ("<@", "<!", "$(", "`reboot`", ";rm", "\x00", "\x1b")


@pytest.mark.parametrize("text", list(HOSTILE_TEXT.values()), ids=list(HOSTILE_TEXT))
async def test_hostile_identifiers_are_refused_without_echo(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox, text: str
) -> None:
    since = timeline_end(sandbox)
    result = await slack.send_command(user_id=ALICE, text=text, channel_id=OPS)
    answer = await explanation(slack, result, ALICE, 0)
    assert "/bluegreen" in answer  # says what to type instead
    assert len(result.body) < 4_000  # the input is not echoed back in full
    for markup in MARKUP:
        assert markup not in answer, f"{markup!r} echoed back in {answer!r}"
    assert live.store.runs.list() == [] and mutations_since(sandbox, since) == []
    assert slack.calls("chat.postMessage") == []


# ---------------------------------------------------------------- no secret anywhere


async def test_no_secret_in_any_log_or_message_of_a_full_run(sandbox: Sandbox, tmp_path: Path, caplog) -> None:
    signing_secret = secrets.token_hex(20)
    bot_token = "xoxb-" + secrets.token_hex(16)
    console = io.StringIO()

    def engine_with_console(store, settings, sinks, approvers):
        return sandbox_engine(sandbox.endpoint)(store, settings, [*sinks, ConsoleSink(console)], approvers)

    secret_variables = {"SLACK_BOT_TOKEN": bot_token, "SLACK_SIGNING_SECRET": signing_secret}
    with json_logs(secret_variables) as json_stream:
        async with SlackStandIn(signing_secret=signing_secret, bot_token=bot_token) as slack:
            settings = make_settings(tmp_path, slack.base_url, extra=secret_variables)
            async with serve_bot(slack, settings, engine_with_console) as bot:
                every_logger_at_debug(caplog)
                run_id, request = await switchover_waiting_for_approval(slack, bot)
                await click_button(slack, request, ALICE)  # refused: logged
                assert (await slack.send_command(user_id=ALICE, text="runs", sign=False)).status == 401
                assert (await click_button(slack, request, BOB)).status == 200
                assert (await bot.engine.wait(run_id, within=RUN_TIMEOUT)).status == "succeeded"
                await asyncio.wait_for(bot.sink.drain(), 10)
                assert_thread_complete(slack, bot.store, run_id)
                recorded = [json.dumps([call.method, call.params], default=str) for call in slack.calls()] + [
                    json.dumps([message.text, message.blocks, [(r.text, r.blocks) for r in message.replies]])
                    for message in slack.messages(OPS)
                ]
                recorded += [json.dumps(item) for item in slack.ephemerals() + slack.views()]

    places = {
        "logs": caplog.text,
        "JSON logs": json_stream.getvalue(),
        "console": console.getvalue(),
        "slack": "\n".join(recorded),
    }
    assert len(caplog.records) > 50 and "DEBUG" in caplog.text  # the logs really were captured, in detail
    json_lines = [json.loads(line) for line in places["JSON logs"].splitlines()]  # every line parses
    assert len(json_lines) > 50 and any(line.get("run_id") == run_id for line in json_lines)
    assert run_id in places["console"] and run_id in places["slack"]
    for where, text in places.items():
        for name, secret in (("bot token", bot_token), ("signing secret", signing_secret)):
            assert secret not in text, f"the {name} appears in the {where}"


@contextlib.contextmanager
def json_logs(variables: dict[str, str]) -> Iterator[io.StringIO]:
    """The bot's log handler as `serve` installs it with LOG_FORMAT=json and these secret variables set, writing to a
    buffer; removed afterwards, with the levels it set."""
    levels = {name: logging.getLogger(name).level for name in ("", *OWN_PACKAGES, *LIBRARY_FLOOR)}
    stream = io.StringIO()
    handler = configure_logging("DEBUG", "json", stream=stream, secrets=known_secrets(variables))
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            logger.setLevel(logging.DEBUG)


def test_the_replay_guard_remembers_a_request_only_while_its_timestamp_is_valid() -> None:
    now = [1_000.0]
    guard = ReplayGuard(window=300, clock=lambda: now[0])
    assert guard.first_time("1000", "v0=aa") and guard.first_time("1000", "v0=bb")
    assert not guard.first_time("1000", "v0=aa")
    now[0] += 2 * 300 + 1  # Bolt refuses timestamp 1000 by now, so the pair may be forgotten
    assert guard.first_time("1000", "v0=aa")
