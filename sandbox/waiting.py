"""Waiting for a condition, for tests and benchmarks: poll until it holds, or fail naming what was awaited.

    value = wait_until(lambda: find_it(), 5, what="the thing")             # blocking
    value = await async_wait_until(lambda: find_it(), 5, what="the thing")  # in a coroutine

`condition` is called at once, then every `interval` seconds until it returns something truthy, which is returned.
Once `timeout` seconds have passed without that, `WaitTimeout` names `what` (or the condition) and the timeout. An
exception raised by the condition propagates at once: a condition can fail fast (say, on a process that exited).
The async form also takes a condition that returns an awaitable (an `async def`), and awaits it.

Imports nothing beyond the standard library, so a measured bot process can use it without loading the simulator.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["DEFAULT_INTERVAL", "WaitTimeout", "async_wait_until", "wait_until"]

T = TypeVar("T")
DEFAULT_INTERVAL = 0.02  # seconds between two calls of the condition


class WaitTimeout(TimeoutError, AssertionError):
    """A condition did not hold in time: a TimeoutError, and to pytest a failed expectation (AssertionError)."""

    def __init__(self, what: str, timeout: float) -> None:
        super().__init__(f"timed out after {timeout:g} s waiting for {what}")
        self.what = what
        self.timeout = timeout


def _describe(condition: Callable[..., object], what: str) -> str:
    return what or repr(condition)


def wait_until(condition: Callable[[], T], timeout: float, *, interval: float = DEFAULT_INTERVAL, what: str = "") -> T:
    """Call `condition` every `interval` s until it returns something truthy and return that; `WaitTimeout` after
    `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(_describe(condition, what), timeout)
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], T | Awaitable[T]],
    timeout: float,
    *,
    interval: float = DEFAULT_INTERVAL,
    what: str = "",
) -> T:
    """`wait_until` for a coroutine: the event loop runs between two calls; an awaitable result is awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise WaitTimeout(_describe(condition, what), timeout)
        await asyncio.sleep(interval)
