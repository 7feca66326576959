"""Approve asks before it acts: every Approve button the bot can produce (a switchover in either strategy, and
`cleanup --delete-old`) opens a confirmation dialog stating what approving changes, within Slack's limits; Reject is
neutral; the thread links the database, proxy and deployment to the AWS console. The approvals are produced by the
real Engine on the sandbox AWS and read back from the Slack stand-in."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import ConfirmObject

from bot.aws.models import Registration
from handlers.ids import ApprovalActions
from handlers.messages.approvals import (
    CONFIRM_BUTTON_LIMIT,
    CONFIRM_TEXT_LIMIT,
    CONFIRM_TITLE_LIMIT,
    approve_confirmation,
)
from sandbox.aws import Sandbox
from sandbox.slack import Message, SlackStandIn
from storage import RunRecord
from tests.bot_fixtures import Bot, make_settings, sandbox_engine, serve_bot
from tests.slack_fixtures import (
    ALICE,
    BOB,
    approval_message,
    click_button,
    run_thread,
    slack_fixture,  # noqa: F401  (the `slack` fixture)
    start_run,
)

RUN_TIMEOUT = 60
CONSOLE = "https://us-east-1.console.aws.amazon.com/rds/home?region=us-east-1"


@pytest.fixture
async def live(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Bot]:
    async with serve_bot(slack, make_settings(tmp_path, slack.base_url), sandbox_engine(sandbox.endpoint)) as served:
        yield served


def buttons(message: Message) -> dict[str, dict[str, Any]]:
    (actions,) = [block for block in message.blocks if block["type"] == "actions"]
    return {element["action_id"]: element for element in actions["elements"]}


def dialog(message: Message) -> tuple[str, str, str, str]:
    """(title, text, confirm, deny) of the Approve button's dialog, checked against Slack's limits; Reject neutral."""
    found = buttons(message)
    assert "style" not in found[ApprovalActions.reject], "Reject must be neutral"
    assert "confirm" not in found[ApprovalActions.reject]
    confirm = found[ApprovalActions.approve]["confirm"]
    parts = tuple(confirm[key]["text"] for key in ("title", "text", "confirm", "deny"))
    limits = (CONFIRM_TITLE_LIMIT, CONFIRM_TEXT_LIMIT, CONFIRM_BUTTON_LIMIT, CONFIRM_BUTTON_LIMIT)
    assert all(len(part) <= limit for part, limit in zip(parts, limits, strict=True)), parts
    return parts  # type: ignore[return-value]


async def finished(bot: Bot, run_id: str) -> None:
    done = await bot.engine.wait(run_id, within=RUN_TIMEOUT)
    assert done.status == "succeeded", done.error


async def test_workaround_switchover_and_delete_old_approvals_state_what_they_change(
    slack: SlackStandIn, live: Bot
) -> None:
    await finished(live, await start_run(slack, live.store, ALICE, "create orders-pg"))
    switchover = await start_run(slack, live.store, ALICE, "switchover orders-pg")
    message = await approval_message(slack, live.store, switchover)
    title, text, confirm, deny = dialog(message)
    assert title == "Switch over orders-pg?"
    assert "Database: orders-pg." in text
    assert "Proxies detached: orders-proxy." in text
    assert "Expected detached window: from the deregistration until the new primary is AVAILABLE" in text, text
    assert (confirm, deny) == ("Approve switchover", "Cancel")

    deployment = live.store.runs.get(switchover).meta["deployment_id"]
    links = json.dumps(message.blocks) + json.dumps(run_thread(slack, live.store, switchover).parent.blocks)
    assert f"<{CONSOLE}#database:id=orders-pg;is-cluster=false|orders-pg>" in links
    assert f"<{CONSOLE}#proxy:id=orders-proxy|orders-proxy>" in links
    assert f"<{CONSOLE}#databases:|{deployment}>" in links

    await click_button(slack, message, BOB)
    await finished(live, switchover)
    cleanup = await start_run(slack, live.store, ALICE, "cleanup orders-pg --delete-old")
    title, text, confirm, _ = dialog(await approval_message(slack, live.store, cleanup))
    assert title == "Delete orders-pg-old1?"
    assert "Database deleted: orders-pg-old1" in text and "final snapshot" in text
    assert "Production orders-pg is not touched" in text and "Proxies detached: none" in text
    assert confirm == "Approve deletion"


async def test_native_switchover_approval_says_no_proxy_is_detached(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox
) -> None:
    sandbox.control.config(proxy_mode="native")
    await finished(live, await start_run(slack, live.store, ALICE, "create orders-pg"))
    switchover = await start_run(slack, live.store, ALICE, "switchover orders-pg")
    assert live.store.runs.get(switchover).strategy == "native"
    title, text, _, _ = dialog(await approval_message(slack, live.store, switchover))
    assert title == "Switch over orders-pg?" and "Database: orders-pg." in text
    assert "Proxies detached: none (native strategy, AWS keeps the proxy attached)." in text
    assert "Expected detached window: none" in text


def test_the_dialog_fits_slacks_limits_however_long_the_names() -> None:
    database = "d" * 63
    labels = [Registration(f"proxy-{n:02d}-" + "p" * 40, "default").to_dict() for n in range(30)]
    long_run = RunRecord(
        id="r-1a2b3c4d",
        kind="switchover",
        database=database,
        params={},
        strategy="workaround",
        status="waiting_approval",
        requester=ALICE,
        environment="production",
        channel="C0OPS",
        plan_version=1,
        plan_fingerprint="fp",
        created_at=0.0,
        updated_at=0.0,
        finished_at=None,
        error=None,
        summary={},
        meta={"registrations": labels, "detached_estimate": "x: " + "a very long estimate " * 20},
    )
    for kind in ("switchover", "delete_old"):
        confirm: ConfirmObject = approve_confirmation(kind, long_run)
        body = confirm.to_dict()  # slack_sdk validates Slack's limits here and raises beyond them
        assert database in body["title"]["text"] + body["text"]["text"]
    text = approve_confirmation("switchover", long_run).to_dict()["text"]["text"]
    assert f"Database: {database}." in text and "and 29 more" in text and "Expected detached window: the" in text
