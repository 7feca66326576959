"""Approvers and operators through user groups fail closed: when Slack cannot say who is in a group, nobody is an
approver or operator through it (nothing is decided on an older answer), and `subteam_members_changed` drops a
group's cached membership at once. Real app over HTTP, Slack stand-in, real Engine on the sandbox AWS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Environment
from bot.errors import ApprovalRefused
from handlers.approvers import ApproverResolver, MembershipUnknown
from handlers.ids import ApprovalActions
from sandbox.aws import Sandbox
from sandbox.slack import Message, SlackStandIn
from tests.bot_fixtures import (
    Bot,
    aws_mutations,
    bot_fixture,  # noqa: F401  (the `bot` fixture)
    fast_client,
    make_settings,
    sandbox_engine,
    serve_bot,
)
from tests.slack_fixtures import (
    ALICE,
    BOB,
    CAROL,
    DBA_GROUP,
    ERIN,
    OPS,
    SRE_GROUP,
    approval_message,
    click_button,
    slack_fixture,  # noqa: F401  (the `slack` fixture)
    start_run,
)

RUN_TIMEOUT = 60
GROUPS = "usergroups.users.list"
# More failures than the client's retries (3 for 5xx): Slack stays unable to answer for the whole question.
OUTAGE = 20


@pytest.fixture
async def live(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Bot]:
    async with serve_bot(slack, make_settings(tmp_path, slack.base_url), sandbox_engine(sandbox.endpoint)) as served:
        yield served


async def switchover_waiting_for_approval(slack: SlackStandIn, bot: Bot) -> tuple[str, Message]:
    create = await start_run(slack, bot.store, ALICE, "create orders-pg")
    assert (await bot.engine.wait(create, within=RUN_TIMEOUT)).status == "succeeded"
    run_id = await start_run(slack, bot.store, ALICE, "switchover orders-pg")
    return run_id, await approval_message(slack, bot.store, run_id)


async def reply_to(slack: SlackStandIn, user: str, before: int) -> str:
    await slack.wait_for(lambda: len(slack.ephemerals(user)) > before, timeout=10, description=f"a reply to {user}")
    return slack.ephemerals(user)[-1]["text"]


async def test_an_expired_answer_is_never_used_when_slack_cannot_answer(slack: SlackStandIn) -> None:
    now = [1000.0]
    resolver = ApproverResolver(fast_client(slack.base_url), ttl=300, clock=lambda: now[0])
    environment = Environment(name="production", approvers=frozenset({BOB, SRE_GROUP}))
    assert await resolver.approver_check(CAROL, environment) is True  # Slack answered: Carol is in S0SRE
    now[0] += 301  # the answer has expired
    slack.set_usergroup(SRE_GROUP, [])  # ... and Carol has just been removed
    slack.fail_next(GROUPS, status=503, count=OUTAGE)

    with pytest.raises(MembershipUnknown):
        await resolver.is_member(CAROL, environment.approvers)
    with pytest.raises(ApprovalRefused) as refused:
        await resolver.approver_check(CAROL, environment)
    assert "could not confirm the membership" in refused.value.message
    assert "directly listed approver (<@U0BOB>)" in refused.value.message
    assert await resolver.approver_check(BOB, environment) is True  # listed by id: no group needed
    assert resolver.cached_is_member(CAROL, environment.approvers) is None


async def test_group_lookup_fails_group_approval_refused_direct_approver_works(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox
) -> None:
    run_id, message = await switchover_waiting_for_approval(slack, live)
    request = live.store.approvals.latest(run_id)
    seq = sandbox.control.timeline()[-1]["seq"]
    slack.fail_next(GROUPS, status=503, count=OUTAGE)

    before = len(slack.ephemerals(CAROL))
    assert (await click_button(slack, message, CAROL)).status == 200  # an approver only through S0SRE
    text = await reply_to(slack, CAROL, before)
    assert "Slack could not confirm the membership of the user group" in text, text
    assert "directly listed approver" in text and "Try again" in text
    assert live.store.approvals.get(request.id).status == "pending"
    assert aws_mutations(sandbox.control.timeline(since=seq)) == []
    refused = [e for e in live.store.audit.list(run_id=run_id) if e.action == "approval:refused:approved"]
    assert refused and "could not confirm" in json.dumps(refused[-1].detail)

    await click_button(slack, message, BOB)  # listed by id: Slack's user groups do not matter
    finished = await live.engine.wait(run_id, within=RUN_TIMEOUT)
    assert finished.status == "succeeded", finished.error
    assert live.store.approvals.get(request.id).decided_by == BOB


async def test_group_lookup_fails_group_operator_refused_direct_operator_starts(slack: SlackStandIn, bot: Bot) -> None:
    slack.fail_next(GROUPS, status=503, count=OUTAGE)
    result = await slack.send_command(user_id=ERIN, text="switchover orders-pg", channel_id=OPS)  # via S0DBAS
    assert result.status == 200
    text = await reply_to(slack, ERIN, 0)
    assert f"Slack could not confirm the membership of the user group <!subteam^{DBA_GROUP}>" in text, text
    assert "directly listed operator" in text
    assert bot.engine.called("start") == []

    run_id = await start_run(slack, bot.store, ALICE, "switchover orders-pg")  # listed by id
    assert [args[0].requester for args in bot.engine.called("start")] == [ALICE]
    assert bot.store.runs.get(run_id) is not None


async def test_subteam_members_changed_refreshes_the_group_at_once(slack: SlackStandIn, live: Bot) -> None:
    run_id, message = await switchover_waiting_for_approval(slack, live)
    await live.approvers.members(SRE_GROUP)  # Carol's membership is cached, for 300 s
    assert live.approvers.cached_is_member(CAROL, [SRE_GROUP]) is True

    result = await slack.update_usergroup(SRE_GROUP, [])  # Carol removed; Slack sends subteam_members_changed
    assert result.status == 200, result.body
    assert live.approvers.cached_is_member(CAROL, [SRE_GROUP]) is None  # dropped, not kept until it expires

    before = len(slack.ephemerals(CAROL))
    await click_button(slack, message, CAROL)
    assert "not an approver" in await reply_to(slack, CAROL, before)
    assert live.store.approvals.latest(run_id).status == "pending"
    await click_button(slack, message, BOB, ApprovalActions.reject)
    assert (await live.engine.wait(run_id, within=RUN_TIMEOUT)).status == "rejected"


async def test_an_unsigned_membership_event_changes_nothing(slack: SlackStandIn, live: Bot) -> None:
    await live.approvers.members(SRE_GROUP)
    forged = await slack.send_event(
        {"type": "subteam_members_changed", "subteam_id": SRE_GROUP, "removed_users": [CAROL]},
        signature="v0=" + "0" * 64,
    )
    assert forged.status == 401
    assert live.approvers.cached_is_member(CAROL, [SRE_GROUP]) is True
