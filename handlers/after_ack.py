"""What a listener does after `ack()` runs as a task of its own, behind a few slots.

The app runs Bolt with `process_before_response=True`: a listener's return is what answers Slack's HTTP request,
so listeners only parse, authorise and `ack()`, and hand everything slower (AWS look-ups for `status` and `plan`,
starting a run, recording a decision, answers through response_url) to `AfterAck.spawn`. That keeps Bolt from
polling for the ack every 10 ms, and the slots keep a burst of that work from queueing every new acknowledgement
behind it (they share one event loop). Work beyond the slots waits its turn; nothing is dropped. These tasks are
answers, not jobs: runs themselves are durable in the engine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

SLOTS = 4


class AfterAck:
    def __init__(self, slots: int = SLOTS) -> None:
        self._slots = slots
        self._semaphore: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _slot(self) -> asyncio.Semaphore:
        # Created on first use, inside the running loop that serves the app.
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._slots)
        return self._semaphore

    def spawn(self, work: Coroutine[Any, Any, None], *, urgent: bool = False) -> None:
        """Run `work` after the ack. `urgent` skips the queue (opening a modal: the trigger id expires in 3 s)."""

        async def run() -> None:
            try:
                if urgent:
                    await work
                else:
                    async with self._slot():
                        await work
            except Exception:
                log.exception("work after an acknowledgement failed")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        """Work spawned and not finished yet: running, or waiting for a slot (the metrics' queue depth)."""
        return len(self._tasks)

    async def drain(self, timeout: float | None = None) -> bool:
        """Let the answers in flight, and those still queued behind the slots, finish (shutdown), including any spawned
        meanwhile. True once none is left; False if `timeout` seconds passed first (those left are not cancelled)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._tasks:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                log.warning("%d answer(s) after an acknowledgement still unsent at shutdown", len(self._tasks))
                return False
            await asyncio.wait(list(self._tasks), timeout=remaining)
        return True
