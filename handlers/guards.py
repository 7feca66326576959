"""Authorisation for `/bluegreen`: which environment a channel may use and who may start or cancel runs.

The listener middleware runs before `ack()`, so it does no I/O: it parses the command, picks the environment
for the channel and refuses what it can decide from ids and cached user-group members. When the answer needs a
user group that is not cached, the handler confirms it after the ack with `require_operator`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.config import Environment, Settings
from bot.errors import BadRequest, BlueGreenError
from bot.gates.model import GatesFailed
from handlers.approvers import ApproverResolver, MembershipUnknown, membership_refusal
from handlers.messages import replies
from handlers.messages.formatting import Message
from handlers.parsing import ParsedCommand, parse_command

log = logging.getLogger(__name__)

COMMAND_CONTEXT_KEY = "bluegreen_command"
# Bolt refuses a request whose signed timestamp is further than this from now, so a replay can only come sooner.
REPLAY_WINDOW_SECONDS = 5 * 60

Middleware = Callable[..., Awaitable[BoltResponse | None]]


class NotAuthorised(BlueGreenError):
    """The user or channel may not do this. Nothing was changed."""


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What the guard worked out for one slash command, handed to the listener through the Bolt context."""

    command: ParsedCommand
    environment: Environment
    user: str
    channel: str
    operator_confirmed: bool  # False: an uncached user group still has to be checked after the ack


def environment_for(settings: Settings, channel: str | None) -> Environment:
    environment = settings.environment_for_channel(channel)
    if environment is None:
        raise NotAuthorised(
            "This channel is not set up for /bluegreen.",
            fix="Use one of the ops channels configured for an environment (BLUEGREEN_CONFIG, `channels`).",
        )
    return environment


def operator_refusal(environment: Environment) -> NotAuthorised:
    where = "" if environment.name == "default" else f" in `{environment.name}`"
    return NotAuthorised(
        f"You are not an operator{where}, so you cannot start or cancel runs.",
        fix="`status`, `plan` and `runs` are open to everyone; ask an operator for changes.",
    )


def may_operate_cached(resolver: ApproverResolver, user: str, environment: Environment) -> bool | None:
    """Whether `user` may start runs, from ids and cached groups only; None when a group must be fetched."""
    if not environment.operators:
        return True
    return resolver.cached_is_member(user, environment.operators)


async def require_operator(resolver: ApproverResolver, user: str, environment: Environment) -> None:
    """Raises NotAuthorised unless `user` may start runs in `environment` (may call Slack: after the ack only).
    Fails closed: when Slack cannot confirm a user group the user could only be an operator through, refused."""
    if not environment.operators:
        return
    try:
        allowed = await resolver.is_member(user, environment.operators)
    except MembershipUnknown as error:
        raise NotAuthorised(membership_refusal(error, "operator", environment.operators)) from None
    if not allowed:
        raise operator_refusal(environment)


def ephemeral_response(message: Message) -> BoltResponse:
    """An acknowledgement that shows `message` to the user who typed the command, and nobody else."""
    return BoltResponse(status=200, body={"response_type": "ephemeral", **message.as_kwargs()})


def refusal_message(error: BlueGreenError) -> Message:
    """The error with its fix; a `create` refused by its prerequisites also shows every gate's result."""
    return replies.error(error.message, error.fix, gates=error.results if isinstance(error, GatesFailed) else ())


def command_guard(settings: Settings, resolver: ApproverResolver) -> Middleware:
    """Listener middleware for `/bluegreen`: refuses bad input and unauthorised use in the acknowledgement."""

    async def authorise_command(
        command: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        user = command.get("user_id", "")
        channel = command.get("channel_id", "")
        try:
            parsed = parse_command(command.get("text", ""))
            environment = environment_for(settings, channel) if parsed.name != "help" else settings.environment()
            verdict = may_operate_cached(resolver, user, environment) if parsed.changes_something else True
            if verdict is False:
                raise operator_refusal(environment)
        except (BadRequest, NotAuthorised) as error:
            log.info("refused /bluegreen %s from %s: %s", (command.get("text") or "").split()[:1], user, error.message)
            return ephemeral_response(refusal_message(error))
        context[COMMAND_CONTEXT_KEY] = CommandContext(
            command=parsed,
            environment=environment,
            user=user,
            channel=channel,
            operator_confirmed=verdict is True,
        )
        await next()
        return None

    return authorise_command


class ReplayGuard:
    """Global middleware, after Bolt's signature check: refuses a signed request seen before.

    A signed request stays valid for five minutes, so anyone who captured one could send it again to start a
    second run or repeat a decision. A (timestamp, signature) pair is accepted once; pairs are forgotten when
    Bolt would refuse their timestamp anyway. The memory is per process: a restart forgets what it saw.
    """

    def __init__(self, window: float = REPLAY_WINDOW_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self._window = window
        self._clock = clock
        self._seen: set[tuple[str, str]] = set()
        self._expiries: deque[tuple[float, tuple[str, str]]] = deque()

    def first_time(self, timestamp: str, signature: str) -> bool:
        now = self._clock()
        while self._expiries and self._expiries[0][0] < now:
            self._seen.discard(self._expiries.popleft()[1])
        key = (timestamp, signature)
        if key in self._seen:
            return False
        self._seen.add(key)
        self._expiries.append((now + 2 * self._window, key))  # covers a timestamp up to `window` in the future
        return True

    async def refuse_replays(
        self, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse:
        signature = (req.headers.get("x-slack-signature") or [""])[0]
        timestamp = (req.headers.get("x-slack-request-timestamp") or [""])[0]
        if signature and not self.first_time(timestamp, signature):  # unsigned: Socket Mode
            log.warning("refused a replayed request (signed at %s)", timestamp)
            return BoltResponse(status=401, body="replayed request")
        await next()
        return resp
