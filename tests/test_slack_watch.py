"""A deployment that fails while its switchover awaits approval, through Slack: the real app over HTTP, the real
Engine on the sandbox AWS, the Slack stand-in. The request is voided, the thread says why (broadcast), and a signed
Approve click afterwards is refused with the reason."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.workflow import watch
from handlers.ids import ApprovalActions
from sandbox.aws import Sandbox
from sandbox.slack import SlackStandIn
from tests.bot_fixtures import Bot, make_settings, sandbox_engine, serve_bot
from tests.slack_fixtures import BOB, OPS, slack_fixture  # noqa: F401  (the `slack` fixture)
from tests.test_handlers_approval import RUN_TIMEOUT, refusal, switchover_waiting_for_approval


@pytest.fixture
async def live(
    slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Bot]:
    """The app on the real Engine and the sandbox AWS, re-reading the deployment every 50 ms while it waits."""
    monkeypatch.setattr(watch, "WATCH_INTERVAL", 0.05)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "sandbox")
    async with serve_bot(slack, make_settings(tmp_path, slack.base_url), sandbox_engine(sandbox.endpoint)) as served:
        yield served


async def test_degraded_replication_voids_the_approval_and_the_button_says_so(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox
) -> None:
    run_id, message = await switchover_waiting_for_approval(slack, live)

    sandbox.control.degrade_replication("orders-pg", reason="an ALTER TABLE on blue")
    finished = await live.engine.wait(run_id, within=RUN_TIMEOUT)
    await asyncio.wait_for(live.sink.drain(), 10)

    assert finished.status == "failed"
    thread = slack.thread(OPS, message.thread_ts)
    said = [m for m in thread if m.broadcast and "degraded" in m.text + json.dumps(m.blocks)]
    assert said, [m.text for m in thread]
    assert "rollback orders-pg" in said[0].text + json.dumps(said[0].blocks)
    (updated,) = [m for m in thread if m.ts == message.ts]
    rendered = json.dumps(updated.blocks)
    assert "Voided by the bot" in rendered and "an ALTER TABLE on blue" in rendered
    assert "actions" not in [block["type"] for block in updated.blocks]
    events = [m for m in thread if m.text.startswith("RDS event")]
    assert len(events) == 1 and "Replication degraded" in events[0].text + json.dumps(events[0].blocks)

    answer = await refusal(slack, message, BOB, ApprovalActions.approve)  # the old button, clicked anyway

    assert "voided" in answer and "an ALTER TABLE on blue" in answer and "rollback orders-pg" in answer
    request = live.store.approvals.latest(run_id)
    assert request.status == "rejected" and request.decided_by == "bluegreen-bot"
    switchovers = [e for e in sandbox.control.timeline() if e.get("action") == "SwitchoverBlueGreenDeployment"]
    assert switchovers == []
