"""The Slack stand-in's workspace: channels, threads, ephemerals, views, and the Web API rules.

Everything here is plain data behind one lock, so the HTTP server (its own event loop, maybe its own thread)
and the test reading the state never see a half-applied change. No I/O happens here.
"""

from __future__ import annotations

import base64
import binascii
import copy
import itertools
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
TRIGGER_TTL_SECONDS = 3.0
HISTORY_LIMITS = (100, 999)  # conversations.history: default and largest `limit`
REPLIES_LIMITS = (1000, 1000)  # conversations.replies: the same

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


@dataclass
class Fault:
    status: int
    retry_after: int
    remaining: int
    delay: float


@dataclass(frozen=True)
class ResponseTarget:
    """What a response_url answers: the command or the clicked message it was issued for."""

    kind: str  # "command" | "block_actions"
    user: str
    channel: str
    message_ts: str | None = None
    is_ephemeral: bool = False


class SlackWorkspace:
    """One workspace's state plus the rules of the Web API methods the stand-in serves."""

    def __init__(self, *, team_id: str, bot_user_id: str, bot_id: str, app_id: str) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.trigger_ttl = TRIGGER_TTL_SECONDS
        self.on_message: MessageListener | None = None
        self._lock = threading.RLock()
        self._usergroups: dict[str, list[str]] = {}
        self._ids = itertools.count(1)
        self._last_ts_micros = 0
        self._clear()
        self._methods: dict[str, Callable[[JsonDict], JsonDict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
        }

    def _clear(self) -> None:
        self._channels: dict[str, list[Message]] = {}
        self._by_ts: dict[tuple[str, str], Message] = {}
        self._ephemerals: list[JsonDict] = []
        self._views: dict[str, JsonDict] = {}
        self._homes: dict[str, JsonDict] = {}
        self._calls: list[RecordedCall] = []
        self._triggers: dict[str, float] = {}
        self._response_targets: dict[str, ResponseTarget] = {}
        self._faults: dict[str, deque[Fault]] = {}
        self._pending_events: list[tuple[str, Message]] = []

    # ---- configuration and bookkeeping used by the HTTP layer

    def reset(self) -> None:
        """Forget messages, calls, views, triggers, response URLs and faults; usergroups stay."""
        with self._lock:
            self._clear()

    def set_usergroup(self, group_id: str, members: list[str]) -> None:
        with self._lock:
            self._usergroups[group_id] = list(members)

    def add_fault(self, method: str, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(method, deque()).append(fault)

    def take_fault(self, method: str) -> Fault | None:
        """Consume one use of the oldest fault queued for `method`, if any."""
        with self._lock:
            queue = self._faults.get(method)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            return copy.copy(fault)

    def record(self, method: str, params: JsonDict, t: float, status: int, ok: bool) -> None:
        with self._lock:
            self._calls.append(RecordedCall(method, copy.deepcopy(params), t, status, ok))
        logger.debug("slack stand-in: %s -> HTTP %s ok=%s", method, status, ok)

    def issue_trigger(self) -> str:
        with self._lock:
            trigger_id = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(8)}"
            self._triggers[trigger_id] = time.monotonic()
            return trigger_id

    def open_response_url(self, target: ResponseTarget) -> str:
        with self._lock:
            response_id = f"R{next(self._ids):06d}{secrets.token_hex(4)}"
            self._response_targets[response_id] = target
            return response_id

    # ---- reads (all return copies)

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str) -> list[Message]:
        with self._lock:
            return copy.deepcopy(self._channels.get(channel, []))

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The parent followed by its replies (like conversations.replies); [] when unknown."""
        with self._lock:
            parent = self._by_ts.get((channel, ts))
            if parent is None:
                return []
            if parent.thread_ts and parent.thread_ts != parent.ts:
                parent = self._by_ts[(channel, parent.thread_ts)]
            return copy.deepcopy([parent, *parent.replies])

    def find_message(self, channel: str, ts: str) -> Message | None:
        with self._lock:
            message = self._by_ts.get((channel, ts))
            return copy.deepcopy(message) if message else None

    def find_ephemeral(self, channel: str, ts: str) -> JsonDict | None:
        with self._lock:
            for ephemeral in self._ephemerals:
                if ephemeral["channel"] == channel and ephemeral["ts"] == ts:
                    return copy.deepcopy(ephemeral)
            return None

    def ephemerals(self, user: str | None = None) -> list[JsonDict]:
        with self._lock:
            return copy.deepcopy([e for e in self._ephemerals if user is None or e["user"] == user])

    def views(self) -> list[JsonDict]:
        with self._lock:
            return copy.deepcopy(list(self._views.values()))

    def home(self, user: str) -> JsonDict | None:
        with self._lock:
            view = self._homes.get(user)
            return copy.deepcopy(view) if view else None

    # ---- Web API

    def call(self, method: str, params: JsonDict) -> JsonDict:
        """Apply one authenticated Web API call and return Slack's JSON answer."""
        handler = self._methods.get(method)
        if handler is None:
            return _error("unknown_method")
        with self._lock:
            answer = handler(params)
            events, self._pending_events = self._pending_events, []
        self._notify(events)
        return answer

    def apply_response(self, response_id: str, body: JsonDict) -> tuple[bool, str]:
        """A post to a response_url. Returns (ok, Slack's plain-text answer)."""
        with self._lock:
            target = self._response_targets.get(response_id)
            if target is None:
                return False, "no_such_url"
            blocks = body.get("blocks") or []
            if not _blocks_valid(blocks, MAX_MESSAGE_BLOCKS):
                return False, "invalid_blocks"
            if not body.get("delete_original") and not body.get("text") and not blocks:
                return False, "no_text"
            self._apply_response(target, body, blocks)
            events, self._pending_events = self._pending_events, []
        self._notify(events)
        return True, "ok"

    def _apply_response(self, target: ResponseTarget, body: JsonDict, blocks: list[JsonDict]) -> None:
        text = str(body.get("text") or "")
        original = target.message_ts
        if original and body.get("delete_original"):
            self._delete_original(target)
        elif original and body.get("replace_original"):
            if target.is_ephemeral:
                for ephemeral in self._ephemerals:
                    if ephemeral["channel"] == target.channel and ephemeral["ts"] == original:
                        ephemeral.update(text=text, blocks=copy.deepcopy(blocks))
            else:
                self._edit(target.channel, original, text, blocks)
        elif body.get("response_type") == "in_channel":
            thread_ts = body.get("thread_ts")
            parent = self._by_ts.get((target.channel, thread_ts)) if thread_ts else None
            self._post(target.channel, text, blocks, parent=parent, broadcast=False)
        else:
            self._add_ephemeral(target.channel, target.user, text, blocks, source="response_url")

    def _delete_original(self, target: ResponseTarget) -> None:
        if target.is_ephemeral:
            self._ephemerals = [
                e for e in self._ephemerals if not (e["channel"] == target.channel and e["ts"] == target.message_ts)
            ]
            return
        message = self._by_ts.pop((target.channel, target.message_ts or ""), None)
        if message is None:
            return
        channel = self._channels.get(target.channel, [])
        if message in channel:
            channel.remove(message)
        if message.thread_ts and message.thread_ts != message.ts:
            parent = self._by_ts.get((target.channel, message.thread_ts))
            if parent and message in parent.replies:
                parent.replies.remove(message)
        self._pending_events.append(("deleted", copy.deepcopy(message)))

    # ---- method handlers (called with the lock held)

    def _auth_test(self, params: JsonDict) -> JsonDict:
        return {
            "ok": True,
            "url": "https://standin.slack.com/",
            "team": "Stand-in Workspace",
            "user": "bluegreen",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: JsonDict) -> JsonDict:
        channel = str(params.get("channel") or "")
        if not channel:
            return _error("channel_not_found")
        text, blocks, problem = _message_content(params)
        metadata, metadata_problem = _message_metadata(params)
        if problem or metadata_problem:
            return _error(problem or metadata_problem or "")
        parent = None
        if params.get("thread_ts"):
            parent = self._by_ts.get((channel, str(params["thread_ts"])))
            if parent is None:
                return _error("thread_not_found")
        broadcast = _flag(params, "reply_broadcast")
        message = self._post(channel, text, blocks, parent=parent, broadcast=broadcast, metadata=metadata)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": _message_answer(message)}

    def _chat_update(self, params: JsonDict) -> JsonDict:
        channel = str(params.get("channel") or "")
        ts = str(params.get("ts") or "")
        if (channel, ts) not in self._by_ts:
            return _error("message_not_found")
        text, blocks, problem = _message_content(params)
        metadata, metadata_problem = _message_metadata(params)
        if problem or metadata_problem:
            return _error(problem or metadata_problem or "")
        new_text = text if params.get("text") is not None else None
        new_blocks = blocks if params.get("blocks") is not None else None
        if metadata is not None:  # chat.update keeps the metadata unless it is given
            self._by_ts[(channel, ts)].metadata = metadata
        message = self._edit(channel, ts, new_text, new_blocks)
        return {"ok": True, "channel": channel, "ts": ts, "text": message.text, "message": _message_answer(message)}

    def _chat_post_ephemeral(self, params: JsonDict) -> JsonDict:
        channel = str(params.get("channel") or "")
        user = str(params.get("user") or "")
        if not channel:
            return _error("channel_not_found")
        if not user:
            return _error("user_not_found")
        text, blocks, problem = _message_content(params)
        if problem:
            return _error(problem)
        ephemeral = self._add_ephemeral(channel, user, text, blocks, source="chat.postEphemeral")
        return {"ok": True, "message_ts": ephemeral["ts"]}

    def _views_open(self, params: JsonDict) -> JsonDict:
        issued_at = self._triggers.get(str(params.get("trigger_id") or ""))
        if issued_at is None or time.monotonic() - issued_at >= self.trigger_ttl:
            return _error("expired_trigger_id")
        view = _json_field(params, "view")
        if not isinstance(view, dict) or view.get("type") != "modal":
            return _error("invalid_arguments")
        if not _blocks_valid(view.get("blocks") or [], MAX_VIEW_BLOCKS):
            return _error("invalid_blocks")
        external_id = view.get("external_id")
        if external_id and any(v.get("external_id") == external_id for v in self._views.values()):
            return _error("duplicate_external_id")
        stored = self._new_view(view)
        self._views[stored["id"]] = stored
        return {"ok": True, "view": copy.deepcopy(stored)}

    def _views_update(self, params: JsonDict) -> JsonDict:
        view_id = params.get("view_id")
        external_id = params.get("external_id")
        current = next(
            (
                v
                for v in self._views.values()
                if (view_id and v["id"] == view_id) or (external_id and v.get("external_id") == external_id)
            ),
            None,
        )
        if current is None:
            return _error("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            return _error("hash_conflict")
        view = _json_field(params, "view")
        if not isinstance(view, dict) or not _blocks_valid(view.get("blocks") or [], MAX_VIEW_BLOCKS):
            return _error("invalid_arguments")
        updated = self._new_view(view, view_id=current["id"])
        self._views[current["id"]] = updated
        return {"ok": True, "view": copy.deepcopy(updated)}

    def _views_publish(self, params: JsonDict) -> JsonDict:
        user = str(params.get("user_id") or "")
        if not user:
            return _error("invalid_arguments")
        view = _json_field(params, "view")
        if not isinstance(view, dict) or view.get("type") != "home":
            return _error("invalid_arguments")
        if not _blocks_valid(view.get("blocks") or [], MAX_VIEW_BLOCKS):
            return _error("invalid_blocks")
        current = self._homes.get(user)
        if current and params.get("hash") and params["hash"] != current["hash"]:
            return _error("hash_conflict")
        published = self._new_view(view, view_id=current["id"] if current else None)
        self._homes[user] = published
        return {"ok": True, "view": copy.deepcopy(published)}

    def _usergroups_users_list(self, params: JsonDict) -> JsonDict:
        group = str(params.get("usergroup") or "")
        if group not in self._usergroups:
            return _error("no_such_subteam")
        return {"ok": True, "users": list(self._usergroups[group])}

    def _users_info(self, params: JsonDict) -> JsonDict:
        user = str(params.get("user") or "")
        if not user:
            return _error("user_not_found")
        name = user.lower()
        return {
            "ok": True,
            "user": {
                "id": user,
                "team_id": self.team_id,
                "name": name,
                "real_name": name,
                "deleted": False,
                "is_bot": user == self.bot_user_id,
                "tz": "UTC",
                "profile": {"real_name": name, "display_name": name},
            },
        }

    def _conversations_info(self, params: JsonDict) -> JsonDict:
        channel = str(params.get("channel") or "")
        if not channel:
            return _error("channel_not_found")
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": channel_name(channel),
                "is_channel": True,
                "is_private": False,
                "is_archived": False,
                "is_member": True,
            },
        }

    def _conversations_history(self, params: JsonDict) -> JsonDict:
        """The channel's top-level messages (and replies broadcast to it), newest first."""
        channel = str(params.get("channel") or "")
        if not channel:
            return _error("channel_not_found")
        window, problem = _TimeWindow.parse(params)
        if problem:
            return _error(problem)
        newest_first = sorted(self._channels.get(channel, []), key=lambda m: _ts_key(m.ts), reverse=True)
        found = [m for m in newest_first if window.contains(m.ts)]
        if window.cursor is not None:
            found = [m for m in found if _ts_key(m.ts) < _ts_key(window.cursor)]
        return self._page(found, params, HISTORY_LIMITS)

    def _conversations_replies(self, params: JsonDict) -> JsonDict:
        """A thread: its parent first (on the first page only), then the replies, oldest first."""
        channel = str(params.get("channel") or "")
        if not channel:
            return _error("channel_not_found")
        message = self._by_ts.get((channel, str(params.get("ts") or "")))
        if message is None:
            return _error("thread_not_found")
        window, problem = _TimeWindow.parse(params)
        if problem:
            return _error(problem)
        parent = self._by_ts[(channel, message.thread_ts)] if message.thread_ts else message
        replies = [reply for reply in parent.replies if window.contains(reply.ts)]
        if window.cursor is None:
            return self._page([parent, *replies], params, REPLIES_LIMITS)
        return self._page([r for r in replies if _ts_key(r.ts) > _ts_key(window.cursor)], params, REPLIES_LIMITS)

    def _page(self, found: list[Message], params: JsonDict, limits: tuple[int, int]) -> JsonDict:
        """The first `limit` of `found` (in answer order), and a cursor after the last of them if more remain."""
        default, largest = limits
        limit = min(max(_int(params.get("limit"), default), 1), largest)
        page, rest = found[:limit], found[limit:]
        include_metadata = _flag(params, "include_all_metadata")
        return {
            "ok": True,
            "messages": [self._history_item(m, include_metadata) for m in page],
            "has_more": bool(rest),
            "response_metadata": {"next_cursor": _encode_cursor(page[-1].ts) if rest else ""},
        }

    def _history_item(self, message: Message, include_metadata: bool) -> JsonDict:
        item = _message_answer(message)
        item.update(bot_id=self.bot_id, app_id=self.app_id)
        if message.broadcast:
            item["subtype"] = "thread_broadcast"
        if message.replies:
            item.update(reply_count=len(message.replies), latest_reply=message.replies[-1].ts)
        if include_metadata and message.metadata is not None:
            item["metadata"] = copy.deepcopy(message.metadata)
        return item

    # ---- state changes (called with the lock held)

    def _next_ts(self) -> str:
        micros = max(time.time_ns() // 1000, self._last_ts_micros + 1)
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _post(
        self,
        channel: str,
        text: str,
        blocks: list[JsonDict],
        *,
        parent: Message | None,
        broadcast: bool,
        metadata: JsonDict | None = None,
    ) -> Message:
        if parent is not None and parent.thread_ts and parent.thread_ts != parent.ts:
            parent = self._by_ts[(channel, parent.thread_ts)]  # replying to a reply lands in the parent thread
        message = Message(
            ts=self._next_ts(),
            channel=channel,
            text=text,
            blocks=copy.deepcopy(blocks),
            user=self.bot_user_id,
            thread_ts=parent.ts if parent else None,
            broadcast=bool(parent and broadcast),
            metadata=metadata,
        )
        if parent is None:
            self._channels.setdefault(channel, []).append(message)
        else:
            parent.thread_ts = parent.ts
            parent.replies.append(message)
            if message.broadcast:
                self._channels.setdefault(channel, []).append(message)
        self._by_ts[(channel, message.ts)] = message
        self._pending_events.append(("posted", copy.deepcopy(message)))
        return message

    def _edit(self, channel: str, ts: str, text: str | None, blocks: list[JsonDict] | None) -> Message:
        message = self._by_ts[(channel, ts)]
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = copy.deepcopy(blocks)
        message.edits += 1
        self._pending_events.append(("updated", copy.deepcopy(message)))
        return message

    def _add_ephemeral(self, channel: str, user: str, text: str, blocks: list[JsonDict], *, source: str) -> JsonDict:
        ephemeral = {
            "ts": self._next_ts(),
            "channel": channel,
            "user": user,
            "text": text,
            "blocks": copy.deepcopy(blocks),
            "source": source,
        }
        self._ephemerals.append(ephemeral)
        return ephemeral

    def _new_view(self, view: JsonDict, view_id: str | None = None) -> JsonDict:
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

    # ---- listener

    def _notify(self, events: list[tuple[str, Message]]) -> None:
        listener = self.on_message
        if listener is None:
            return
        for name, message in events:
            try:
                listener(name, message)
            except Exception:
                logger.exception("slack stand-in: on_message listener failed")


def channel_name(channel_id: str) -> str:
    return channel_id.lower()


def _error(code: str) -> JsonDict:
    return {"ok": False, "error": code}


def _json_field(params: JsonDict, key: str) -> Any:
    """Form bodies carry blocks and views as JSON strings; JSON bodies carry them as objects."""
    value = params.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _flag(params: JsonDict, key: str) -> bool:
    value = params.get(key)
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return bool(value)


def _blocks_valid(blocks: Any, limit: int) -> bool:
    return (
        isinstance(blocks, list)
        and len(blocks) <= limit
        and all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)
    )


