"""`/bluegreen` through the Slack stand-in against the real Bolt app over HTTP (engine: a recording fake)."""

from __future__ import annotations

import json
import logging

import pytest

from handlers.app import QUIET_LOGGERS
from sandbox.slack import SlackStandIn
from tests.bot_fixtures import (
    Bot,
    bot_fixture,  # noqa: F401  (the `bot` fixture)
)
from tests.slack_fixtures import (
    ALICE,
    BOB,
    DAVE,
    ELSEWHERE,
    ERIN,
    OPS,
    slack_fixture,  # noqa: F401  (the `slack` fixture)
)


def ack_text(result) -> str:
    assert result.status == 200, result.body
    assert result.json is not None, f"expected a JSON acknowledgement, got {result.body!r}"
    assert result.json.get("response_type") == "ephemeral"
    return result.json["text"]


async def later_reply(slack: SlackStandIn, user: str, count: int = 1) -> dict:
    """The ephemeral message posted to the command's response_url after the ack."""
    await slack.wait_for(lambda: len(slack.ephemerals(user)) >= count, timeout=5, description="ephemeral reply")
    return slack.ephemerals(user)[count - 1]


async def test_help_is_answered_in_the_ack(slack: SlackStandIn, bot: Bot) -> None:
    for text in ("help", ""):
        result = await slack.send_command(user_id=DAVE, text=text, channel_id=ELSEWHERE)
        body = ack_text(result)
        assert "status" in body and "switchover" in body and "cancel" in body
    assert bot.engine.calls == []


async def test_status_replies_with_targets_and_health(slack: SlackStandIn, bot: Bot) -> None:
    result = await slack.send_command(user_id=DAVE, text="status orders-pg", channel_id=OPS)
    assert result.status == 200 and not result.body  # an empty ack, then the answer
    reply = await later_reply(slack, DAVE)
    rendered = json.dumps(reply["blocks"])
    assert "orders-proxy" in rendered and "AVAILABLE" in rendered and "15.7" in rendered
    assert bot.engine.called("status") == [("orders-pg", "production")]


async def test_plan_shows_steps_with_aws_commands_and_changes_nothing(slack: SlackStandIn, bot: Bot) -> None:
    await slack.send_command(
        user_id=DAVE, text="plan orders-pg --engine-version 16.4 --mode workaround", channel_id=OPS
    )
    reply = await later_reply(slack, DAVE)
    rendered = json.dumps(reply["blocks"])
    assert "aws rds deregister-db-proxy-targets" in rendered and "Nothing was changed" in rendered
    (request,) = bot.engine.called("plan")[0]
    assert (request.kind, request.engine_version, request.mode) == ("create", "16.4", "workaround")
    assert bot.engine.called("start") == [] and bot.store.runs.list() == []


@pytest.mark.parametrize(
    ("text", "kind", "field", "value"),
    [
        ("create orders-pg --parameter-group pg16-tuned", "create", "parameter_group", "pg16-tuned"),
        ("upgrade orders-pg --engine-version 16.4", "upgrade", "engine_version", "16.4"),
        ("switchover orders-pg --timeout 120", "switchover", "switchover_timeout", 120),
        ("cleanup orders-pg --delete-old", "cleanup", "delete_old", True),
        ("rollback orders-pg", "rollback", "mode", "auto"),
    ],
)
async def test_run_commands_start_a_run_in_the_channel(
    slack: SlackStandIn,
    bot: Bot,
    text: str,
    kind: str,
    field: str,
    value: object,
) -> None:
    result = await slack.send_command(user_id=ALICE, text=text, channel_id=OPS)
    assert result.status == 200
    reply = await later_reply(slack, ALICE)
    (request,) = bot.engine.called("start")[0]
    assert (request.kind, request.database, request.requester, request.channel) == (kind, "orders-pg", ALICE, OPS)
    assert getattr(request, field) == value
    (run,) = bot.store.runs.list()
    assert run.id in reply["text"]


async def test_runs_lists_runs_and_cancel_asks_the_engine(slack: SlackStandIn, bot: Bot) -> None:
    await slack.send_command(user_id=ALICE, text="create orders-pg", channel_id=OPS)
    await later_reply(slack, ALICE)
    (run,) = bot.store.runs.list()
    await slack.send_command(user_id=DAVE, text="runs", channel_id=OPS)
    assert run.id in json.dumps((await later_reply(slack, DAVE))["blocks"])
    await slack.send_command(user_id=BOB, text=f"cancel {run.id}", channel_id=OPS)
    assert run.id in (await later_reply(slack, BOB))["text"]
    assert bot.engine.called("cancel") == [(run.id, BOB)]


