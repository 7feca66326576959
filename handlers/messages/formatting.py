"""The shared pieces of every Slack message: Slack's limits, icons, the `Message` type and small mrkdwn helpers.

Slack's limits are enforced here: at most 50 blocks a message (long checklists collapse), 3000 characters a
section (long text is cut with a note), 150 characters a header.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, PlainTextObject, SectionBlock

if TYPE_CHECKING:
    from storage import RunRecord

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
SECTION_LIMIT = 3000
HEADER_LIMIT = 150
CONTEXT_LIMIT = 2000  # per context element

STEP_ICONS = {
    "waiting": ":white_circle:",
    "running": ":hourglass_flowing_sand:",
    "done": ":white_check_mark:",
    "failed": ":x:",
    "skipped": ":fast_forward:",
    "cancelled": ":no_entry_sign:",
}
RUN_ICONS = {
    "pending": ":white_circle:",
    "running": ":arrows_counterclockwise:",
    "waiting_approval": ":raised_hand:",
    "waiting_window": ":calendar:",
    "compensating": ":leftwards_arrow_with_hook:",
    "succeeded": ":large_green_circle:",
    "failed": ":red_circle:",
    "cancelled": ":no_entry_sign:",
    "rejected": ":no_entry:",
    "expired": ":hourglass:",
}
KIND_TITLES = {
    "create": "Create blue/green deployment",
    "upgrade": "Engine upgrade",
    "switchover": "Switchover",
    "cleanup": "Clean up",
    "rollback": "Roll back",
    "rehearse": "Rehearsal",
}


@dataclass(frozen=True, slots=True)
class Message:
    """What `chat.postMessage` / `chat.update` / `respond` need: a fallback text and the blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": [block.to_dict() for block in self.blocks]}


def truncate(text: str, limit: int = SECTION_LIMIT, note: str = "truncated") -> str:
    if len(text) <= limit:
        return text
    suffix = f"\n… ({note}: {len(text) - limit} more characters)"
    cut = text[: max(0, limit - len(suffix) - 3)]
    if cut.count("```") % 2:  # do not leave a code block open
        cut += "```"
    return cut + suffix


def mention(slack_id: str) -> str:
    """`<@U..>` for users, `<!subteam^S..>` for user groups."""
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"


def clock(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%H:%M UTC")


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def escape(text: str) -> str:
    """Slack's three control characters in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str, *, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text)), block_id=block_id)


def context(*parts: str, block_id: str | None = None) -> ContextBlock:
    elements = [MarkdownTextObject(text=truncate(part, CONTEXT_LIMIT)) for part in parts if part][:10]
    return ContextBlock(elements=elements, block_id=block_id)


def header(text: str, *, block_id: str | None = None) -> HeaderBlock:
    if len(text) > HEADER_LIMIT:
        text = text[: HEADER_LIMIT - 1] + "…"
    return HeaderBlock(text=PlainTextObject(text=text, emoji=True), block_id=block_id)


def code(lines: Iterable[str]) -> str:
    body = "\n".join(lines).replace("```", "'''")
    return f"```{body}```"


def thread_link(run: RunRecord, label: str | None = None) -> str:
    """A link to the run's thread when the sink recorded one, else the channel, else just the run id."""
    slack = run.meta.get("slack") if isinstance(run.meta, dict) else None
    label = label or run.id
    if isinstance(slack, dict) and slack.get("permalink"):
        return f"<{slack['permalink']}|{label}>"
    if run.channel:
        return f"{label} in <#{run.channel}>"
    return label


def cap_blocks(blocks: list[Block], limit: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    if len(blocks) <= limit:
        return blocks
    hidden = len(blocks) - limit + 1
    return [*blocks[: limit - 1], context(f"… {hidden} more blocks not shown (Slack's {limit}-block limit).")]
