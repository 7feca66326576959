"""Reads the safety gates need: engine versions and their valid upgrade targets, parameter groups and their apply
status, parameters, replica lag from CloudWatch, pending maintenance.

A mixin of `bot.aws.gateway.AwsGateway` (the only code that calls AWS): methods here use its `_call`,
`_describe`, `_mutate` and `_pages`, and follow its contract (AwsError on failure, None for not-found).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any


class DatabaseReads:
    _call: Callable[..., Awaitable[dict[str, Any]]]
    _mutate: Callable[..., Awaitable[Any]]
    _pages: Callable[..., AsyncIterator[dict[str, Any]]]
