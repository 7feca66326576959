"""What the channel page shows one viewer: the channel's messages, the viewer's ephemeral messages and the page's own
notes in time order, and each thread, as HTML rendered by sandbox/slack/html_render.py. No I/O.

A note is something the page did rather than the bot: a command a person typed (shown to everyone, which Slack does
not do, so a watcher can follow the demo), the app's immediate answer to it or a failed request (to that person
only, as Slack shows them).
"""

from __future__ import annotations

import datetime as dt
import html
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sandbox.slack.html_render import blocks_html, mrkdwn_html
from sandbox.slack.models import JsonDict, Message

__all__ = ["ChannelView", "Note", "note_ts", "render_view"]


def note_ts() -> str:
    """A Slack-style ts for now, so notes sort among the stand-in's messages."""
    return f"{time.time():.6f}"


@dataclass(frozen=True)
class Note:
    ts: str
    user: str
    kind: str  # "command" (everyone sees it) | "reply" | "error" (only `user` sees it)
    text: str
    blocks: list[JsonDict] = field(default_factory=list)

    def visible_to(self, viewer: str) -> bool:
        return self.kind == "command" or self.user == viewer


@dataclass(frozen=True)
class ChannelView:
    """The rendered channel for one viewer: `channel` and each thread (`threads`, by parent ts) as HTML; the thread
    with the latest reply; the viewer's ephemeral messages (for the page's notifications)."""

    channel: str
    threads: dict[str, str]
    latest_thread: str | None
    ephemerals: list[dict[str, str]]

    def as_json(self) -> JsonDict:
        return {
            "channel": self.channel,
            "threads": self.threads,
            "latest_thread": self.latest_thread,
            "ephemerals": self.ephemerals,
        }


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _clock(ts: str) -> str:
    try:
        moment = dt.datetime.fromtimestamp(float(ts), dt.UTC)
    except (ValueError, OverflowError):
        return ""
    return moment.strftime("%H:%M:%S UTC")


def _time(ts: str) -> str:
    return f'<time data-ts="{_esc(ts)}">{_clock(ts)}</time>'


