"""Adaptive waiting: short polls while a fast transition is expected, backing off during long ones.

boto3's waiters poll every 30 s; inside a proxy-detached window that is 30 s of outage per wait. Here a wait
inside the window polls every 0.2 s, and every wait records when it last saw the old state and when it first saw the
new one, so the engine can report how much of the window was its own detection lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from bot.aws.describe_budget import critical

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PollPolicy:
    first: float
    maximum: float
    factor: float
    timeout: float
    critical: bool = False  # probes go first on the describe budget (`bot/aws/describe_budget.py`)

    def within(self, timeout: float) -> PollPolicy:
        return replace(self, timeout=timeout)

    def intervals(self):
        interval = self.first
        while True:
            yield interval
            interval = min(self.maximum, interval * self.factor)


# Inside a proxy-detached window, and wherever a proxy's target is being restored: every 0.2 s (about 5 calls a
# second, well inside RDS's API limits; botocore's adaptive mode slows the client down if AWS throttles it).
CRITICAL = PollPolicy(first=0.2, maximum=0.2, factor=1.0, timeout=3900.0, critical=True)
# Long transitions: provisioning a green environment, an engine upgrade, deleting a database.
SLOW = PollPolicy(first=0.2, maximum=20.0, factor=1.5, timeout=6 * 3600.0)


class WaitTimeout(Exception):
    pass


@dataclass(frozen=True, slots=True)
class WaitResult(Generic[T]):
    value: T
    polls: int
    started_at: float  # wall clock, time.time()
    last_miss_sent: float  # when the last poll that did not see the state was sent (or the wait began)
    seen_at: float  # when the poll that saw the state came back


async def wait_for(
    probe: Callable[[], Awaitable[T | None]],
    *,
    policy: PollPolicy,
    what: str,
    check_cancel: Callable[[], None] | None = None,
    on_miss: Callable[[int], Awaitable[None]] | None = None,
    clock: Callable[[], float] = time.time,
) -> WaitResult[T]:
    """Call `probe` until it returns a value other than None. Raises WaitTimeout naming `what`."""
    started = clock()
    last_miss_sent = started
    polls = 0
    intervals = policy.intervals()
    while True:
        if check_cancel:
            check_cancel()
        sent = clock()
        with critical() if policy.critical else contextlib.nullcontext():
            value = await probe()
        polls += 1
        if value is not None:
            return WaitResult(value, polls, started, last_miss_sent, clock())
        last_miss_sent = sent
        if on_miss:
            await on_miss(polls)
        if clock() - started > policy.timeout:
            raise WaitTimeout(f"gave up waiting for {what} after {policy.timeout:.0f} s")
        await asyncio.sleep(next(intervals))
