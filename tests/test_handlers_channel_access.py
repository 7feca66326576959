"""A run must be seen: a command that would start one in a channel the bot cannot post in is refused before any AWS
change (ephemeral, naming `/invite`), and a run that loses its channel stops at its next approval, which it withdraws,
and tells its requester by direct message. Real app over HTTP, Slack stand-in, real Engine on the sandbox AWS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.errors import ApprovalRefused
from handlers.channel_access import INVITE, CannotPostHere, ChannelAccess
from handlers.ids import CreateModalActions, CreateModalBlockIds
from sandbox.aws import Sandbox
from sandbox.slack import Message, SlackStandIn
from tests.bot_fixtures import Bot, aws_mutations, fast_client, make_settings, sandbox_engine, serve_bot
from tests.slack_fixtures import (
    ALICE,
    BOB,
    OPS,
    approval_message,
    click_button,
    slack_fixture,  # noqa: F401  (the `slack` fixture)
    start_run,
)

RUN_TIMEOUT = 60
STARTS_A_RUN = [
    "create orders-pg",
    "upgrade orders-pg --engine-version 16.4",
    "switchover orders-pg",
    "cleanup orders-pg --delete-old",
    "rollback orders-pg",
]


@pytest.fixture
async def live(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Bot]:
    async with serve_bot(slack, make_settings(tmp_path, slack.base_url), sandbox_engine(sandbox.endpoint)) as served:
        yield served


def timeline_end(sandbox: Sandbox) -> int:
    timeline = sandbox.control.timeline()
    return timeline[-1]["seq"] if timeline else 0


async def reply_to(slack: SlackStandIn, user: str, before: int) -> str:
    await slack.wait_for(lambda: len(slack.ephemerals(user)) > before, timeout=10, description=f"a reply to {user}")
    return slack.ephemerals(user)[-1]["text"]


@pytest.mark.parametrize("text", STARTS_A_RUN)
async def test_a_run_is_refused_where_the_bot_cannot_post(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox, text: str
) -> None:
    slack.set_member(OPS, False)
    seq = timeline_end(sandbox)
    result = await slack.send_command(user_id=ALICE, text=text, channel_id=OPS)
    assert result.status == 200
    reply = await reply_to(slack, ALICE, 0)
    assert INVITE in reply and "Nothing was started" in reply, reply
    assert slack.calls("response_url")[-1].params["response_type"] == "ephemeral"
    assert live.store.runs.list() == []
    assert aws_mutations(sandbox.control.timeline(since=seq)) == []
    assert slack.calls("chat.postMessage") == []


async def test_invited_again_the_same_command_starts_at_once(slack: SlackStandIn, live: Bot) -> None:
    slack.set_member(OPS, False)
    await slack.send_command(user_id=ALICE, text="create orders-pg", channel_id=OPS)
    assert INVITE in await reply_to(slack, ALICE, 0)
    slack.set_member(OPS, True)  # /invite: a refusal is not remembered
    run_id = await start_run(slack, live.store, ALICE, "create orders-pg")
    assert (await live.engine.wait(run_id, within=RUN_TIMEOUT)).status == "succeeded"


async def test_membership_yes_is_kept_briefly_no_and_no_answer_refuse(slack: SlackStandIn) -> None:
    now = [0.0]
    access = ChannelAccess(fast_client(slack.base_url), ttl=30, clock=lambda: now[0])
    await access.require_member(OPS)
    await access.require_member(OPS)
    assert len(slack.calls("conversations.info")) == 1  # a yes is reused within its lifetime

    slack.set_member(OPS, False)
    now[0] += 31
    with pytest.raises(CannotPostHere, match="not in this channel"):
        await access.require_member(OPS)
    slack.set_member(OPS, True)
    await access.require_member(OPS)  # a no is not kept: the invitation counts at once
    assert len(slack.calls("conversations.info")) == 3

    now[0] += 31
    slack.fail_next("conversations.info", status=503, count=20)  # beyond the client's retries
    with pytest.raises(CannotPostHere, match="could not confirm") as refused:
        await access.require_member(OPS)
    assert INVITE in str(refused.value)


def modal_values(target: str) -> dict:
    return {
        CreateModalBlockIds.target: {
            CreateModalActions.target: {"type": "static_select", "selected_option": {"value": target}}
        },
        CreateModalBlockIds.parameter_group: {CreateModalActions.parameter_group: {"type": "plain_text_input"}},
        CreateModalBlockIds.mode: {
            CreateModalActions.mode: {"type": "static_select", "selected_option": {"value": "auto"}}
        },
    }


async def test_the_create_modal_refuses_a_channel_the_bot_is_not_in(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox
) -> None:
    slack.set_member(OPS, False)
    seq = timeline_end(sandbox)
    assert (await slack.send_command(user_id=ALICE, text="create", channel_id=OPS)).status == 200
    await slack.wait_for(lambda: slack.calls("views.update"), timeout=10, description="the modal filled in")
    (view,) = slack.views()
    assert INVITE in json.dumps(view["blocks"]) and CreateModalBlockIds.target not in json.dumps(view["blocks"])

    # A form submitted anyway (say, one opened before the bot was removed) is checked again before anything starts.
    submitted = await slack.submit_view(user_id=ALICE, view=view, values=modal_values("orders-pg|same"))
    assert submitted.status == 200
    assert INVITE in await reply_to(slack, ALICE, 0)
    assert live.store.runs.list() == []
    assert aws_mutations(sandbox.control.timeline(since=seq)) == []


def direct_messages(slack: SlackStandIn, user: str) -> list[Message]:
    return slack.messages(user)


async def test_a_run_that_loses_its_channel_stops_at_its_approval_and_says_so(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox
) -> None:
    create = await start_run(slack, live.store, ALICE, "create orders-pg")
    assert (await live.engine.wait(create, within=RUN_TIMEOUT)).status == "succeeded"

    def remove_the_bot_once_the_thread_starts(event: str, message: Message) -> None:
        if event == "posted" and message.channel == OPS and message.text.startswith("Switchover: orders-pg"):
            slack.set_member(OPS, False)  # someone removes the bot while the preflight runs

    slack.on_message = remove_the_bot_once_the_thread_starts
    seq = timeline_end(sandbox)
    run_id = await start_run(slack, live.store, ALICE, "switchover orders-pg")
    finished = await live.engine.wait(run_id, within=RUN_TIMEOUT)

    assert finished.status == "failed" and "withdrawn" in (finished.error or ""), finished.error
    assert [s.status for s in live.store.steps.list(run_id)][:2] == ["done", "failed"]  # preflight, then the gate
    mutations = [e["action"] for e in aws_mutations(sandbox.control.timeline(since=seq))]
    assert mutations == [], f"the run changed AWS after losing its channel: {mutations}"

    request = live.store.approvals.latest(run_id)
    assert request.status == "rejected" and request.decided_by == "bluegreen-bot" and request.meta["withdrawn"]
    with pytest.raises(ApprovalRefused, match="withdrawn"):
        await live.engine.approve(request.id, BOB)
    assert live.store.approvals.get(request.id).status == "rejected"

    await slack.wait_for(lambda: len(direct_messages(slack, ALICE)) >= 3, timeout=10, description="three DMs")
    lost, withdrawn, summary = (m.text for m in direct_messages(slack, ALICE))
    assert "can no longer post in <#C0OPS> (not_in_channel)" in lost and "next approval" in lost and INVITE in lost
    assert f"Run {run_id} stopped at its approval" in withdrawn and INVITE in withdrawn
    assert summary.startswith(f"Run {run_id} (switchover orders-pg) failed")
    # The channel shows the parent only: nothing after the bot was removed.
    assert [m.text.split(":")[0] for m in slack.messages(OPS) if run_id in m.text] == ["Switchover"]


async def test_an_approval_shown_before_the_channel_was_lost_still_works(slack: SlackStandIn, live: Bot) -> None:
    create = await start_run(slack, live.store, ALICE, "create orders-pg")
    assert (await live.engine.wait(create, within=RUN_TIMEOUT)).status == "succeeded"
    run_id = await start_run(slack, live.store, ALICE, "switchover orders-pg")
    message = await approval_message(slack, live.store, run_id)
    slack.set_member(OPS, False)  # people saw the request; the bot is removed afterwards
    await click_button(slack, message, BOB)
    finished = await live.engine.wait(run_id, within=RUN_TIMEOUT)
    assert finished.status == "succeeded", finished.error
    await slack.wait_for(lambda: direct_messages(slack, ALICE), timeout=10, description="a DM to the requester")
    assert "can no longer post" in direct_messages(slack, ALICE)[0].text
