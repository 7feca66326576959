"""Start rehearsal / Cancel on a rehearsal's cost estimate (`/bluegreen rehearse`). Ack first, then decide.

Only the requester may press either button, and only while they are still an operator; anyone else gets an
ephemeral refusal and nothing changes. Start asks the engine for one run per estimate (`confirmation=` its token), so
a second press or a redelivered click is refused naming the run the first one started. Cancel changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.config import Settings
from bot.errors import BlueGreenError
from bot.workflow.engine import Engine
from handlers import guards
from handlers.after_ack import AfterAck
from handlers.approvers import ApproverResolver
from handlers.channel_access import ChannelAccess
from handlers.ids import RehearsalActions
from handlers.messages import replies
from handlers.messages.formatting import Message, mention
from handlers.messages.rehearsals import (
    CONFIRMATION_TTL,
    RehearsalButtonValue,
    rehearsal_not_started,
    rehearsal_started,
)

log = logging.getLogger(__name__)

Reply = Callable[[Message], Awaitable[None]]


class Refused(BlueGreenError):
    """A press that may not act; nothing was changed."""


def register(
    app: AsyncApp,
    engine: Engine,
    settings: Settings,
    approvers: ApproverResolver,
    after_ack: AfterAck,
    *,
    channel_access: ChannelAccess,
) -> None:
    async def ack_start(ack: AsyncAck, body: dict, action: dict, respond: AsyncRespond) -> None:
        await ack()
        after_ack.spawn(_pressed(body, action, respond, start=True))

    async def ack_cancel(ack: AsyncAck, body: dict, action: dict, respond: AsyncRespond) -> None:
        await ack()
        after_ack.spawn(_pressed(body, action, respond, start=False))

    async def _pressed(body: dict, action: dict, respond: AsyncRespond, *, start: bool) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""

        async def explain(message: Message) -> None:
            await respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())

        async def replace(message: Message) -> None:
            await respond(response_type="ephemeral", replace_original=True, **message.as_kwargs())

        verb = "start" if start else "cancel"
        try:
            value = _checked_value(action.get("value", ""), user)
            if start:
                await _start(value, user, channel, replace)
            else:
                await _cancel(value, replace)
        except BlueGreenError as error:
            log.info("rehearsal %s by %s refused: %s", verb, user, error.message)
            prefix = "Start refused" if start else "Nothing cancelled"
            await explain(replies.error(f"{prefix}: {error.message}", error.fix))
        except Exception:
            log.exception("rehearsal %s by %s failed", verb, user)
            await explain(replies.error("Something went wrong on the bot's side; nothing was started.", "Try again."))

    async def _start(value: RehearsalButtonValue, user: str, channel: str, replace: Reply) -> None:
        if value.expired():
            raise Refused(
                f"this estimate is more than {CONFIRMATION_TTL // 60} minutes old.",
                fix=f"Type `/bluegreen rehearse {value.database}` again for a fresh one.",
            )
        environment = guards.environment_for(settings, channel)
        if environment.name != value.environment:
            raise Refused(
                f"this estimate was made for environment {value.environment}, not {environment.name}.",
                fix=f"Type `/bluegreen rehearse {value.database}` in this channel.",
            )
        await guards.require_operator(approvers, user, environment)
        await channel_access.require_member(channel)
        run = await engine.start(value.request(channel), confirmation=value.token)
        await replace(rehearsal_started(run))

    async def _cancel(value: RehearsalButtonValue, replace: Reply) -> None:
        started = engine.confirmed_run(value.database, value.token)
        if started is not None:
            raise Refused(
                f"this estimate already started run {started.id}.", fix=f"`/bluegreen cancel {started.id}` stops it."
            )
        await replace(rehearsal_not_started(value.database))

    app.action(RehearsalActions.start.value)(ack_start)
    app.action(RehearsalActions.cancel.value)(ack_cancel)


def _checked_value(raw: str, user: str) -> RehearsalButtonValue:
    try:
        value = RehearsalButtonValue.decode(raw)
    except ValueError:
        raise Refused("this button does not belong to a rehearsal estimate.") from None
    if user != value.requester:
        raise Refused(
            f"only {mention(value.requester)}, who asked for this rehearsal, can start or cancel it.",
            fix=f"Type `/bluegreen rehearse {value.database}` for your own estimate.",
        )
    return value
