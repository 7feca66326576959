"""`/bluegreen`: acknowledge at once (nothing slow before `ack()`), then hand the work to the engine.

The guard middleware has already parsed the text and chosen the environment; answers go back ephemerally through
`respond()` (the command's response_url). Runs show their progress in a channel thread posted by the Slack sink.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.errors import BlueGreenError
from bot.workflow.engine import Engine
from handlers import guards
from handlers.after_ack import AfterAck
from handlers.approvers import ApproverResolver
from handlers.channel_access import ChannelAccess
from handlers.guards import COMMAND_CONTEXT_KEY, CommandContext
from handlers.ids import SLASH_COMMAND
from handlers.listeners.modals import open_create_modal
from handlers.messages import replies
from handlers.messages.formatting import Message
from handlers.messages.rehearsals import RehearsalButtonValue, rehearsal_confirmation
from handlers.messages.runs import proxies_abandoned, run_accepted, run_cancelling, runs_message
from handlers.messages.status import plan_message, status_message

log = logging.getLogger(__name__)

Reply = Callable[[Message], Awaitable[None]]


def register(
    app: AsyncApp,
    engine: Engine,
    settings: Settings,
    approvers: ApproverResolver,
    after_ack: AfterAck,
    *,
    channel_access: ChannelAccess,
) -> None:
    async def acknowledge_and_dispatch(
        ack: AsyncAck, context: AsyncBoltContext, respond: AsyncRespond, client: AsyncWebClient, body: dict
    ) -> None:
        request: CommandContext = context[COMMAND_CONTEXT_KEY]
        if request.command.name == "help":
            await ack(**_ephemeral(replies.help_message()))
            return
        await ack()

        async def reply(message: Message) -> None:
            await respond(response_type="ephemeral", **message.as_kwargs())

        async def work() -> None:
            try:
                await _dispatch(
                    request, engine, approvers, client, body.get("trigger_id", ""), reply, channel_access=channel_access
                )
            except BlueGreenError as error:
                await reply(guards.refusal_message(error))
            except Exception:
                log.exception("/bluegreen %s failed", request.command.name)
                await reply(
                    replies.error(
                        "Something went wrong on the bot's side; nothing was started.",
                        "Try again, and tell the bot's operators if it keeps happening.",
                    )
                )

        after_ack.spawn(work(), urgent=request.command.opens_form)

    app.command(SLASH_COMMAND, middleware=[guards.command_guard(settings, approvers)])(acknowledge_and_dispatch)


async def _dispatch(
    request: CommandContext,
    engine: Engine,
    approvers: ApproverResolver,
    client: AsyncWebClient,
    trigger_id: str,
    reply: Reply,
    *,
    channel_access: ChannelAccess,
) -> None:
    command, environment = request.command, request.environment
    if command.changes_something and not request.operator_confirmed:
        await guards.require_operator(approvers, request.user, environment)
    if command.opens_form:
        await open_create_modal(
            client,
            engine,
            trigger_id=trigger_id,
            channel=request.channel,
            environment=environment,
            channel_access=channel_access,
        )
    elif command.name == "status":
        assert command.database is not None
        await reply(status_message(await engine.status(command.database, environment.name)))
    elif command.name == "plan":
        run_request = command.to_request(requester=request.user, environment=environment.name, channel=request.channel)
        await reply(plan_message(await engine.plan(run_request)))
    elif command.name == "runs":
        await reply(runs_message(engine.runs(limit=20)))
    elif command.name == "cancel":
        assert command.run_id is not None
        if command.abandon_proxy:
            await reply(proxies_abandoned(await engine.cancel(command.run_id, request.user, abandon_proxy=True)))
        else:
            await reply(run_cancelling(await engine.cancel(command.run_id, request.user)))
    elif command.name == "rehearse":
        # Nothing starts here: the requester confirms the cost estimate first (handlers/listeners/rehearsal_buttons.py).
        await channel_access.require_member(request.channel)
        run_request = command.to_request(requester=request.user, environment=environment.name, channel=request.channel)
        estimate = await engine.rehearsal_estimate(run_request)
        await reply(rehearsal_confirmation(estimate, RehearsalButtonValue.issue(run_request)))
    elif command.starts_run:
        # Before any AWS change: a run nobody can follow, whose approval request nobody could see, must not start.
        await channel_access.require_member(request.channel)
        run_request = command.to_request(requester=request.user, environment=environment.name, channel=request.channel)
        await reply(run_accepted(await engine.start(run_request)))


def _ephemeral(message: Message) -> dict:
    return {"response_type": "ephemeral", **message.as_kwargs()}
