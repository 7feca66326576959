"""The create modal: `/bluegreen create` with no arguments.

The trigger id expires 3 seconds after the command arrived, so a "loading" view is opened at once and filled in
with `views.update` once the engine has listed the databases and their upgrade targets. Submitting starts a
create run; the answer is an ephemeral message in the channel the command came from (a direct message where the bot
cannot post there). Like every command that starts a run, the form refuses a channel the bot is not in
(`handlers.channel_access`): the form shows why instead of the databases, and a submission is checked again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Environment, Settings
from bot.errors import BadRequest, BlueGreenError
from bot.planning.requests import RunRequest
from bot.workflow.engine import Engine
from handlers import guards
from handlers.after_ack import AfterAck
from handlers.approvers import ApproverResolver
from handlers.channel_access import CHANNEL_LOST_ERRORS, ChannelAccess
from handlers.ids import CreateModalActions, CreateModalBlockIds, CreateModalCallbacks
from handlers.messages import replies
from handlers.messages.create_modal import (
    create_modal,
    create_modal_loading,
    create_modal_problem,
    parse_create_modal_target,
)
from handlers.messages.formatting import Message
from handlers.messages.runs import run_accepted

log = logging.getLogger(__name__)


async def open_create_modal(
    client: AsyncWebClient,
    engine: Engine,
    *,
    trigger_id: str,
    channel: str,
    environment: Environment,
    channel_access: ChannelAccess,
) -> None:
    opened = await client.views_open(trigger_id=trigger_id, view=create_modal_loading(channel))
    view = opened["view"]
    try:
        await channel_access.require_member(channel)
        databases = await engine.databases(environment.name)
        targets = await asyncio.gather(*(engine.upgrade_targets(db.identifier, environment.name) for db in databases))
        form = create_modal(channel=channel, choices=list(zip(databases, targets, strict=True)))
    except BlueGreenError as error:
        form = create_modal_problem(channel, guards.refusal_message(error))
    except Exception:
        log.exception("could not fill the create modal")
        form = create_modal_problem(channel, replies.error("Could not list the databases.", "Try again later."))
    await client.views_update(view_id=view["id"], hash=view.get("hash"), view=form)


def register(
    app: AsyncApp,
    engine: Engine,
    settings: Settings,
    approvers: ApproverResolver,
    after_ack: AfterAck,
    *,
    channel_access: ChannelAccess,
) -> None:
    async def submit_create(ack: AsyncAck, body: dict, view: dict, client: AsyncWebClient) -> None:
        user = body["user"]["id"]
        channel = _channel_of(view)
        try:
            environment = guards.environment_for(settings, channel)
            request = _run_request(view, user=user, channel=channel, environment=environment)
            verdict = guards.may_operate_cached(approvers, user, environment)
            if verdict is False:
                raise guards.operator_refusal(environment)
        except BadRequest as error:
            await ack(response_action="errors", errors={CreateModalBlockIds.target.value: _short(error)})
            return
        except guards.NotAuthorised as error:
            await ack(response_action="errors", errors={CreateModalBlockIds.target.value: _short(error)})
            return
        await ack()

        async def start_run() -> None:
            try:
                if verdict is None:
                    await guards.require_operator(approvers, user, environment)
                await channel_access.require_member(channel)  # before any AWS change
                message = run_accepted(await engine.start(request))
            except BlueGreenError as error:
                message = guards.refusal_message(error)
            except Exception:
                log.exception("create from the modal failed")
                message = replies.error("Something went wrong on the bot's side; nothing was started.")
            await _tell(client, channel=channel, user=user, message=message)

        after_ack.spawn(start_run())

    app.view(CreateModalCallbacks.submit.value)(submit_create)


def _run_request(view: dict, *, user: str, channel: str | None, environment: Environment) -> RunRequest:
    values: dict[str, dict[str, Any]] = view.get("state", {}).get("values", {})
    selected = _field(values, CreateModalBlockIds.target, CreateModalActions.target).get("selected_option") or {}
    if not selected.get("value"):
        raise BadRequest("Choose a database.")
    database, engine_version = parse_create_modal_target(selected["value"])
    parameter_group = (
        _field(values, CreateModalBlockIds.parameter_group, CreateModalActions.parameter_group).get("value") or ""
    ).strip()
    mode_option = _field(values, CreateModalBlockIds.mode, CreateModalActions.mode).get("selected_option") or {}
    return RunRequest(
        kind="create",
        database=database,
        requester=user,
        environment=environment.name,
        channel=channel,
        engine_version=engine_version,
        parameter_group=parameter_group or None,
        mode=mode_option.get("value") or "auto",  # type: ignore[arg-type]
    )


def _field(values: dict[str, dict[str, Any]], block_id: str, action_id: str) -> dict[str, Any]:
    return values.get(block_id, {}).get(action_id) or {}


def _channel_of(view: dict) -> str | None:
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return None
    channel = metadata.get("channel") if isinstance(metadata, dict) else None
    return channel if isinstance(channel, str) and channel else None


def _short(error: BadRequest | guards.NotAuthorised) -> str:
    return str(error)[:150]  # shown under the form field


async def _tell(client: AsyncWebClient, *, channel: str | None, user: str, message: Message) -> None:
    """Tells the submitter how it went: ephemeral in the command's channel, else (no channel, or one the bot cannot
    post in) a direct message."""
    try:
        if channel:
            try:
                await client.chat_postEphemeral(channel=channel, user=user, **message.as_kwargs())
                return
            except SlackApiError as error:
                if error.response.get("error") not in CHANNEL_LOST_ERRORS:
                    raise
        await client.chat_postMessage(channel=user, **message.as_kwargs())
    except SlackApiError as error:
        log.warning("could not tell %s about the create: %s", user, error.response.get("error"))
