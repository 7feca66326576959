"""What a post to a response_url does: answer the slash command or the clicked message it was issued for, by
replacing or deleting that message, posting in the channel, or showing an ephemeral message to the user.
Called with the workspace's lock held.
"""

from __future__ import annotations

from sandbox.slack.models import JsonDict, ResponseTarget
from sandbox.slack.request_params import MAX_MESSAGE_BLOCKS, blocks_valid
from sandbox.slack.state import WorkspaceState

__all__ = ["apply_response"]


def apply_response(state: WorkspaceState, response_id: str, body: JsonDict) -> tuple[bool, str]:
    """A post to a response_url. Returns (ok, Slack's plain-text answer)."""
    target = state.response_targets.get(response_id)
    if target is None:
        return False, "no_such_url"
    blocks = body.get("blocks") or []
    if not blocks_valid(blocks, MAX_MESSAGE_BLOCKS):
        return False, "invalid_blocks"
    if not body.get("delete_original") and not body.get("text") and not blocks:
        return False, "no_text"
    _respond(state, target, body, blocks)
    return True, "ok"


def _respond(state: WorkspaceState, target: ResponseTarget, body: JsonDict, blocks: list[JsonDict]) -> None:
    text = str(body.get("text") or "")
    original = target.message_ts
    if original and body.get("delete_original"):
        if target.is_ephemeral:
            state.delete_ephemeral(target.channel, original)
        else:
            state.delete(target.channel, original)
    elif original and body.get("replace_original"):
        if target.is_ephemeral:
            state.replace_ephemeral(target.channel, original, text, blocks)
        else:
            state.edit(target.channel, original, text, blocks)
    elif body.get("response_type") == "in_channel":
        thread_ts = body.get("thread_ts")
        parent = state.by_ts.get((target.channel, thread_ts)) if thread_ts else None
        state.post(target.channel, text, blocks, parent=parent, broadcast=False)
    else:
        state.add_ephemeral(target.channel, target.user, text, blocks, source="response_url")
