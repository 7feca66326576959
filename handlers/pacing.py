"""Stay inside Slack's published rate limits instead of leaning on 429s.

`chat.postMessage` allows about one message a second per channel (short bursts tolerated); `chat.update` is Tier 3,
about 50 a minute per workspace. With many runs at once the thread sink would exceed both, and Slack would answer
429 while runs wait. A token bucket per (method, scope) paces the sink's calls so that no 60-second window holds
more than the limit: burst + rate x 60 <= limit. Other methods pass straight through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Budget:
    per_minute: int
    burst: int
    per_channel: bool

    @property
    def rate(self) -> float:
        """Tokens a second, so that a full bucket plus a minute of refill stays within the limit."""
        return (self.per_minute - self.burst) / 60.0


BUDGETS = {
    "chat_postMessage": Budget(per_minute=60, burst=10, per_channel=True),
    "chat_update": Budget(per_minute=50, burst=10, per_channel=False),
}


class TokenBucket:
    def __init__(self, budget: Budget, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._budget = budget
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(budget.burst)
        self._stamp = clock()
        self._lock = asyncio.Lock()  # FIFO: callers are served in the order they asked

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self._budget.burst, self._tokens + (now - self._stamp) * self._budget.rate)
                self._stamp = now
                if self._tokens >= 1 - 1e-9:  # refill arithmetic can land a hair under 1
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                await self._sleep((1 - self._tokens) / self._budget.rate)


class PacedWebClient:
    """Wraps an AsyncWebClient; paced methods wait for a token, everything else is the client itself."""

    def __init__(
        self,
        client: Any,
        budgets: dict[str, Budget] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self._budgets = BUDGETS if budgets is None else budgets
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def _bucket(self, method: str, channel: str | None) -> TokenBucket:
        budget = self._budgets[method]
        key = (method, (channel or "?") if budget.per_channel else "workspace")
        if key not in self._buckets:
            self._buckets[key] = TokenBucket(budget, clock=self._clock, sleep=self._sleep)
        return self._buckets[key]

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self._budgets:
            return attribute

        async def paced(**kwargs: Any) -> Any:
            await self._bucket(name, kwargs.get("channel")).take()
            return await attribute(**kwargs)

        return paced