BAD_INPUT = [
    ("frobnicate orders-pg", "not a /bluegreen command"),
    ("staus orders-pg", "Did you mean `/bluegreen status`"),
    ("status", "needs a database identifier"),
    ("status bad--name", "not a valid RDS identifier"),
    ("status orders-pg extra", "takes one database"),
    ("plan orders-pg --timeout 60", "does not apply to `plan`"),
    ("plan orders-pg --mode sideways", "not a mode"),
    ("create orders-pg --engine-version", "needs a value"),
    ("create 9lives", "not a valid RDS identifier"),
    ("create orders-pg --engine-version 16.4 --engine-version 17", "given twice"),
    ("upgrade orders-pg", "needs the target version"),
    ("upgrade orders-pg --engine-version x.y", "not an engine version"),
    ("switchover orders-pg --timeout 5", "out of range"),
    ("switchover orders-pg --timeout soon", "whole seconds"),
    ("cleanup orders-pg --delete-old=yes", "takes no value"),
    ("rollback orders-pg --delete-old", "does not apply to `rollback`"),
    ("runs orders-pg", "takes no argument"),
    ("cancel", "needs a run id"),
    ("cancel 1234", "not a run id"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_INPUT)
async def test_bad_input_is_explained_in_the_ack_and_changes_nothing(
    slack: SlackStandIn,
    bot: Bot,
    text: str,
    expected: str,
) -> None:
    result = await slack.send_command(user_id=ALICE, text=text, channel_id=OPS)
    message = ack_text(result)
    assert expected in message
    assert "/bluegreen" in message  # says what to type instead
    assert bot.engine.calls == [] and bot.store.runs.list() == []
    assert slack.calls("chat.postMessage") == []


@pytest.mark.parametrize(
    "text",
    [
        "status missing-db",
        "plan missing-db",
        "create missing-db",
        "upgrade missing-db --engine-version 16.4",
        "switchover missing-db",
        "cleanup missing-db",
        "rollback missing-db",
    ],
)
async def test_unknown_database_gets_an_ephemeral_answer(slack: SlackStandIn, bot: Bot, text: str) -> None:
    result = await slack.send_command(user_id=ALICE, text=text, channel_id=OPS)
    assert result.status == 200
    reply = await later_reply(slack, ALICE)
    assert "missing-db" in reply["text"] and "Check the spelling" in reply["text"]
    assert bot.store.runs.list() == []


async def test_a_second_run_on_the_same_database_is_refused(slack: SlackStandIn, bot: Bot) -> None:
    await slack.send_command(user_id=ALICE, text="create orders-pg", channel_id=OPS)
    await later_reply(slack, ALICE)
    await slack.send_command(user_id=ALICE, text="switchover orders-pg", channel_id=OPS)
    reply = await later_reply(slack, ALICE, count=2)
    assert "already active" in reply["text"]
    assert len(bot.store.runs.list()) == 1


async def test_cancel_of_an_unknown_run_is_explained(slack: SlackStandIn, bot: Bot) -> None:
    await slack.send_command(user_id=BOB, text="cancel r-00000000", channel_id=OPS)
    assert "no run" in (await later_reply(slack, BOB))["text"]


async def test_non_operators_cannot_start_or_cancel_but_may_read(slack: SlackStandIn, bot: Bot) -> None:
    # The operators include a user group nobody has looked up yet: the ack cannot wait for Slack, so the
    # refusal follows through the response_url.
    first = await slack.send_command(user_id=DAVE, text="create orders-pg", channel_id=OPS)
    assert first.status == 200 and not first.body
    assert "not an operator" in (await later_reply(slack, DAVE))["text"]
    # With the group cached, the refusal is in the acknowledgement itself.
    for text in ("switchover orders-pg", "cancel r-12345678"):
        message = ack_text(await slack.send_command(user_id=DAVE, text=text, channel_id=OPS))
        assert "not an operator" in message
    assert bot.engine.called("start") == [] and bot.engine.called("cancel") == []
    assert bot.store.runs.list() == []
    await slack.send_command(user_id=DAVE, text="runs", channel_id=OPS)
    await later_reply(slack, DAVE, count=2)


async def test_operator_through_a_user_group_is_resolved_after_the_ack(slack: SlackStandIn, bot: Bot) -> None:
    result = await slack.send_command(user_id=ERIN, text="create orders-pg", channel_id=OPS)
    assert result.status == 200 and not result.body  # acked before any Slack call
    await later_reply(slack, ERIN)
    assert len(bot.engine.called("start")) == 1
    assert [call.params.get("usergroup") for call in slack.calls("usergroups.users.list")] == ["S0DBAS"]
    # cached now: a second command needs no further lookup
    await slack.send_command(user_id=ERIN, text="rollback ledger-aurora", channel_id=OPS)
    await later_reply(slack, ERIN, count=2)
    assert len(slack.calls("usergroups.users.list")) == 1


async def test_a_channel_without_an_environment_is_refused(slack: SlackStandIn, bot: Bot) -> None:
    for text in ("status orders-pg", "create orders-pg", "runs"):
        message = ack_text(await slack.send_command(user_id=ALICE, text=text, channel_id=ELSEWHERE))
        assert "not set up for /bluegreen" in message
    assert bot.engine.calls == []


async def test_forged_and_stale_signatures_are_rejected_and_change_nothing(
    slack: SlackStandIn, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in QUIET_LOGGERS:  # as Bolt does when another app is built: levels reset to the root's
        logging.getLogger(name).setLevel(logging.DEBUG)
    forged = await slack.send_command(
        user_id=ALICE, text="create orders-pg", channel_id=OPS, signature="v0=" + "0" * 64
    )
    stale = await slack.send_command(user_id=ALICE, text="create orders-pg", channel_id=OPS, timestamp=1_600_000_000)
    unsigned = await slack.send_command(user_id=ALICE, text="create orders-pg", channel_id=OPS, sign=False)
    for result in (forged, stale, unsigned):
        assert result.status == 401
    assert bot.engine.calls == [] and bot.store.runs.list() == []
    assert slack.ephemerals() == [] and slack.calls("chat.postMessage") == []
    assert "orders-pg" not in caplog.text  # Bolt would log the whole body of a rejected request


async def test_health_check(slack: SlackStandIn, bot: Bot) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/healthz") as response:
        assert response.status == 200
        assert (await response.json())["ok"] is True
