"""The Web API methods the stand-in serves (`METHODS`), as rules over the workspace state: each takes the state
and the call's parameters and returns Slack's JSON answer. Called with the workspace's lock held.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from sandbox.slack.models import JsonDict, Message, channel_name
from sandbox.slack.paging import TimeWindow, first_page, ts_key
from sandbox.slack.request_params import (
    MAX_VIEW_BLOCKS,
    blocks_valid,
    flag,
    json_field,
    message_content,
    message_metadata,
)
from sandbox.slack.state import WorkspaceState

__all__ = ["METHODS", "METHOD_SCOPES", "error"]

HISTORY_LIMITS = (100, 999)  # conversations.history: default and largest `limit`
REPLIES_LIMITS = (1000, 1000)  # conversations.replies: the same

Method = Callable[[WorkspaceState, JsonDict], JsonDict]


def error(code: str) -> JsonDict:
    return {"ok": False, "error": code}


def auth_test(state: WorkspaceState, params: JsonDict) -> JsonDict:
    return {
        "ok": True,
        "url": "https://standin.slack.com/",
        "team": "Stand-in Workspace",
        "user": "bluegreen",
        "team_id": state.team_id,
        "user_id": state.bot_user_id,
        "bot_id": state.bot_id,
        "is_enterprise_install": False,
    }


# ---- chat.*


def chat_post_message(state: WorkspaceState, params: JsonDict) -> JsonDict:
    channel = str(params.get("channel") or "")
    if not channel:
        return error("channel_not_found")
    text, blocks, problem = message_content(params)
    metadata, metadata_problem = message_metadata(params)
    if problem or metadata_problem:
        return error(problem or metadata_problem or "")
    if not state.is_member(channel):
        return error("not_in_channel")
    parent = None
    if params.get("thread_ts"):
        parent = state.by_ts.get((channel, str(params["thread_ts"])))
        if parent is None:
            return error("thread_not_found")
    broadcast = flag(params, "reply_broadcast")
    message = state.post(channel, text, blocks, parent=parent, broadcast=broadcast, metadata=metadata)
    return {"ok": True, "channel": channel, "ts": message.ts, "message": _message_answer(message)}


def chat_update(state: WorkspaceState, params: JsonDict) -> JsonDict:
    channel = str(params.get("channel") or "")
    ts = str(params.get("ts") or "")
    if (channel, ts) not in state.by_ts:
        return error("message_not_found")
    text, blocks, problem = message_content(params)
    metadata, metadata_problem = message_metadata(params)
    if problem or metadata_problem:
        return error(problem or metadata_problem or "")
    new_text = text if params.get("text") is not None else None
    new_blocks = blocks if params.get("blocks") is not None else None
    if metadata is not None:  # chat.update keeps the metadata unless it is given
        state.by_ts[(channel, ts)].metadata = metadata
    message = state.edit(channel, ts, new_text, new_blocks)
    return {"ok": True, "channel": channel, "ts": ts, "text": message.text, "message": _message_answer(message)}


def chat_post_ephemeral(state: WorkspaceState, params: JsonDict) -> JsonDict:
    channel = str(params.get("channel") or "")
    user = str(params.get("user") or "")
    if not channel:
        return error("channel_not_found")
    if not user:
        return error("user_not_found")
    text, blocks, problem = message_content(params)
    if problem:
        return error(problem)
    ephemeral = state.add_ephemeral(channel, user, text, blocks, source="chat.postEphemeral")
    return {"ok": True, "message_ts": ephemeral["ts"]}


# ---- views.*


def views_open(state: WorkspaceState, params: JsonDict) -> JsonDict:
    if not state.trigger_is_fresh(str(params.get("trigger_id") or "")):
        return error("expired_trigger_id")
    view = json_field(params, "view")
    if not isinstance(view, dict) or view.get("type") != "modal":
        return error("invalid_arguments")
    if not blocks_valid(view.get("blocks") or [], MAX_VIEW_BLOCKS):
        return error("invalid_blocks")
    external_id = view.get("external_id")
    if external_id and any(v.get("external_id") == external_id for v in state.views.values()):
        return error("duplicate_external_id")
    stored = state.new_view(view)
    state.views[stored["id"]] = stored
    return {"ok": True, "view": copy.deepcopy(stored)}


def views_update(state: WorkspaceState, params: JsonDict) -> JsonDict:
    view_id = params.get("view_id")
    external_id = params.get("external_id")
    current = next(
        (
            v
            for v in state.views.values()
            if (view_id and v["id"] == view_id) or (external_id and v.get("external_id") == external_id)
        ),
        None,
    )
    if current is None:
        return error("not_found")
    if params.get("hash") and params["hash"] != current["hash"]:
        return error("hash_conflict")
    view = json_field(params, "view")
    if not isinstance(view, dict) or not blocks_valid(view.get("blocks") or [], MAX_VIEW_BLOCKS):
        return error("invalid_arguments")
    updated = state.new_view(view, view_id=current["id"])
    state.views[current["id"]] = updated
    return {"ok": True, "view": copy.deepcopy(updated)}


def views_publish(state: WorkspaceState, params: JsonDict) -> JsonDict:
    user = str(params.get("user_id") or "")
    if not user:
        return error("invalid_arguments")
    view = json_field(params, "view")
    if not isinstance(view, dict) or view.get("type") != "home":
        return error("invalid_arguments")
    if not blocks_valid(view.get("blocks") or [], MAX_VIEW_BLOCKS):
        return error("invalid_blocks")
    current = state.homes.get(user)
    if current and params.get("hash") and params["hash"] != current["hash"]:
        return error("hash_conflict")
    published = state.new_view(view, view_id=current["id"] if current else None)
    state.homes[user] = published
    return {"ok": True, "view": copy.deepcopy(published)}


# ---- users, user groups and conversations


def usergroups_users_list(state: WorkspaceState, params: JsonDict) -> JsonDict:
    group = str(params.get("usergroup") or "")
    if group not in state.usergroups:
        return error("no_such_subteam")
    return {"ok": True, "users": list(state.usergroups[group])}


def users_info(state: WorkspaceState, params: JsonDict) -> JsonDict:
    user = str(params.get("user") or "")
    if not user:
        return error("user_not_found")
    name = user.lower()
    return {
        "ok": True,
        "user": {
            "id": user,
            "team_id": state.team_id,
            "name": name,
            "real_name": name,
            "deleted": False,
            "is_bot": user == state.bot_user_id,
            "tz": "UTC",
            "profile": {"real_name": name, "display_name": name},
        },
    }


def conversations_info(state: WorkspaceState, params: JsonDict) -> JsonDict:
    channel = str(params.get("channel") or "")
    if not channel:
        return error("channel_not_found")
    return {
        "ok": True,
        "channel": {
            "id": channel,
            "name": channel_name(channel),
            "is_channel": True,
            "is_private": False,
            "is_archived": False,
            "is_member": state.is_member(channel),
        },
    }


def conversations_history(state: WorkspaceState, params: JsonDict) -> JsonDict:
    """The channel's top-level messages (and replies broadcast to it), newest first."""
    channel = str(params.get("channel") or "")
    if not channel:
        return error("channel_not_found")
    window, problem = TimeWindow.parse(params)
    if problem:
        return error(problem)
    newest_first = sorted(state.channels.get(channel, []), key=lambda m: ts_key(m.ts), reverse=True)
    found = [m for m in newest_first if window.contains(m.ts)]
    if window.cursor is not None:
        found = [m for m in found if ts_key(m.ts) < ts_key(window.cursor)]
    return _page_answer(state, found, params, HISTORY_LIMITS)


