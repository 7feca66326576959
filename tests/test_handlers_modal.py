"""`/bluegreen create` with no arguments: the modal, through the stand-in against the real app (engine: a fake)."""

from __future__ import annotations

import json

from handlers.ids import CreateModalActions, CreateModalBlockIds
from sandbox.slack import SlackStandIn
from tests.bot_fixtures import (
    Bot,
    bot_fixture,  # noqa: F401  (the `bot` fixture)
)
from tests.slack_fixtures import (
    ALICE,
    DAVE,
    OPS,
    slack_fixture,  # noqa: F401  (the `slack` fixture)
)


async def open_form(slack: SlackStandIn, user: str = ALICE) -> dict:
    result = await slack.send_command(user_id=user, text="create", channel_id=OPS)
    assert result.status == 200 and not result.body
    await slack.wait_for(
        lambda: any(CreateModalBlockIds.target in json.dumps(view) for view in slack.views()),
        timeout=5,
        description="the filled-in create modal",
    )
    (view,) = slack.views()
    return view


def values(target: str, *, parameter_group: str | None = None, mode: str = "auto") -> dict:
    return {
        CreateModalBlockIds.target: {
            CreateModalActions.target: {"type": "static_select", "selected_option": {"value": target}}
        },
        CreateModalBlockIds.parameter_group: {
            CreateModalActions.parameter_group: {"type": "plain_text_input", "value": parameter_group}
        },
        CreateModalBlockIds.mode: {
            CreateModalActions.mode: {"type": "static_select", "selected_option": {"value": mode}}
        },
    }


async def test_the_form_opens_at_once_then_lists_databases_and_upgrade_targets(slack: SlackStandIn, bot: Bot) -> None:
    view = await open_form(slack)
    opened, updated = slack.calls("views.open"), slack.calls("views.update")
    assert len(opened) == 1 and opened[0].ok and len(updated) == 1 and updated[0].ok
    assert "Looking up databases" in json.dumps(opened[0].params)  # the loading view, within the trigger's life
    (select,) = [block for block in view["blocks"] if block.get("block_id") == CreateModalBlockIds.target]
    groups = {
        group["label"]["text"]: [o["value"] for o in group["options"]] for group in select["element"]["option_groups"]
    }
    assert groups["orders-pg (postgres 15.7)"] == ["orders-pg|same", "orders-pg|16.4", "orders-pg|17.2"]
    assert groups["ledger-aurora (aurora-postgresql 15.4)"] == ["ledger-aurora|same", "ledger-aurora|16.6"]
    assert bot.store.runs.list() == []


async def test_submitting_the_form_starts_a_create_run(slack: SlackStandIn, bot: Bot) -> None:
    view = await open_form(slack)
    result = await slack.submit_view(
        user_id=ALICE, view=view, values=values("orders-pg|16.4", parameter_group="pg16", mode="native")
    )
    assert result.status == 200 and not result.body  # closes the modal
    await slack.wait_for(lambda: slack.ephemerals(ALICE), timeout=5, description="the confirmation")
    (request,) = bot.engine.called("start")[0]
    assert (request.kind, request.database, request.engine_version) == ("create", "orders-pg", "16.4")
    assert (request.parameter_group, request.mode, request.channel, request.requester) == ("pg16", "native", OPS, ALICE)
    (run,) = bot.store.runs.list()
    assert run.id in slack.ephemerals(ALICE)[0]["text"]


async def test_same_version_means_no_engine_version(slack: SlackStandIn, bot: Bot) -> None:
    view = await open_form(slack)
    await slack.submit_view(user_id=ALICE, view=view, values=values("ledger-aurora|same"))
    await slack.wait_for(lambda: bot.engine.called("start"), timeout=5, description="start")
    (request,) = bot.engine.called("start")[0]
    assert (request.database, request.engine_version, request.parameter_group) == ("ledger-aurora", None, None)


async def test_an_invalid_field_keeps_the_form_open_with_an_error(slack: SlackStandIn, bot: Bot) -> None:
    view = await open_form(slack)
    result = await slack.submit_view(
        user_id=ALICE, view=view, values=values("orders-pg|16.4", parameter_group="bad--pg")
    )
    assert result.json is not None and result.json["response_action"] == "errors"
    assert "parameter group" in result.json["errors"][CreateModalBlockIds.target]
    assert bot.engine.called("start") == []


async def test_a_refused_start_is_explained_ephemerally(slack: SlackStandIn, bot: Bot) -> None:
    view = await open_form(slack)
    await slack.submit_view(user_id=ALICE, view=view, values=values("orders-pg|same"))
    await slack.wait_for(lambda: len(slack.ephemerals(ALICE)) == 1, timeout=5)
    await slack.submit_view(user_id=ALICE, view=view, values=values("orders-pg|same"))
    await slack.wait_for(lambda: len(slack.ephemerals(ALICE)) == 2, timeout=5)
    assert "already active" in slack.ephemerals(ALICE)[1]["text"]
    assert len(bot.store.runs.list()) == 1


async def test_a_non_operator_cannot_submit(slack: SlackStandIn, bot: Bot) -> None:
    view = await open_form(slack)  # Alice opened it; Dave submits a copy
    await slack.send_command(user_id=DAVE, text="create orders-pg", channel_id=OPS)  # caches the operator group
    await slack.wait_for(lambda: slack.ephemerals(DAVE), timeout=5)
    result = await slack.submit_view(user_id=DAVE, view=view, values=values("orders-pg|same"))
    assert result.json is not None and "not an operator" in result.json["errors"][CreateModalBlockIds.target]
    assert bot.engine.called("start") == []
