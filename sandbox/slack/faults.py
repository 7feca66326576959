"""Fault injection: Web API calls made to fail (429 with Retry-After, or a 5xx), or to be answered late.

`SlackStandIn.fail_next` queues a `Fault`; the server takes one use of it per call of that method. A failing call
is answered by `fault_response` without touching the workspace. A late one (`delay > 0`) waits in `HeldBackCalls`
and is then applied and answered normally, so a client that timed out still leaves the side effect behind.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from dataclasses import dataclass

from aiohttp import web


@dataclass
class Fault:
    status: int
    retry_after: int
    remaining: int
    delay: float


class FaultQueue:
    """The faults queued per Web API method, oldest first. Not locked: the workspace's lock guards it."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {}

    def add(self, method: str, fault: Fault) -> None:
        self._queues.setdefault(method, deque()).append(fault)

    def take(self, method: str) -> Fault | None:
        """Consume one use of the oldest fault queued for `method`, if any."""
        queue = self._queues.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.popleft()
        return copy.copy(fault)

    def clear(self) -> None:
        self._queues.clear()


def fault_response(fault: Fault) -> web.Response:
    """Slack's answer to a call that fails with `fault.status`."""
    if fault.status == 429:
        return web.json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(fault.retry_after)},
        )
    return web.json_response({"ok": False, "error": "fatal_error"}, status=fault.status)


class HeldBackCalls:
    """The calls a `delay` fault is holding back (not applied, not recorded yet); stopping the server releases them."""

    def __init__(self) -> None:
        self.count = 0
        self._stopping: asyncio.Event | None = None

    def open(self) -> None:
        """Called when the server starts."""
        self._stopping = asyncio.Event()

    def release_all(self) -> None:
        """Called when the server stops: wakes every held call at once."""
        if self._stopping is not None:
            self._stopping.set()

    async def hold(self, delay: float) -> None:
        assert self._stopping is not None
        self.count += 1
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            pass
        finally:
            self.count -= 1
