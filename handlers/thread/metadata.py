"""How the sink recognises its own messages in Slack: every message it posts carries metadata naming its run and a
key unique within the run, and the run's thread is recorded in the run's meta (`slack.channel`, `slack.ts`).
`CannotTell` is what reading the tags back raises while Slack cannot answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.workflow.events import RunSnapshot

# The metadata event type on every message the sink posts; the payload holds the run id and the message's key.
MESSAGE_EVENT_TYPE = "bluegreen_message"

PARENT_KEY = "parent"
SUMMARY_KEY = "summary"


@dataclass(slots=True)
class Thread:
    channel: str
    ts: str


def message_metadata(run_id: str, key: str) -> dict[str, Any]:
    """The Slack message metadata the sink tags a run's message with."""
    return {"event_type": MESSAGE_EVENT_TYPE, "event_payload": {"run_id": run_id, "key": key}}


def message_tag(message: dict[str, Any]) -> tuple[str, str] | None:
    """(run id, key) of a message the sink posted, from a history or replies item read with its metadata."""
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != MESSAGE_EVENT_TYPE:
        return None
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict) or not payload.get("run_id") or not payload.get("key"):
        return None
    return str(payload["run_id"]), str(payload["key"])


def report_key(snapshot: RunSnapshot, step_idx: int) -> str:
    """A step reports once per attempt (a step checked again after the plan changed reports again)."""
    attempts = next((step.attempts for step in snapshot.steps if step.idx == step_idx), 0)
    return f"report:{step_idx}:{attempts}"


def progress(snapshot: RunSnapshot) -> int:
    """How far the run has got, the same in every process: step attempts only ever grow."""
    return sum(step.attempts for step in snapshot.steps)


def recorded_thread(meta: dict[str, Any] | None) -> Thread | None:
    slack = (meta or {}).get("slack")
    if isinstance(slack, dict) and slack.get("channel") and slack.get("ts"):
        return Thread(channel=slack["channel"], ts=slack["ts"])
    return None


class CannotTell(Exception):
    """Slack could not say whether a message is there (reading back failed for now)."""