def _message_content(params: JsonDict) -> tuple[str, list[JsonDict], str | None]:
    """(text, blocks, error code or None) for chat.postMessage / chat.update / chat.postEphemeral."""
    text = str(params.get("text") or "")
    blocks = _json_field(params, "blocks") or []
    if not _blocks_valid(blocks, MAX_MESSAGE_BLOCKS):
        return text, [], "invalid_blocks"
    if not text and not blocks:
        return text, [], "no_text"
    return text, blocks, None


def _message_metadata(params: JsonDict) -> tuple[JsonDict | None, str | None]:
    """(metadata or None, error code or None): `metadata` is a JSON object, or a JSON string in form bodies."""
    if params.get("metadata") in (None, ""):
        return None, None
    metadata = _json_field(params, "metadata")
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not metadata["event_type"]
        or not isinstance(metadata.get("event_payload"), dict)
    ):
        return None, "invalid_metadata_format"
    return copy.deepcopy(metadata), None


@dataclass(frozen=True)
class _TimeWindow:
    """`oldest`, `latest` and `inclusive` of conversations.history and .replies, plus the decoded `cursor`."""

    oldest: tuple[int, int] | None
    latest: tuple[int, int] | None
    inclusive: bool
    cursor: str | None

    @classmethod
    def parse(cls, params: JsonDict) -> tuple[_TimeWindow, str | None]:
        bounds: dict[str, tuple[int, int] | None] = {}
        for name in ("oldest", "latest"):
            value = params.get(name)
            try:
                bounds[name] = _ts_key(str(value)) if value not in (None, "") else None
            except ValueError:
                return cls(None, None, False, None), f"invalid_ts_{name}"
        try:
            cursor = _decode_cursor(params.get("cursor"))
        except _InvalidCursor:
            return cls(None, None, False, None), "invalid_cursor"
        return cls(bounds["oldest"], bounds["latest"], _flag(params, "inclusive"), cursor), None

    def contains(self, ts: str) -> bool:
        key = _ts_key(ts)
        if self.oldest is not None and (key < self.oldest or (key == self.oldest and not self.inclusive)):
            return False
        return self.latest is None or key < self.latest or (key == self.latest and self.inclusive)


class _InvalidCursor(ValueError):
    pass


def _ts_key(ts: str) -> tuple[int, int]:
    """A message ts ("1712345678.000123") or a time ("1712345678", "1712345678.5") as comparable integers."""
    seconds, _, fraction = ts.partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(f"not a timestamp: {ts!r}")
    return int(seconds), int(fraction.ljust(6, "0")[:6] or 0)


def _encode_cursor(ts: str) -> str:
    return base64.urlsafe_b64encode(f"after:{ts}".encode()).decode()


def _decode_cursor(cursor: Any) -> str | None:
    """The ts a cursor continues after; None for the first page."""
    if cursor in (None, ""):
        return None
    try:
        decoded = base64.urlsafe_b64decode(str(cursor).encode()).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise _InvalidCursor(str(cursor)) from error
    prefix, _, ts = decoded.partition(":")
    if prefix != "after":
        raise _InvalidCursor(str(cursor))
    try:
        _ts_key(ts)
    except ValueError as error:
        raise _InvalidCursor(str(cursor)) from error
    return ts


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _message_answer(message: Message) -> JsonDict:
    answer = message.as_payload()
    answer.update(subtype="bot_message")
    return answer
