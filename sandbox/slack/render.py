"""Plain-text rendering of stand-in channels and Block Kit, for test failures and the demo's terminal."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

from sandbox.slack.models import Message

JsonDict = dict[str, Any]

RULE = "-" * 60
REDACTED = "[redacted]"

_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def mrkdwn_to_plain(text: str) -> str:
    """Slack mrkdwn made readable: links, mentions and entities resolved; *bold*, `code` left as typed."""

    def replace(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            return label or target
        if target.startswith("#"):
            return f"#{label}" if label else target
        if target.startswith("!subteam^"):
            return label or "@" + target.removeprefix("!subteam^")
        if target.startswith("!date^"):
            return label or target
        if target.startswith("!"):
            return "@" + target[1:]
        return f"{label} ({target})" if label and label != target else target

    return html.unescape(_LINK.sub(replace, text))


def text_of(obj: Any) -> str:
    """The readable text of a text object (plain_text or mrkdwn) or a bare string."""
    if isinstance(obj, str):
        return mrkdwn_to_plain(obj)
    if not isinstance(obj, dict):
        return ""
    if obj.get("type") == "mrkdwn":
        return mrkdwn_to_plain(str(obj.get("text", "")))
    return str(obj.get("text", ""))


def render_element(element: JsonDict) -> str:
    kind = element.get("type")
    if kind == "button":
        return f"[ {text_of(element.get('text'))} ]"
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if kind in ("mrkdwn", "plain_text"):
        return text_of(element)
    if kind == "overflow":
        return "[ ... ]"
    label = text_of(element.get("placeholder")) or str(kind)
    return f"[ {label} v ]"


def _rich_text(element: Any) -> str:
    if isinstance(element, dict):
        if "text" in element and isinstance(element["text"], str):
            return element["text"]
        if element.get("type") == "user":
            return f"@{element.get('user_id', '')}"
        if element.get("type") == "link":
            return str(element.get("url", ""))
        return "".join(_rich_text(e) for e in element.get("elements", []))
    return ""


def render_block(block: JsonDict) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        return [f"=== {text_of(block.get('text'))} ==="]
    if kind == "section":
        lines = text_of(block.get("text")).splitlines() if block.get("text") else []
        lines += [text_of(f).replace("\n", " ") for f in block.get("fields", [])]
        accessory = block.get("accessory")
        if accessory:
            if lines:
                lines[-1] = f"{lines[-1]}  {render_element(accessory)}"
            else:
                lines = [render_element(accessory)]
        return lines
    if kind == "context":
        return [" | ".join(render_element(e) for e in block.get("elements", []))]
    if kind == "actions":
        return [" ".join(render_element(e) for e in block.get("elements", []))]
    if kind == "divider":
        return ["-" * 20]
    if kind == "image":
        return [f"[image: {block.get('alt_text', '')}]"]
    if kind == "input":
        return [f"{text_of(block.get('label'))}: {render_element(block.get('element') or {})}"]
    if kind == "rich_text":
        return _rich_text(block).splitlines()
    return [f"[{kind} block]"]


def render_blocks(blocks: list[JsonDict]) -> list[str]:
    return [line for block in blocks for line in render_block(block)]


def render_message(message: Message, indent: str = "") -> list[str]:
    edited = f" (edited {message.edits}x)" if message.edits else ""
    also_in_channel = " (also sent to the channel)" if message.broadcast else ""
    lines = [f"{indent}[{message.ts}] @{message.user}{edited}{also_in_channel}"]
    body = render_blocks(message.blocks) if message.blocks else message.text.splitlines()
    lines += [f"{indent}  {line}" for line in body]
    return lines


def render_channel(channel: str, messages: list[Message], *, redact: Iterable[str] = ()) -> str:
    """The channel as a terminal transcript: top-level messages in order, each thread indented below it."""
    lines = [f"#{channel}", RULE]
    for message in messages:
        if message.broadcast:
            continue  # shown inside its thread
        lines += render_message(message)
        if message.replies:
            lines.append(f"  thread: {len(message.replies)} repl{'y' if len(message.replies) == 1 else 'ies'}")
            for reply in message.replies:
                lines += render_message(reply, indent="    | ")
        lines.append("")
    return redact_secrets("\n".join(lines).rstrip() + "\n", redact)


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text
