"""Whether the bot can post in a channel, asked before a command starts a run there.

A run shows its progress and, above all, its approval request in a thread of the channel it was started from. If
the bot is not in that channel (never invited, removed, a private channel it cannot see) or the channel is archived,
nobody would see the approval request, so the command is refused before any AWS change. The answer comes from
`conversations.info` (`is_member`, `is_archived`): one Tier 3 call, kept `MEMBER_TTL` seconds when it says yes, not
kept when it says no (so that `/invite` takes effect at once). Anything that is not a clear yes refuses: a channel
Slack will not describe to the bot counts as one it is not in, and Slack failing to answer refuses too.

The refusal is an ephemeral reply through the command's response_url, which works even where the bot is not a member.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BlueGreenError

log = logging.getLogger(__name__)

MEMBER_TTL = 30.0  # seconds a "the bot is in this channel" answer is reused
INVITE = "/invite @bluegreen"  # the bot user's display name in manifest.yml
# Slack errors that mean the bot cannot post in the channel at all (chat.postMessage, chat.update, ...).
CHANNEL_LOST_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


class CannotPostHere(BlueGreenError):
    """The bot cannot post in the channel (or Slack could not confirm that it can). Nothing was started."""


def not_in_channel(reason: str) -> CannotPostHere:
    return CannotPostHere(
        f"The bot {reason}, so nobody would see this run's progress or its approval request. Nothing was started.",
        fix=f"Type `{INVITE}` in this channel, then run the command again.",
    )


class ChannelAccess:
    """Answers "may a run post in this channel?" from `conversations.info`, with a short cache for yes."""

    def __init__(
        self, client: AsyncWebClient, *, ttl: float = MEMBER_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._members: dict[str, float] = {}  # channel -> when Slack last said the bot is in it

    async def require_member(self, channel: str | None) -> None:
        """Returns when the bot is in `channel` and it is not archived; raises CannotPostHere, saying what to do,
        otherwise, including when Slack cannot answer. May call Slack: after the ack only."""
        if not channel:
            raise CannotPostHere(
                "This request names no channel for the run's thread. Nothing was started.",
                fix="Start it with `/bluegreen` from the ops channel.",
            )
        seen = self._members.get(channel)
        if seen is not None and self._clock() - seen < self._ttl:
            return
        self._members.pop(channel, None)
        try:
            response = await self._client.conversations_info(channel=channel)
        except SlackApiError as error:
            code = error.response.get("error")
            log.info("conversations.info %s: %s", channel, code)
            if code == "channel_not_found":
                raise not_in_channel(
                    "is not in this channel (or it is private and the bot was never invited)"
                ) from None
            if code == "missing_scope":
                raise CannotPostHere(
                    "The bot lacks the scope to check that it is in this channel. Nothing was started.",
                    fix="Reinstall the app from manifest.yml (scopes `channels:read` and `groups:read`).",
                ) from None
            raise _unconfirmed(code or f"HTTP {error.response.status_code}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise _unconfirmed(type(error).__name__) from None
        info = response.get("channel") or {}
        if info.get("is_archived"):
            raise CannotPostHere(
                "This channel is archived, so the bot cannot post the run's thread here. Nothing was started.",
                fix="Run the command from the ops channel.",
            )
        if info.get("is_member") is not True and info.get("is_im") is not True:  # its own DM has no `is_member`
            raise not_in_channel("is not in this channel")
        self._members[channel] = self._clock()


def _unconfirmed(what: str) -> CannotPostHere:
    return CannotPostHere(
        f"Slack could not confirm that the bot is in this channel ({what}). Nothing was started.",
        fix=f"Try again in a moment; if it keeps failing, check that the bot is in the channel (`{INVITE}`).",
    )
