"""`/bluegreen rehearse` in Slack: the cost estimate first, shown to the requester only, and the rehearsal starting
only when they press Start rehearsal, exactly once. The real app over HTTP with signed requests, the real Engine on
the sandbox AWS, the Slack stand-in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from handlers.ids import RehearsalActions
from handlers.messages.rehearsals import CONFIRMATION_TTL, RehearsalButtonValue
from sandbox.aws import Sandbox
from sandbox.slack import CommandResult, SlackStandIn
from tests.bot_fixtures import Bot, aws_mutations, make_settings, sandbox_engine, serve_bot
from tests.slack_fixtures import ALICE, BOB, DAVE, OPS, run_thread, slack_fixture, thread_ts  # noqa: F401

REHEARSALS_ON = {"BLUEGREEN_REHEARSALS": "true"}


@pytest.fixture
async def live(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Bot]:
    settings = make_settings(tmp_path, slack.base_url, extra=REHEARSALS_ON)
    async with serve_bot(slack, settings, sandbox_engine(sandbox.endpoint)) as served:
        yield served


async def reply(slack: SlackStandIn, user: str, result: CommandResult, before: int) -> str:
    """What the user saw: the acknowledgement's text, or the ephemeral reply that followed it."""
    assert result.status == 200, result.body
    if result.json and result.json.get("text"):
        return result.json["text"]
    await slack.wait_for(lambda: len(slack.ephemerals(user)) > before, timeout=20, description=f"a reply to {user}")
    return slack.ephemerals(user)[-1]["text"]


async def estimate(slack: SlackStandIn, text: str = "rehearse orders-pg --engine-version 16.4") -> dict[str, Any]:
    """Alice types the command; returns the estimate she alone sees."""
    before = len(slack.ephemerals(ALICE))
    result = await slack.send_command(user_id=ALICE, text=text, channel_id=OPS)
    await reply(slack, ALICE, result, before)
    shown = slack.ephemerals(ALICE)[-1]
    assert RehearsalActions.start in json.dumps(shown["blocks"]), shown["text"]
    return shown


def button(shown: dict[str, Any], action: RehearsalActions) -> dict[str, Any]:
    (actions,) = [block for block in shown["blocks"] if block["type"] == "actions"]
    return next(element for element in actions["elements"] if element["action_id"] == action)


async def press(
    slack: SlackStandIn, shown: dict[str, Any], user: str, action: RehearsalActions, value: str | None = None
) -> CommandResult:
    result = await slack.click(
        user_id=user,
        action_id=action.value,
        value=button(shown, action)["value"] if value is None else value,
        channel_id=OPS,
        message_ts=shown["ts"],
        block_id="rehearsal-buttons",
    )
    assert result.status == 200, result.body
    return result


def current(slack: SlackStandIn, shown: dict[str, Any]) -> dict[str, Any]:
    """The estimate's ephemeral message as it is now (the bot replaces it once pressed)."""
    return next(e for e in slack.ephemerals(ALICE) if e["ts"] == shown["ts"])


async def refusal(slack: SlackStandIn, user: str, before: int) -> str:
    await slack.wait_for(lambda: len(slack.ephemerals(user)) > before, timeout=20, description=f"a reply to {user}")
    return slack.ephemerals(user)[-1]["text"]


def rehearsals(bot: Bot) -> list[Any]:
    return [run for run in bot.store.runs.list(limit=20) if run.kind == "rehearse"]


async def test_the_requester_confirms_the_estimate_and_the_rehearsal_runs_in_a_thread(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox
) -> None:
    shown = await estimate(slack)

    assert shown["user"] == ALICE and shown["source"] == "response_url"
    rendered = json.dumps(shown["blocks"])
    for fact in ("db.r6g.large", "100 GiB gp2", "1, like orders-proxy", "engine upgrade 20 min", "not AWS figures"):
        assert fact in rendered, rendered
    assert button(shown, RehearsalActions.start)["style"] == "primary"
    assert rehearsals(live) == [] and aws_mutations(sandbox.control.timeline()) == []

    await press(slack, shown, ALICE, RehearsalActions.start)

    await slack.wait_for(lambda: rehearsals(live), timeout=20, description="the rehearsal recorded")
    (run,) = rehearsals(live)
    assert (run.requester, run.channel, run.params["engine_version"]) == (ALICE, OPS, "16.4")
    await slack.wait_for(
        lambda: thread_ts(live.store, run.id) and len(run_thread(slack, live.store, run.id).replies) >= 1,
        timeout=20,
        description="the rehearsal's thread with its first step report",
    )
    thread = run_thread(slack, live.store, run.id)
    checklist = json.dumps(thread.parent.blocks)
    titles = [step.title for step in live.store.steps.list(run.id)]
    assert titles[0] == "Restore orders-pg's latest restorable state into a disposable clone"
    assert all(title in checklist for title in titles), (titles, checklist)
    assert thread.replies[0].text.startswith("Restore orders-pg's latest restorable state"), thread.replies[0].text
    assert current(slack, shown)["text"] == (
        f"Started the rehearsal of orders-pg as run {run.id}; follow it in the thread below."
    )
    assert RehearsalActions.start not in json.dumps(current(slack, shown)["blocks"])


