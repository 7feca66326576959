"""Cursor pagination and time windows for conversations.history and conversations.replies.

A cursor names the ts its page continues after (base64 of "after:<ts>"); `oldest`, `latest` and `inclusive` bound
which messages count at all. Timestamps compare as (seconds, microseconds) integers.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from sandbox.slack.models import JsonDict, Message
from sandbox.slack.request_params import flag, int_param


@dataclass(frozen=True)
class TimeWindow:
    """`oldest`, `latest` and `inclusive` of conversations.history and .replies, plus the decoded `cursor`."""

    oldest: tuple[int, int] | None
    latest: tuple[int, int] | None
    inclusive: bool
    cursor: str | None

    @classmethod
    def parse(cls, params: JsonDict) -> tuple[TimeWindow, str | None]:
        """(the window, error code or None)."""
        bounds: dict[str, tuple[int, int] | None] = {}
        for name in ("oldest", "latest"):
            value = params.get(name)
            try:
                bounds[name] = ts_key(str(value)) if value not in (None, "") else None
            except ValueError:
                return cls(None, None, False, None), f"invalid_ts_{name}"
        try:
            cursor = decode_cursor(params.get("cursor"))
        except InvalidCursor:
            return cls(None, None, False, None), "invalid_cursor"
        return cls(bounds["oldest"], bounds["latest"], flag(params, "inclusive"), cursor), None

    def contains(self, ts: str) -> bool:
        key = ts_key(ts)
        if self.oldest is not None and (key < self.oldest or (key == self.oldest and not self.inclusive)):
            return False
        return self.latest is None or key < self.latest or (key == self.latest and self.inclusive)


@dataclass(frozen=True)
class Page:
    messages: list[Message]
    next_cursor: str  # "" on the last page

    @property
    def has_more(self) -> bool:
        return bool(self.next_cursor)


def first_page(found: list[Message], params: JsonDict, limits: tuple[int, int]) -> Page:
    """The first `limit` of `found` (in answer order), and a cursor after the last of them if more remain.

    `limits` is the method's (default, largest) `limit`.
    """
    default, largest = limits
    limit = min(max(int_param(params.get("limit"), default), 1), largest)
    page, rest = found[:limit], found[limit:]
    return Page(page, encode_cursor(page[-1].ts) if rest else "")


class InvalidCursor(ValueError):
    pass


def ts_key(ts: str) -> tuple[int, int]:
    """A message ts ("1712345678.000123") or a time ("1712345678", "1712345678.5") as comparable integers."""
    seconds, _, fraction = ts.partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(f"not a timestamp: {ts!r}")
    return int(seconds), int(fraction.ljust(6, "0")[:6] or 0)


def encode_cursor(ts: str) -> str:
    return base64.urlsafe_b64encode(f"after:{ts}".encode()).decode()


def decode_cursor(cursor: Any) -> str | None:
    """The ts a cursor continues after; None for the first page."""
    if cursor in (None, ""):
        return None
    try:
        decoded = base64.urlsafe_b64decode(str(cursor).encode()).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise InvalidCursor(str(cursor)) from error
    prefix, _, ts = decoded.partition(":")
    if prefix != "after":
        raise InvalidCursor(str(cursor))
    try:
        ts_key(ts)
    except ValueError as error:
        raise InvalidCursor(str(cursor)) from error
    return ts
