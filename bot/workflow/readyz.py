"""Readiness (`GET /readyz`): can this process do its job right now? Three checks, each cheap and cached so that a
probe every second costs next to nothing:

- the database takes a write (a tiny write transaction on the connection the bot writes with);
- Slack accepted the bot token (`auth.test`, refreshed at most every `slack_every` seconds);
- each environment's AWS endpoint answered recently: a successful AWS call in the last `aws_fresh` seconds counts;
  otherwise one cheap describe per environment, at most every `aws_every` seconds (never one AWS call per probe).

Liveness (`/healthz`) is separate and checks none of this.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage import Store

SlackCheck = Callable[[], Awaitable[str | None]]  # None when Slack accepts the token, else the reason
AwsProbe = Callable[[str], Awaitable[None]]  # one cheap describe in that environment; raises when it fails


class _Cached:
    def __init__(self) -> None:
        self.at: float | None = None
        self.reason: str | None = None
        self.lock = asyncio.Lock()

    def fresh(self, every: float) -> bool:
        return self.at is not None and time.monotonic() - self.at < every


class Readiness:
    """`await check()` lists why the process is not ready (empty: ready)."""

    def __init__(
        self,
        store: Store,
        environments: Iterable[str],
        *,
        last_aws_ok: Mapping[str, float],
        aws_probe: AwsProbe,
        slack_check: SlackCheck | None = None,
        aws_fresh: float = 60.0,
        aws_every: float = 30.0,
        slack_every: float = 60.0,
        timeout: float = 3.0,  # per check: a probe answers within about this (set the probe's timeout above it)
    ) -> None:
        self._store = store
        self._environments = list(environments)
        self._last_aws_ok = last_aws_ok
        self._aws_probe = aws_probe
        self._slack_check = slack_check
        self._aws_fresh, self._aws_every, self._slack_every = aws_fresh, aws_every, slack_every
        self._timeout = timeout
        self._slack = _Cached()
        self._aws = {name: _Cached() for name in self._environments}

    async def check(self) -> list[str]:
        """The failing checks' reasons, database first, then Slack, then each environment."""
        reasons = [reason for reason in [self._database(), await self._slack_reason()] if reason]
        aws = await asyncio.gather(*(self._aws_reason(name) for name in self._environments))
        return reasons + [reason for reason in aws if reason]

    def _database(self) -> str | None:
        try:
            with self._store.atomic() as store:
                store.db.execute("UPDATE runs SET id = id WHERE 0")  # takes the write lock, changes nothing
        except sqlite3.Error as error:
            return f"database: not writable ({error})"
        return None

    async def _slack_reason(self) -> str | None:
        if self._slack_check is None:
            return None
        cached = self._slack
        async with cached.lock:
            if not cached.fresh(self._slack_every):
                try:
                    reason = await asyncio.wait_for(self._slack_check(), self._timeout)
                except Exception as error:  # a timeout or a connection error: Slack did not answer
                    reason = type(error).__name__
                cached.reason = None if reason is None else f"slack: auth.test failed ({reason})"
                cached.at = time.monotonic()
        return cached.reason

    async def _aws_reason(self, name: str) -> str | None:
        last_ok = self._last_aws_ok.get(name)
        if last_ok is not None and time.monotonic() - last_ok < self._aws_fresh:
            return None
        cached = self._aws[name]
        async with cached.lock:
            if not cached.fresh(self._aws_every):
                try:
                    await asyncio.wait_for(self._aws_probe(name), self._timeout)
                    cached.reason = None
                except Exception as error:
                    code = getattr(error, "code", None) or type(error).__name__
                    cached.reason = f"aws {name}: no answer from the endpoint ({code})"
                cached.at = time.monotonic()
        return cached.reason
