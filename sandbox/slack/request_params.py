"""Reading and checking Web API parameters the way Slack does, for form and JSON bodies alike."""

from __future__ import annotations

import copy
import json
from typing import Any

from sandbox.slack.models import JsonDict

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100


def json_field(params: JsonDict, key: str) -> Any:
    """Form bodies carry blocks and views as JSON strings; JSON bodies carry them as objects."""
    value = params.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def flag(params: JsonDict, key: str) -> bool:
    value = params.get(key)
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return bool(value)


def int_param(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def blocks_valid(blocks: Any, limit: int) -> bool:
    return (
        isinstance(blocks, list)
        and len(blocks) <= limit
        and all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)
    )


def message_content(params: JsonDict) -> tuple[str, list[JsonDict], str | None]:
    """(text, blocks, error code or None) for chat.postMessage / chat.update / chat.postEphemeral."""
    text = str(params.get("text") or "")
    blocks = json_field(params, "blocks") or []
    if not blocks_valid(blocks, MAX_MESSAGE_BLOCKS):
        return text, [], "invalid_blocks"
    if not text and not blocks:
        return text, [], "no_text"
    return text, blocks, None


def message_metadata(params: JsonDict) -> tuple[JsonDict | None, str | None]:
    """(metadata or None, error code or None): `metadata` is a JSON object, or a JSON string in form bodies."""
    if params.get("metadata") in (None, ""):
        return None, None
    metadata = json_field(params, "metadata")
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not metadata["event_type"]
        or not isinstance(metadata.get("event_payload"), dict)
    ):
        return None, "invalid_metadata_format"
    return copy.deepcopy(metadata), None
