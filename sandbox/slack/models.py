"""The records the Slack stand-in keeps and hands out: messages, recorded Web API calls, response-URL targets."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JsonDict", "Message", "MessageListener", "RecordedCall", "ResponseTarget", "channel_name"]

JsonDict = dict[str, Any]
MessageListener = Callable[[str, "Message"], None]


@dataclass
class Message:
    ts: str
    channel: str
    text: str
    blocks: list[JsonDict]
    user: str
    thread_ts: str | None = None
    replies: list[Message] = field(default_factory=list)
    edits: int = 0
    broadcast: bool = False
    metadata: JsonDict | None = None  # {"event_type": ..., "event_payload": {...}} as posted

    def as_payload(self) -> JsonDict:
        """The message as Slack embeds it in an interaction payload."""
        payload: JsonDict = {
            "type": "message",
            "ts": self.ts,
            "user": self.user,
            "text": self.text,
            "blocks": copy.deepcopy(self.blocks),
        }
        if self.thread_ts:
            payload["thread_ts"] = self.thread_ts
        return payload


@dataclass(frozen=True)
class RecordedCall:
    method: str
    params: JsonDict
    t: float
    status: int
    ok: bool


@dataclass(frozen=True)
class ResponseTarget:
    """What a response_url answers: the command or the clicked message it was issued for."""

    kind: str  # "command" | "block_actions"
    user: str
    channel: str
    message_ts: str | None = None
    is_ephemeral: bool = False


def channel_name(channel_id: str) -> str:
    return channel_id.lower()
