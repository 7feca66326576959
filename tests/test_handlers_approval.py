"""The two-person rule through the buttons: real app over HTTP, real Engine, sandbox AWS, Slack stand-in."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from handlers.ids import ApprovalActions
from handlers.messages.approvals import ApprovalButtonValue
from sandbox.aws import Sandbox
from sandbox.slack import SlackStandIn
from tests.bot_fixtures import (
    Bot,
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
    slack_fixture,  # noqa: F401  (the `slack` fixture)
)

RUN_TIMEOUT = 60


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def live(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path, aws_env: None) -> AsyncIterator[Bot]:
    async with serve_bot(slack, make_settings(tmp_path, slack.base_url), sandbox_engine(sandbox.endpoint)) as served:
        yield served


async def run_command(slack: SlackStandIn, bot: Bot, user: str, text: str) -> str:
    """Sends the command, returns the id of the run it started."""
    before = {run.id for run in bot.store.runs.list(limit=100)}
    result = await slack.send_command(user_id=user, text=text, channel_id=OPS)
    assert result.status == 200, result.body

    def started() -> list[str]:
        return [run.id for run in bot.store.runs.list(limit=100) if run.id not in before]

    await slack.wait_for(started, timeout=20, description=f"a run from {text!r} (replies: {slack.ephemerals(user)})")
    return started()[0]


async def approval_message(slack: SlackStandIn, bot: Bot, run_id: str) -> Any:
    def find() -> Any:
        meta = (bot.store.runs.get(run_id).meta or {}).get("slack") or {}
        for reply in slack.thread(OPS, meta["ts"])[1:] if meta.get("ts") else []:
            if ApprovalActions.approve in json.dumps(reply.blocks):
                return reply
        return None

    await slack.wait_for(find, timeout=RUN_TIMEOUT, description="the approval request in the run's thread")
    return find()


def button_value(message: Any) -> str:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == ApprovalActions.approve:
                return element["value"]
    raise AssertionError("no Approve button")


async def click(slack: SlackStandIn, message: Any, user: str, action: ApprovalActions, value: str | None = None):
    return await slack.click(
        user_id=user,
        action_id=action.value,
        value=value or button_value(message),
        channel_id=OPS,
        message_ts=message.ts,
        block_id="approval-buttons",
    )


async def refusal(
    slack: SlackStandIn, message: Any, user: str, action: ApprovalActions, value: str | None = None
) -> str:
    """Clicks as `user` and returns the ephemeral explanation that follows."""
    before = len(slack.ephemerals(user))
    result = await click(slack, message, user, action, value)
    assert result.status == 200
    await slack.wait_for(lambda: len(slack.ephemerals(user)) > before, timeout=10, description=f"a reply to {user}")
    return slack.ephemerals(user)[-1]["text"]


async def switchover_waiting_for_approval(slack: SlackStandIn, bot: Bot) -> tuple[str, Any]:
    create = await run_command(slack, bot, ALICE, "create orders-pg")
    finished = await bot.engine.wait(create, within=RUN_TIMEOUT)
    assert finished.status == "succeeded", finished.error
    switchover = await run_command(slack, bot, ALICE, "switchover orders-pg")
    return switchover, await approval_message(slack, bot, switchover)


async def test_refused_clicks_then_a_second_person_approves(slack: SlackStandIn, live: Bot) -> None:
    run_id, message = await switchover_waiting_for_approval(slack, live)
    rendered = json.dumps(message.blocks)
    assert "<@U0BOB>" in rendered and "<!subteam^S0SRE>" in rendered

    assert "two-person rule" in await refusal(slack, message, ALICE, ApprovalActions.approve)
    assert "not an approver" in await refusal(slack, message, DAVE, ApprovalActions.approve)
    assert live.store.approvals.latest(run_id).status == "pending"

    forged = ApprovalButtonValue.decode(button_value(message))
    stale = ApprovalButtonValue(forged.request_id, forged.run_id, "an-older-plan").encode()
    assert "plan changed" in await refusal(slack, message, BOB, ApprovalActions.approve, value=stale)
    assert live.store.approvals.latest(run_id).status == "pending"

    await click(slack, message, CAROL, ApprovalActions.approve)  # an approver through the S0SRE user group
    finished = await live.engine.wait(run_id, within=RUN_TIMEOUT)
    assert finished.status == "succeeded", finished.error
    await asyncio.wait_for(live.sink.drain(), 10)
    (updated,) = [m for m in slack.thread(OPS, message.thread_ts) if m.ts == message.ts]
    assert "Approved* by <@U0CAROL>" in json.dumps(updated.blocks)
    assert "actions" not in [block["type"] for block in updated.blocks]
    summary = slack.thread(OPS, message.thread_ts)[-1]
    assert summary.broadcast and "orders-proxy" in summary.text + json.dumps(summary.blocks)


async def test_two_quick_clicks_start_one_switchover(slack: SlackStandIn, live: Bot, sandbox: Sandbox) -> None:
    run_id, message = await switchover_waiting_for_approval(slack, live)
    first, second = await asyncio.gather(
        click(slack, message, BOB, ApprovalActions.approve), click(slack, message, CAROL, ApprovalActions.approve)
    )
    assert first.status == second.status == 200
    finished = await live.engine.wait(run_id, within=RUN_TIMEOUT)
    assert finished.status == "succeeded", finished.error
    winner = live.store.approvals.latest(run_id).decided_by
    loser = CAROL if winner == BOB else BOB
    assert winner in {BOB, CAROL}
    await slack.wait_for(lambda: slack.ephemerals(loser), timeout=10, description="the polite refusal")
    assert "already approved" in slack.ephemerals(loser)[-1]["text"]
    assert slack.ephemerals(winner) == []
    switchovers = [e for e in sandbox.control.timeline() if e.get("action") == "SwitchoverBlueGreenDeployment"]
    assert len([e for e in switchovers if e.get("kind") == "call" and e.get("status") == 200]) == 1


async def test_a_rejection_ends_the_run(slack: SlackStandIn, live: Bot) -> None:
    run_id, message = await switchover_waiting_for_approval(slack, live)
    await click(slack, message, BOB, ApprovalActions.reject)
    finished = await live.engine.wait(run_id, within=RUN_TIMEOUT)
    assert finished.status == "rejected"
    await asyncio.wait_for(live.sink.drain(), 10)
    (updated,) = [m for m in slack.thread(OPS, message.thread_ts) if m.ts == message.ts]
    assert "Rejected* by <@U0BOB>" in json.dumps(updated.blocks)


@pytest.fixture
async def short_lived(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path, aws_env: None) -> AsyncIterator[Bot]:
    settings = make_settings(tmp_path, slack.base_url, approval_ttl=1)
    async with serve_bot(slack, settings, sandbox_engine(sandbox.endpoint)) as served:
        yield served


async def test_an_expired_request_refuses_clicks(slack: SlackStandIn, short_lived: Bot) -> None:
    run_id, message = await switchover_waiting_for_approval(slack, short_lived)
    request = short_lived.store.approvals.latest(run_id)
    await slack.wait_for(lambda: time.time() >= request.expires_at, timeout=5)
    assert "expired" in await refusal(slack, message, BOB, ApprovalActions.approve)
    assert short_lived.store.approvals.get(request.id).status == "expired"
    await asyncio.wait_for(short_lived.sink.drain(), 10)
    (updated,) = [m for m in slack.thread(OPS, message.thread_ts) if m.ts == message.ts]
    assert "Expired" in json.dumps(updated.blocks)
