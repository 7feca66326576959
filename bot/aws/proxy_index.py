"""The per-environment index of RDS Proxies: proxy -> target groups -> targets, built by one paginated scan and
shared by every run and look-up of the environment.

Freshness is a caller's choice, stated as a time: `snapshot(fresh_after=t)` answers with a scan that *started* at or
after `t` (on the index's clock), so a run that passes the moment it was requested cannot miss a proxy registered
before that moment. Requests arriving while such a scan is in flight wait for it; requests it is too old for wait
for the next one, which every one of them shares. One scan runs at a time, and scans start at most once every
`min_interval` seconds. A failed scan fails every request that was waiting on it (fail closed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from bot.aws.models import Database, ProxyTarget, Registration
from bot.aws.responses import health_of, registered_as

# proxy name -> target group name -> every target entry of that group
Proxies = Mapping[str, Mapping[str, list[ProxyTarget]]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    started: float  # the index clock when the scan began: nothing registered before this is missing
    finished: float
    proxies: Proxies

    def registrations(self, database: Database) -> list[Registration]:
        """Every target group the database is registered with, in proxy then group order."""
        return [
            Registration(proxy, group)
            for proxy, groups in sorted(self.proxies.items())
            for group, targets in sorted(groups.items())
            if any(registered_as(database, t) for t in targets)
        ]

    def health(self, database: Database, registrations: list[Registration]) -> list[ProxyTarget]:
        """The database's own target entries on those target groups, as the scan saw them."""
        found: list[ProxyTarget] = []
        for registration in registrations:
            groups = self.proxies.get(registration.proxy, {})
            found += health_of(database, list(groups.get(registration.target_group, [])))
        return found


class ProxyIndex:
    """Single-flight scans with a freshness bound. `scan()` must return the whole account's proxies."""

    def __init__(
        self,
        scan: Callable[[], Awaitable[Proxies]],
        *,
        max_age: float = 5.0,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._scan = scan
        self.max_age = max_age
        self.min_interval = min_interval
        self.clock = clock
        self._latest: Snapshot | None = None
        self._inflight: asyncio.Future[Snapshot] | None = None
        self._inflight_started = 0.0
        self._last_start: float | None = None
        self._task: asyncio.Future[None] | None = None
        self._not_before = float("-inf")
        self.scans = 0

    def invalidate(self) -> None:
        """Forget the latest snapshot (the bot changed a registration): the next look-up waits for a new scan."""
        self._latest = None
        self._not_before = self.clock()  # nor a scan in flight now, which may have read the group before the change

    async def snapshot(self, fresh_after: float | None = None) -> Snapshot:
        """A snapshot whose scan started at or after `fresh_after`; without it, one at most `max_age` seconds old.
        Raises whatever the scan that would serve it raised (`bot.errors.AwsError`)."""
        need = max(self.clock() - self.max_age if fresh_after is None else fresh_after, self._not_before)
        while True:
            if self._latest is not None and self._latest.started >= need:
                return self._latest
            inflight = self._inflight
            if inflight is not None:
                if self._inflight_started >= need:
                    return await asyncio.shield(inflight)
                await asyncio.wait([inflight])  # too old for us: the next scan, shared, starts once it ends
                continue
            self._start_scan()

    def _start_scan(self) -> None:
        future: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._inflight = future
        self._inflight_started = self.clock()  # provisional; the real start is set after any rate-limit pause
        self._task = asyncio.ensure_future(self._run_scan(future))  # kept referenced while it runs

    async def _run_scan(self, future: asyncio.Future[Snapshot]) -> None:
        try:
            if self._last_start is not None:
                pause = self._last_start + self.min_interval - self.clock()
                if pause > 0:
                    await asyncio.sleep(pause)  # the bounded refresh rate, not synchronisation
            started = self._last_start = self._inflight_started = self.clock()
            self.scans += 1
            proxies = await self._scan()
            snapshot = Snapshot(started, self.clock(), proxies)
            if self._latest is None or snapshot.started >= self._latest.started:
                self._latest = snapshot
            future.set_result(snapshot)
        except Exception as exc:  # every waiter gets the failure; nothing is cached
            future.set_exception(exc)
            future.exception()  # marked retrieved: a scan nobody awaited any more must not log noise
        except BaseException:
            future.cancel()
            raise
        finally:
            if self._inflight is future:
                self._inflight = None
