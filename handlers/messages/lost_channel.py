"""Direct messages to the requester of a run whose channel the bot can no longer post in (removed from it, the
channel archived or deleted): what happens to the run, and how to give the bot its channel back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.channel_access import INVITE
from handlers.messages.formatting import KIND_TITLES, Message, escape, section

if TYPE_CHECKING:
    from storage import RunRecord


def _what(run: RunRecord) -> str:
    return f"`{run.id}` ({KIND_TITLES.get(run.kind, run.kind).lower()} of `{escape(run.database)}`)"


def channel_lost(run: RunRecord, code: str) -> Message:
    """The first time a run finds it cannot post in its channel."""
    where = f"<#{run.channel}>"
    body = (
        f":warning: The bot can no longer post in {where} (`{escape(code)}`), so run {_what(run)} cannot show its"
        " progress there. It keeps going only up to its next approval and stops there: nothing is switched over or"
        f" deleted without an approval request people can see. To carry on, type `{INVITE}` in {where}, then start"
        " the run again if it stopped."
    )
    text = (
        f"The bot can no longer post in {where} ({code}): run {run.id} keeps going only up to its next approval."
        f" Type {INVITE} in {where}."
    )
    return Message(text=text, blocks=[section(body)])


def approval_withdrawn(run: RunRecord, request_id: str, code: str) -> Message:
    """The run stopped at an approval its approvers could not see."""
    where = f"<#{run.channel}>"
    body = (
        f":no_entry: Run {_what(run)} stopped at its approval: the request `{request_id}` could not be posted"
        f" in {where} (`{escape(code)}`), so nobody could approve it and it was withdrawn. Nothing it guards was done."
        f" Type `{INVITE}` in {where}, then start the run again."
    )
    text = f"Run {run.id} stopped at its approval: the request could not be shown in {where} ({code}). Type {INVITE}."
    return Message(text=text, blocks=[section(body)])


def withdrawal_reason(run: RunRecord, code: str) -> str:
    """What the engine records (and the approve path answers) for a request withdrawn because of `code`."""
    return f"the bot could not post it in channel {run.channel} ({code}); nobody could see it"
