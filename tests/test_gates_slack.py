"""The gates in Slack: the readiness table in the approval request, and a `create` refused by its prerequisites
answered ephemerally with the gate table. Real app over HTTP, real Engine, sandbox AWS, Slack stand-in."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.aws import Sandbox
from sandbox.slack import SlackStandIn
from tests.bot_fixtures import Bot, aws_mutations, make_settings, sandbox_engine, serve_bot
from tests.gates_fixtures import lag_shows
from tests.slack_fixtures import ALICE, OPS, slack_fixture  # noqa: F401  (the `slack` fixture)
from tests.test_handlers_approval import approval_message, run_command


@pytest.fixture
async def live(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Bot]:
    async with serve_bot(slack, make_settings(tmp_path, slack.base_url), sandbox_engine(sandbox.endpoint)) as served:
        yield served


def section_texts(blocks: list[dict[str, Any]], block_id: str | None = None) -> list[str]:
    return [
        b["text"]["text"]
        for b in blocks
        if b.get("type") == "section" and (block_id is None or b.get("block_id") == block_id)
    ]


async def test_the_approval_request_shows_the_readiness_table(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox, rds: Any, aws_client: Any
) -> None:
    create = await run_command(slack, live, ALICE, "create orders-pg")
    assert (await live.engine.wait(create, within=60)).status == "succeeded"
    await lag_shows(sandbox, aws_client("cloudwatch"), rds, 0.5)
    switchover = await run_command(slack, live, ALICE, "switchover orders-pg")

    message = await approval_message(slack, live, switchover)

    (table,) = section_texts(message.blocks, "approval-gates")
    assert table.startswith("*Readiness (checked again right before anything is detached):*")
    for gate in ("deployment", "switchover members", "green instances", "replica lag", "pending maintenance"):
        assert f":white_check_mark: *{gate}* (pass)" in table, table
    assert "ReplicaLag (physical replication, green) on orders-pg-green-" in table


async def test_a_create_refused_by_its_prerequisites_answers_with_the_gate_table(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox, rds: Any
) -> None:
    rds.modify_db_instance(DBInstanceIdentifier="orders-pg", BackupRetentionPeriod=0, ApplyImmediately=True)
    mark = sandbox.control.timeline()[-1]["seq"]
    before = len(slack.ephemerals(ALICE))

    result = await slack.send_command(user_id=ALICE, text="create orders-pg --engine-version 16.4", channel_id=OPS)

    assert result.status == 200
    await slack.wait_for(lambda: len(slack.ephemerals(ALICE)) > before, timeout=20, description="the refusal")
    reply = slack.ephemerals(ALICE)[-1]
    assert "prerequisite automated backups failed: automated backups are off on orders-pg" in reply["text"]
    rendered = json.dumps(reply["blocks"])
    assert ":x: *automated backups* (fail)" in rendered and "--backup-retention-period 7" in rendered
    assert ":white_check_mark: *upgrade target* (pass)" in rendered
    assert live.store.runs.list(limit=5) == []
    assert aws_mutations(sandbox.control.timeline(since=mark)) == []


async def test_plan_in_slack_shows_the_prerequisites(slack: SlackStandIn, live: Bot) -> None:
    before = len(slack.ephemerals(ALICE))

    result = await slack.send_command(user_id=ALICE, text="plan orders-pg --engine-version 16.4", channel_id=OPS)

    assert result.status == 200
    await slack.wait_for(lambda: len(slack.ephemerals(ALICE)) > before, timeout=20, description="the plan")
    (table,) = [text for text in section_texts(slack.ephemerals(ALICE)[-1]["blocks"]) if "Prerequisites:" in text]
    assert table.count(":white_check_mark:") == 8 and ":x:" not in table, table
    assert ":white_check_mark: *replication settings* (pass): rds.logical_replication = 1" in table