def conversations_replies(state: WorkspaceState, params: JsonDict) -> JsonDict:
    """A thread: its parent first (on the first page only), then the replies, oldest first."""
    channel = str(params.get("channel") or "")
    if not channel:
        return error("channel_not_found")
    message = state.by_ts.get((channel, str(params.get("ts") or "")))
    if message is None:
        return error("thread_not_found")
    window, problem = TimeWindow.parse(params)
    if problem:
        return error(problem)
    parent = state.thread_parent(channel, message)
    replies = [reply for reply in parent.replies if window.contains(reply.ts)]
    if window.cursor is None:
        return _page_answer(state, [parent, *replies], params, REPLIES_LIMITS)
    later = [r for r in replies if ts_key(r.ts) > ts_key(window.cursor)]
    return _page_answer(state, later, params, REPLIES_LIMITS)


def _page_answer(state: WorkspaceState, found: list[Message], params: JsonDict, limits: tuple[int, int]) -> JsonDict:
    page = first_page(found, params, limits)
    include_metadata = flag(params, "include_all_metadata")
    return {
        "ok": True,
        "messages": [_history_item(state, m, include_metadata) for m in page.messages],
        "has_more": page.has_more,
        "response_metadata": {"next_cursor": page.next_cursor},
    }


def _history_item(state: WorkspaceState, message: Message, include_metadata: bool) -> JsonDict:
    item = _message_answer(message)
    item.update(bot_id=state.bot_id, app_id=state.app_id)
    if message.broadcast:
        item["subtype"] = "thread_broadcast"
    if message.replies:
        item.update(reply_count=len(message.replies), latest_reply=message.replies[-1].ts)
    if include_metadata and message.metadata is not None:
        item["metadata"] = copy.deepcopy(message.metadata)
    return item


def _message_answer(message: Message) -> JsonDict:
    answer = message.as_payload()
    answer.update(subtype="bot_message")
    return answer


METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.postEphemeral": chat_post_ephemeral,
    "views.open": views_open,
    "views.update": views_update,
    "views.publish": views_publish,
    "usergroups.users.list": usergroups_users_list,
    "users.info": users_info,
    "conversations.info": conversations_info,
    "conversations.history": conversations_history,
    "conversations.replies": conversations_replies,
}

# The bot scope each method needs (channels in the stand-in are public, so the `channels:` ones).
METHOD_SCOPES: dict[str, str] = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "usergroups.users.list": "usergroups:read",
    "conversations.info": "channels:read",
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
}