async def test_a_double_press_and_a_redelivered_click_start_one_rehearsal(slack: SlackStandIn, live: Bot) -> None:
    shown = await estimate(slack, "rehearse orders-pg")
    before = len(slack.ephemerals(ALICE))

    await asyncio.gather(*(press(slack, shown, ALICE, RehearsalActions.start) for _ in range(2)))
    await slack.wait_for(lambda: len(slack.ephemerals(ALICE)) > before, timeout=20, description="the second answer")
    await press(slack, shown, ALICE, RehearsalActions.start)  # as Slack would redeliver it
    await slack.wait_for(lambda: len(slack.ephemerals(ALICE)) > before + 1, timeout=20, description="the third")

    (run,) = rehearsals(live)
    refusals = [e["text"] for e in slack.ephemerals(ALICE)[before:]]
    assert len(refusals) == 2, refusals
    assert all(f"Start refused: this confirmation already started run {run.id}" in text for text in refusals)
    assert current(slack, shown)["text"].startswith("Started the rehearsal of orders-pg as run ")


async def test_someone_else_pressing_start_is_refused_and_starts_nothing(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox
) -> None:
    shown = await estimate(slack)
    before = len(slack.ephemerals(BOB))

    await press(slack, shown, BOB, RehearsalActions.start)

    text = await refusal(slack, BOB, before)
    assert text.startswith(f"Start refused: only <@{ALICE}>, who asked for this rehearsal, can start or cancel it.")
    assert "/bluegreen rehearse orders-pg" in text
    assert rehearsals(live) == [] and aws_mutations(sandbox.control.timeline()) == []
    assert RehearsalActions.start in json.dumps(current(slack, shown)["blocks"])  # still Alice's to press


async def test_cancel_starts_nothing_and_an_old_estimate_cannot_be_started(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox
) -> None:
    shown = await estimate(slack)
    value = RehearsalButtonValue.decode(button(shown, RehearsalActions.start)["value"])
    stale = replace(value, issued_at=value.issued_at - CONFIRMATION_TTL - 1).encode()
    before = len(slack.ephemerals(ALICE))

    await press(slack, shown, ALICE, RehearsalActions.start, value=stale)
    old = await refusal(slack, ALICE, before)
    await press(slack, shown, ALICE, RehearsalActions.cancel)
    await slack.wait_for(
        lambda: current(slack, shown)["text"].startswith("Rehearsal of orders-pg not started"),
        timeout=20,
        description="the estimate replaced by its cancellation",
    )

    assert old.startswith("Start refused: this estimate is more than 10 minutes old.") and "again" in old
    assert current(slack, shown)["text"] == "Rehearsal of orders-pg not started; nothing was created or changed."
    assert rehearsals(live) == [] and aws_mutations(sandbox.control.timeline()) == []


async def test_a_non_operator_is_refused_before_any_estimate(slack: SlackStandIn, live: Bot, sandbox: Sandbox) -> None:
    before = len(slack.ephemerals(DAVE))

    result = await slack.send_command(user_id=DAVE, text="rehearse orders-pg", channel_id=OPS)

    assert "not an operator" in await reply(slack, DAVE, result, before)
    assert RehearsalActions.start not in json.dumps(slack.ephemerals(DAVE))
    assert rehearsals(live) == [] and aws_mutations(sandbox.control.timeline()) == []


async def test_an_environment_without_rehearsals_refuses_with_the_fix(
    slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with serve_bot(slack, make_settings(tmp_path, slack.base_url), sandbox_engine(sandbox.endpoint)) as off:
        before = len(slack.ephemerals(ALICE))
        result = await slack.send_command(user_id=ALICE, text="rehearse orders-pg", channel_id=OPS)
        text = await reply(slack, ALICE, result, before)

        assert "environment production does not allow rehearsals" in text
        assert "Set `rehearsals = true` in the [production] table of BLUEGREEN_CONFIG" in text
        assert RehearsalActions.start not in json.dumps(slack.ephemerals(ALICE))
        assert rehearsals(off) == [] and aws_mutations(sandbox.control.timeline()) == []
