"""Who belongs to a Slack user group (S...), from `usergroups.users.list` (a Tier 2 method, so answers are cached).

Fail closed. An answer is kept for `CACHE_TTL` seconds and never used after that; when Slack cannot say who is in a
group, the question is not answered from an old answer: `is_member` raises `MembershipUnknown` unless the user is
listed directly or a group Slack did answer for holds them. Someone just removed from a group therefore never keeps
their rights because Slack was unavailable. A `subteam_members_changed` event (handlers/listeners/usergroups.py)
drops the group's cached answer at once, so a removal takes effect without waiting for the lifetime to run out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Environment
from bot.errors import ApprovalRefused, BlueGreenError
from handlers.messages.formatting import mention

log = logging.getLogger(__name__)

CACHE_TTL = 300.0  # seconds a group's membership, as Slack last gave it, is trusted


def is_group(slack_id: str) -> bool:
    return slack_id.startswith("S")


class MembershipUnknown(BlueGreenError):
    """Slack could not say who is in these user groups, and nothing else settled the question."""

    def __init__(self, groups: Sequence[str]) -> None:
        self.groups = tuple(groups)
        super().__init__(
            f"Slack could not confirm the membership of the user group {', '.join(mention(g) for g in self.groups)}."
        )


def membership_refusal(error: MembershipUnknown, role: str, listed: Iterable[str]) -> str:
    """What to tell someone who is a `role` ("approver", "operator") at most through the groups Slack did not answer
    for: nothing was decided, try again, or ask someone listed by user id."""
    direct = sorted(item for item in listed if not is_group(item))
    who = f"a directly listed {role} ({', '.join(mention(user) for user in direct)})" if direct else f"an {role}"
    return (
        f"{error.message} Nothing was decided on an older answer, so this is refused. "
        f"Try again in a moment, or ask {who}."
    )


class ApproverResolver:
    """Answers "is this user one of these ids", where an id is a user (U/W...) or a user group (S...)."""

    def __init__(
        self, client: AsyncWebClient, *, ttl: float = CACHE_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._generations: dict[str, int] = {}  # bumped by `invalidate`: an answer fetched across it is not kept
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def ttl(self) -> float:
        return self._ttl

    async def is_member(self, user: str, ids: Iterable[str]) -> bool:
        """True when `user` is one of `ids` or in one of its groups; False when Slack answered for every group and
        none holds the user. Raises MembershipUnknown when no group holds the user as far as Slack said and Slack
        could not answer for at least one group (the user may be in it, or may just have been removed)."""
        ids = frozenset(ids)
        if user in ids:
            return True
        unknown: list[str] = []
        for group in sorted(item for item in ids if is_group(item)):
            try:
                if user in await self.members(group):
                    return True
            except MembershipUnknown:
                unknown.append(group)
        if unknown:
            raise MembershipUnknown(unknown)
        return False

    def cached_is_member(self, user: str, ids: Iterable[str]) -> bool | None:
        """The answer without any Slack call, or None when a group's membership is not cached within its lifetime."""
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
        """The group's members, from the cache within its lifetime, else from Slack. Raises MembershipUnknown when
        Slack cannot answer (an error, or no answer after the client's retries); an expired answer is not used."""
        cached = self._fresh(group)
        if cached is not None:
            return cached
        async with self._locks.setdefault(group, asyncio.Lock()):
            cached = self._fresh(group)  # another task may have fetched it while we waited
            if cached is not None:
                return cached
            generation = self._generations.get(group, 0)
            try:
                response = await self._client.usergroups_users_list(usergroup=group)
            except SlackApiError as error:
                log.warning("usergroups.users.list failed for %s: %s", group, error.response.get("error"))
                raise MembershipUnknown([group]) from None
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                log.warning("usergroups.users.list failed for %s: %s", group, type(error).__name__)
                raise MembershipUnknown([group]) from None
            members = frozenset(response.get("users") or [])
            if self._generations.get(group, 0) == generation:
                self._members[group] = (self._clock(), members)
            return members

    async def warm(self, ids: Iterable[str]) -> None:
        """Fetches every group among ids, so the first command does not wait for Slack. A group Slack cannot
        answer for now is simply not cached; it is asked again on first use."""
        groups = sorted({item for item in ids if is_group(item)})
        results = await asyncio.gather(*(self.members(group) for group in groups), return_exceptions=True)
        for group, result in zip(groups, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("could not pre-fetch user group %s: %s", group, result)

    def invalidate(self, group: str | None = None) -> None:
        """Forget the cached membership of `group` (of every group when None): the next question asks Slack. A fetch
        already under way when this is called does not refill the cache with its (possibly older) answer."""
        groups = [group] if group is not None else list({*self._members, *self._generations, *self._locks})
        for item in groups:
            self._members.pop(item, None)
            self._generations[item] = self._generations.get(item, 0) + 1

    def forget(self) -> None:
        self.invalidate()

    async def approver_check(self, user: str, environment: Environment) -> bool:
        """The engine's ApproverCheck: may `user` approve in `environment`? Raises ApprovalRefused, saying why, when
        Slack cannot confirm a group the user could only be an approver through."""
        try:
            return await self.is_member(user, environment.approvers)
        except MembershipUnknown as error:
            raise ApprovalRefused(membership_refusal(error, "approver", environment.approvers)) from None

    def _fresh(self, group: str) -> frozenset[str] | None:
        entry = self._members.get(group)
        if entry is None or self._clock() - entry[0] >= self._ttl:
            return None
        return entry[1]
