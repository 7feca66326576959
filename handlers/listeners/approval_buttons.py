"""Approve / Reject buttons on an approval request. The engine applies the two-person rule; this only relays.

A refused click (the requester, not an approver, expired, plan changed, already decided) gets an ephemeral
explanation and changes nothing. Of two quick clicks the engine lets exactly one win; the other gets a polite note.
The approval message itself is updated by the Slack sink when the engine reports the decision.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.errors import BlueGreenError
from bot.workflow.engine import Engine
from handlers.after_ack import AfterAck
from handlers.ids import ApprovalActions
from handlers.messages import replies
from handlers.messages.approvals import ApprovalButtonValue
from handlers.messages.formatting import Message

log = logging.getLogger(__name__)

Decide = Callable[[str, str, str | None], Awaitable[Any]]


def register(app: AsyncApp, engine: Engine, after_ack: AfterAck) -> None:
    app.action(ApprovalActions.approve.value)(_button_listener(engine.approve, "approve", after_ack))
    app.action(ApprovalActions.reject.value)(_button_listener(engine.reject, "reject", after_ack))


def _button_listener(decide: Decide, verb: str, after_ack: AfterAck) -> Callable[..., Awaitable[None]]:
    async def relay_decision(ack: AsyncAck, body: dict, action: dict, respond: AsyncRespond) -> None:
        await ack()
        after_ack.spawn(_decide(body, action, respond))

    async def _decide(body: dict, action: dict, respond: AsyncRespond) -> None:
        user = body["user"]["id"]

        async def explain(message: Message) -> None:
            await respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())

        try:
            value = ApprovalButtonValue.decode(action.get("value", ""))
        except ValueError:
            await explain(replies.error("This button does not belong to a current approval request."))
            return
        try:
            await decide(value.request_id, user, value.fingerprint)
        except BlueGreenError as error:
            log.info("%s of %s by %s refused: %s", verb, value.request_id, user, error.message)
            await explain(replies.error(f"Your {verb} was not applied: {error.message}", error.fix))
        except Exception:
            log.exception("%s of %s failed", verb, value.request_id)
            await explain(replies.error(f"Your {verb} could not be recorded; nothing was changed.", "Try again."))

    relay_decision.__name__ = f"relay_{verb}"
    return relay_decision
