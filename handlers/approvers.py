"""Who belongs to a Slack user group (S...), from `usergroups.users.list`, cached for a few minutes (Tier 2 method)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Environment

log = logging.getLogger(__name__)

CACHE_TTL = 300.0


def is_group(slack_id: str) -> bool:
    return slack_id.startswith("S")


class ApproverResolver:
    """Answers "is this user one of these ids", where an id is a user (U/W...) or a user group (S...)."""

    def __init__(
        self, client: AsyncWebClient, *, ttl: float = CACHE_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def is_member(self, user: str, ids: Iterable[str]) -> bool:
        ids = frozenset(ids)
        if user in ids:
            return True
        for group in sorted(item for item in ids if is_group(item)):
            if user in await self.members(group):
                return True
        return False

    def cached_is_member(self, user: str, ids: Iterable[str]) -> bool | None:
        """The answer without any Slack call, or None when a group's membership is not cached (or stale)."""
        ids = frozenset(ids)
        if user in ids:
            return True
        unknown = False
        for group in (item for item in ids if is_group(item)):
            cached = self._fresh(group)
            if cached is None:
                unknown = True
            elif user in cached:
                return True
        return None if unknown else False

    async def members(self, group: str) -> frozenset[str]:
        cached = self._fresh(group)
        if cached is not None:
            return cached
        async with self._locks.setdefault(group, asyncio.Lock()):
            cached = self._fresh(group)  # another task may have fetched it while we waited
            if cached is not None:
                return cached
            try:
                response = await self._client.usergroups_users_list(usergroup=group)
                members = frozenset(response.get("users") or [])
            except SlackApiError as error:
                # Fail closed: nobody is a member of a group we cannot read. Keep a stale answer if we had one.
                log.warning("usergroups.users.list failed for %s: %s", group, error.response.get("error"))
                stale = self._members.get(group)
                return stale[1] if stale else frozenset()
            self._members[group] = (self._clock(), members)
            return members

    async def warm(self, ids: Iterable[str]) -> None:
        """Fetches every group among ids, so the first command does not wait for Slack."""
        await asyncio.gather(*(self.members(item) for item in set(ids) if is_group(item)))

    def forget(self) -> None:
        self._members.clear()

    async def approver_check(self, user: str, environment: Environment) -> bool:
        """The engine's ApproverCheck: may `user` approve in `environment`?"""
        return await self.is_member(user, environment.approvers)

    def _fresh(self, group: str) -> frozenset[str] | None:
        entry = self._members.get(group)
        if entry is None or self._clock() - entry[0] >= self._ttl:
            return None
        return entry[1]
