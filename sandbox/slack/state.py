"""The Slack stand-in's workspace state: channels and their messages, threads, ephemerals, modal views and home
tabs, user groups, and the trigger ids and response URLs issued with requests to the app.

Plain data and the changes the Web API makes to it: no lock and no I/O (`SlackWorkspace` adds the lock). Each change
a listener should hear about is queued in `pending_events` until the caller takes them.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import time

from sandbox.slack.models import JsonDict, Message, ResponseTarget

TRIGGER_TTL_SECONDS = 3.0
# The bot scopes a token has unless `set_scopes` says otherwise: what the app's manifest.yml asks for.
DEFAULT_SCOPES = (
    "commands",
    "chat:write",
    "usergroups:read",
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
)


class WorkspaceState:
    def __init__(self, *, team_id: str, bot_user_id: str, bot_id: str, app_id: str) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.trigger_ttl = TRIGGER_TTL_SECONDS
        self.usergroups: dict[str, list[str]] = {}
        self.memberships: dict[str, bool] = {}  # channel -> whether the bot is in it (unlisted: it is)
        self.scopes: list[str] = list(DEFAULT_SCOPES)  # granted to the bot token: X-OAuth-Scopes, missing_scope
        self._ids = itertools.count(1)
        self._last_ts_micros = 0
        self.clear()

    def clear(self) -> None:
        """Forget messages, ephemerals, views, triggers and response URLs; user groups stay."""
        self.channels: dict[str, list[Message]] = {}  # top-level messages and broadcast replies, oldest first
        self.by_ts: dict[tuple[str, str], Message] = {}  # every message and reply by (channel, ts)
        self.ephemerals: list[JsonDict] = []
        self.views: dict[str, JsonDict] = {}  # modals by view id
        self.homes: dict[str, JsonDict] = {}  # home tabs by user
        self.triggers: dict[str, float] = {}  # trigger id -> time.monotonic() when issued
        self.response_targets: dict[str, ResponseTarget] = {}
        self.pending_events: list[tuple[str, Message]] = []

    def take_events(self) -> list[tuple[str, Message]]:
        events, self.pending_events = self.pending_events, []
        return events

    # ---- ids issued with requests to the app

    def issue_trigger(self) -> str:
        trigger_id = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(8)}"
        self.triggers[trigger_id] = time.monotonic()
        return trigger_id

    def trigger_is_fresh(self, trigger_id: str) -> bool:
        issued_at = self.triggers.get(trigger_id)
        return issued_at is not None and time.monotonic() - issued_at < self.trigger_ttl

    def open_response_url(self, target: ResponseTarget) -> str:
        response_id = f"R{next(self._ids):06d}{secrets.token_hex(4)}"
        self.response_targets[response_id] = target
        return response_id

    # ---- lookups (no copies)

    def is_member(self, channel: str) -> bool:
        """Whether the bot is in `channel` (every channel, unless `set_member` said otherwise)."""
        return self.memberships.get(channel, True)

    def thread_parent(self, channel: str, message: Message) -> Message:
        """The message a thread hangs off: `message` itself unless it is a reply."""
        if message.thread_ts and message.thread_ts != message.ts:
            return self.by_ts[(channel, message.thread_ts)]
        return message

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The parent followed by its replies (like conversations.replies); [] when unknown."""
        message = self.by_ts.get((channel, ts))
        if message is None:
            return []
        parent = self.thread_parent(channel, message)
        return [parent, *parent.replies]

    def find_ephemeral(self, channel: str, ts: str) -> JsonDict | None:
        for ephemeral in self.ephemerals:
            if ephemeral["channel"] == channel and ephemeral["ts"] == ts:
                return ephemeral
        return None

    # ---- changes

    def next_ts(self) -> str:
        micros = max(time.time_ns() // 1000, self._last_ts_micros + 1)
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[JsonDict],
        *,
        parent: Message | None,
        broadcast: bool,
        metadata: JsonDict | None = None,
    ) -> Message:
        if parent is not None:
            parent = self.thread_parent(channel, parent)  # replying to a reply lands in the parent thread
        message = Message(
            ts=self.next_ts(),
            channel=channel,
            text=text,
            blocks=copy.deepcopy(blocks),
            user=self.bot_user_id,
            thread_ts=parent.ts if parent else None,
            broadcast=bool(parent and broadcast),
            metadata=metadata,
        )
        if parent is None:
            self.channels.setdefault(channel, []).append(message)
        else:
            parent.thread_ts = parent.ts
            parent.replies.append(message)
            if message.broadcast:
                self.channels.setdefault(channel, []).append(message)
        self.by_ts[(channel, message.ts)] = message
        self.pending_events.append(("posted", copy.deepcopy(message)))
        return message

    def edit(self, channel: str, ts: str, text: str | None, blocks: list[JsonDict] | None) -> Message:
        message = self.by_ts[(channel, ts)]
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = copy.deepcopy(blocks)
        message.edits += 1
        self.pending_events.append(("updated", copy.deepcopy(message)))
        return message

    def delete(self, channel: str, ts: str) -> None:
        message = self.by_ts.pop((channel, ts), None)
        if message is None:
            return
        top_level = self.channels.get(channel, [])
        if message in top_level:
            top_level.remove(message)
        if message.thread_ts and message.thread_ts != message.ts:
            parent = self.by_ts.get((channel, message.thread_ts))
            if parent and message in parent.replies:
                parent.replies.remove(message)
        self.pending_events.append(("deleted", copy.deepcopy(message)))

    def add_ephemeral(self, channel: str, user: str, text: str, blocks: list[JsonDict], *, source: str) -> JsonDict:
        ephemeral = {
            "ts": self.next_ts(),
            "channel": channel,
            "user": user,
            "text": text,
            "blocks": copy.deepcopy(blocks),
            "source": source,
        }
        self.ephemerals.append(ephemeral)
        return ephemeral

    def replace_ephemeral(self, channel: str, ts: str, text: str, blocks: list[JsonDict]) -> None:
        for ephemeral in self.ephemerals:
            if ephemeral["channel"] == channel and ephemeral["ts"] == ts:
                ephemeral.update(text=text, blocks=copy.deepcopy(blocks))

    def delete_ephemeral(self, channel: str, ts: str) -> None:
        self.ephemerals = [e for e in self.ephemerals if not (e["channel"] == channel and e["ts"] == ts)]

    def new_view(self, view: JsonDict, view_id: str | None = None) -> JsonDict:
        new_id = view_id or f"V{next(self._ids):08d}"
        return {
            **copy.deepcopy(view),
            "id": new_id,
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "root_view_id": new_id,
            "previous_view_id": None,
            "callback_id": view.get("callback_id", ""),
            "private_metadata": view.get("private_metadata", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        }