class _Page:
    def __init__(self, users: Mapping[str, str], bot_user: str, bot_name: str) -> None:
        self.users = users
        self.bot_user = bot_user
        self.bot_name = bot_name

    def name(self, user: str) -> str:
        return self.bot_name if user == self.bot_user else self.users.get(user, user)

    def avatar(self, user: str) -> str:
        if user == self.bot_user:
            return '<div class="avatar bot" aria-hidden="true">BG</div>'
        initial = self.name(user)[:1].upper() or "?"
        return f'<div class="avatar person" data-user="{_esc(user)}" aria-hidden="true">{_esc(initial)}</div>'

    def body(self, text: str, blocks: list[JsonDict], ts: str, *, interactive: bool = True) -> str:
        if blocks:
            rendered = blocks_html(blocks, message_ts=ts, users=self.users, interactive=interactive)
        else:  # a text-only message: its text as one section
            rendered = f'<div class="block section"><div class="text">{mrkdwn_html(text, self.users)}</div></div>'
        return f'<div class="blocks">{rendered}</div>'

    def message(self, message: Message, *, where: str, parents: Mapping[str, Message]) -> str:
        """`where`: "channel" (thread summary link, broadcast label) or "thread"."""
        badge = '<span class="app-badge">APP</span>' if message.user == self.bot_user else ""
        edited = '<span class="edited">(edited)</span>' if message.edits else ""
        meta = (
            f'<div class="meta"><span class="author">{_esc(self.name(message.user))}</span>{badge}'
            f"{_time(message.ts)}{edited}</div>"
        )
        above = ""
        is_reply = bool(message.thread_ts and message.thread_ts != message.ts)
        if message.broadcast and is_reply:
            parent = parents.get(message.thread_ts or "")
            title = _esc(_headline(parent)) if parent else "a thread"
            if where == "channel":
                above = (
                    f'<div class="broadcast-label">replied to a thread: '
                    f'<a href="#" data-open-thread="{_esc(message.thread_ts or "")}">{title}</a></div>'
                )
            else:
                above = '<div class="broadcast-label">also sent to the channel</div>'
        below = ""
        if where == "channel" and message.replies and not is_reply:
            count = len(message.replies)
            replies = f"{count} repl{'y' if count == 1 else 'ies'}"
            below = (
                f'<div class="thread-summary"><a href="#" data-open-thread="{_esc(message.ts)}">{replies}</a>'
                f'<span class="last-reply">Last reply {_time(message.replies[-1].ts)}</span></div>'
            )
        classes = "message" + (" broadcast" if message.broadcast and is_reply else "")
        return (
            f'<div class="{classes}" id="{where}-{_esc(message.ts)}" data-ts="{_esc(message.ts)}">'
            f'{self.avatar(message.user)}<div class="content">{meta}{above}'
            f"{self.body(message.text, message.blocks, message.ts)}{below}</div></div>"
        )

    def ephemeral(self, ephemeral: JsonDict) -> str:
        ts = str(ephemeral.get("ts", ""))
        meta = (
            f'<div class="meta"><span class="author">{_esc(self.bot_name)}</span>'
            f'<span class="app-badge">APP</span>{_time(ts)}</div>'
        )
        body = self.body(str(ephemeral.get("text", "")), list(ephemeral.get("blocks") or []), ts)
        return (
            f'<div class="message ephemeral" id="ephemeral-{_esc(ts)}" data-ts="{_esc(ts)}">'
            f'{self.avatar(self.bot_user)}<div class="content"><div class="only-you">Only visible to you</div>'
            f"{meta}{body}</div></div>"
        )

    def note(self, note: Note) -> str:
        if note.kind == "command":
            return (
                f'<div class="message note command" data-ts="{_esc(note.ts)}">{self.avatar(note.user)}'
                f'<div class="content"><div class="meta"><span class="author">{_esc(self.name(note.user))}</span>'
                f'{_time(note.ts)}</div><div class="typed">used <code>{_esc(note.text)}</code></div></div></div>'
            )
        # The app's answer comes from the app; a failed request is Slack's own word (Slackbot's).
        if note.kind == "reply":
            author = f'<span class="author">{_esc(self.bot_name)}</span><span class="app-badge">APP</span>'
        else:
            author = '<span class="author">Slackbot</span>'
        body = self.body(note.text, note.blocks, note.ts, interactive=False)
        return (
            f'<div class="message ephemeral note {note.kind}" data-ts="{_esc(note.ts)}">'
            f'{self.avatar(self.bot_user)}<div class="content"><div class="only-you">Only visible to you</div>'
            f'<div class="meta">{author}{_time(note.ts)}</div>{body}</div></div>'
        )


def _headline(message: Message) -> str:
    """A thread parent's first line of text, for "replied to a thread: ..." (its header when it has one)."""
    for block in message.blocks:
        if block.get("type") == "header":
            return str((block.get("text") or {}).get("text", ""))
    return (message.text or "").split("\n", 1)[0][:80]


def render_view(
    messages: Sequence[Message],
    ephemerals: Sequence[JsonDict],
    notes: Sequence[Note],
    *,
    viewer: str,
    users: Mapping[str, str],
    bot_user: str,
    bot_name: str,
) -> ChannelView:
    """The channel as `viewer` sees it: top-level messages (and replies also sent to the channel), `viewer`'s
    ephemerals and the notes visible to them, by ts; every thread in full."""
    page = _Page(users, bot_user, bot_name)
    parents = {message.ts: message for message in messages if message.replies}
    items: list[tuple[str, str]] = [
        (message.ts, page.message(message, where="channel", parents=parents)) for message in messages
    ]
    mine = [e for e in ephemerals if e.get("user") == viewer]
    items += [(str(e.get("ts", "")), page.ephemeral(e)) for e in mine]
    items += [(note.ts, page.note(note)) for note in notes if note.visible_to(viewer)]
    items.sort(key=lambda item: float(item[0] or 0))
    threads: dict[str, str] = {}
    for ts, parent in parents.items():
        count = len(parent.replies)
        head = page.message(parent, where="thread", parents=parents)
        divider = f'<div class="replies-divider">{count} repl{"y" if count == 1 else "ies"}</div>'
        replies = "".join(page.message(reply, where="thread", parents=parents) for reply in parent.replies)
        threads[ts] = head + divider + replies
    latest = max(parents.values(), key=lambda parent: float(parent.replies[-1].ts), default=None)
    return ChannelView(
        channel="".join(rendered for _, rendered in items),
        threads=threads,
        latest_thread=latest.ts if latest else None,
        ephemerals=[{"ts": str(e.get("ts", "")), "text": str(e.get("text", ""))} for e in mine],
    )
