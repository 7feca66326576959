"""What `SlackStandIn` and `SlackStandInThread` offer alike: configuration and reads, all through the workspace,
whose lock makes them safe from any thread; and the polling both `wait_for`s share."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from sandbox.slack.faults import Fault
from sandbox.slack.models import JsonDict, Message, MessageListener, RecordedCall
from sandbox.slack.render import render_channel as render_channel_text
from sandbox.slack.socket_mode import Envelope, SocketMode
from sandbox.slack.workspace import SlackWorkspace

POLL_INTERVAL = 0.02


class StandInControls:
    """Configuration and reads of the stand-in's workspace, written once for the server and its thread wrapper."""

    workspace: SlackWorkspace
    socket_mode: SocketMode

    def _secrets(self) -> tuple[str, ...]:
        """The signing secret, the bot token and the app-level token, redacted from rendered channels."""
        raise NotImplementedError

    # ---- configuration

    @property
    def on_message(self) -> MessageListener | None:
        """Called with ("posted" | "updated" | "deleted", Message) after each change; must not block."""
        return self.workspace.on_message

    @on_message.setter
    def on_message(self, listener: MessageListener | None) -> None:
        self.workspace.on_message = listener

    def set_usergroup(self, group_id: str, members: list[str]) -> None:
        self.workspace.set_usergroup(group_id, members)

    def set_member(self, channel: str, is_member: bool) -> None:
        """Put the bot in `channel` or take it out (invited, or removed / never invited): `conversations.info`
        reports `is_member`, and `chat.postMessage` there answers `not_in_channel` while it is out."""
        self.workspace.set_member(channel, is_member)

    def set_scopes(self, scopes: list[str]) -> None:
        """The bot token's scopes from now on: sent in every answer's `X-OAuth-Scopes` header, and a method whose
        scope is missing answers `missing_scope` (default: `sandbox.slack.state.DEFAULT_SCOPES`)."""
        self.workspace.set_scopes(scopes)

    def fail_next(
        self, method: str, *, status: int = 429, retry_after: int = 1, count: int = 1, delay: float = 0.0
    ) -> None:
        """Make the next `count` calls of `method` fail with `status` (429 carries Retry-After).

        With `delay > 0` the calls are instead answered normally but late, so a client timing out still leaves
        the side effect behind, as with a slow Slack.
        """
        self.workspace.add_fault(method, Fault(status, retry_after, count, delay))

    def reset(self) -> None:
        self.workspace.reset()
        self.socket_mode.forget()

    # ---- reads

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        return self.workspace.calls(method)

    def messages(self, channel: str) -> list[Message]:
        return self.workspace.messages(channel)

    def thread(self, channel: str, ts: str) -> list[Message]:
        return self.workspace.thread(channel, ts)

    def ephemerals(self, user: str | None = None) -> list[JsonDict]:
        return self.workspace.ephemerals(user)

    def views(self) -> list[JsonDict]:
        return self.workspace.views()

    def home(self, user: str) -> JsonDict | None:
        return self.workspace.home(user)

    @property
    def socket_connected(self) -> bool:
        """Whether an app holds a Socket Mode connection (commands and clicks then go to it, unless `via="http"`)."""
        return self.socket_mode.connected

    def envelopes(self, type_: str | None = None) -> list[Envelope]:
        """The envelopes sent over Socket Mode (`slash_commands`, `interactive`, `events_api`), each with its ack."""
        return self.socket_mode.envelopes(type_)

    def render_channel(self, channel: str) -> str:
        return render_channel_text(channel, self.messages(channel), redact=self._secrets())


def timeout_message(predicate: Callable[[], Any], timeout: float, description: str | None) -> str:
    if description is None:
        try:
            description = inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            description = getattr(predicate, "__qualname__", repr(predicate))
    return f"timed out after {timeout:g}s waiting for: {description[:300]}"
