"""An environment-wide budget for RDS describe calls (`aws_describe_rate`): a token bucket with two priorities.

RDS API rate limits are shared by the whole account, so proxy scans, `status`, `plan` and preflights share one
budget. Callers inside a detached window (marked with `critical()`) never wait: they take a token at once, borrowing
against the bucket if it is empty, so everything else waits longer instead. Non-critical callers queue in arrival
order until a token is free. The polling inside a window therefore never gets latency from this budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar

_CRITICAL: ContextVar[bool] = ContextVar("bluegreen_describe_critical", default=False)


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """Mark every describe call made in this block (and in tasks it starts) as critical: it never waits."""
    token = _CRITICAL.set(True)
    try:
        yield
    finally:
        _CRITICAL.reset(token)


def is_critical() -> bool:
    """Whether the current context was marked with `critical()`."""
    return _CRITICAL.get()


class DescribeBudget:
    """At most `rate` non-critical describe calls a second on average (bursts up to `burst`, default one second's
    worth). Critical calls are never delayed and count against the same bucket."""

    def __init__(self, rate: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else rate)
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._queue = asyncio.Lock()  # FIFO among the non-critical callers
        self.critical_calls = 0
        self.granted_calls = 0  # non-critical callers let through, at once or after waiting
        self.waited_calls = 0

    @property
    def queued(self) -> bool:
        """Whether a non-critical caller is waiting for a token now."""
        return self._queue.locked()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self) -> None:
        """Take one token: at once for a critical caller (possibly borrowing), else once one is free, in order."""
        self._refill()
        if _CRITICAL.get():
            self._tokens -= 1
            self.critical_calls += 1
            return
        async with self._queue:
            waited = False
            while True:
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    self.granted_calls += 1
                    self.waited_calls += waited
                    return
                waited = True
                # Rate limiting, not synchronisation: the time until the bucket holds one token again.
                await asyncio.sleep((1 - self._tokens) / self.rate)
