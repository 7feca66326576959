"""The Slack stand-in's workspace as the HTTP server and the tests see it: the state behind one lock, the Web API
applied to it, every call recorded, faults queued, and a listener told about each change.

One lock, so the HTTP server (its own event loop, maybe its own thread) and the test reading the state never see a
half-applied change. Reads return copies. No I/O happens here.
"""

from __future__ import annotations

import copy
import logging
import threading

from sandbox.slack.faults import Fault, FaultQueue
from sandbox.slack.models import JsonDict, Message, MessageListener, RecordedCall, ResponseTarget
from sandbox.slack.response_urls import apply_response
from sandbox.slack.state import WorkspaceState
from sandbox.slack.web_api import METHOD_SCOPES, METHODS, error

logger = logging.getLogger(__name__)


class SlackWorkspace:
    """One workspace's state plus the rules of the Web API methods the stand-in serves."""

    def __init__(self, *, team_id: str, bot_user_id: str, bot_id: str, app_id: str) -> None:
        self.state = WorkspaceState(team_id=team_id, bot_user_id=bot_user_id, bot_id=bot_id, app_id=app_id)
        self.on_message: MessageListener | None = None
        self._lock = threading.RLock()
        self._calls: list[RecordedCall] = []
        self._faults = FaultQueue()

    @property
    def trigger_ttl(self) -> float:
        return self.state.trigger_ttl

    @trigger_ttl.setter
    def trigger_ttl(self, seconds: float) -> None:
        self.state.trigger_ttl = seconds

    # ---- configuration and bookkeeping used by the HTTP layer

    def reset(self) -> None:
        """Forget messages, calls, views, triggers, response URLs and faults; usergroups stay."""
        with self._lock:
            self.state.clear()
            self._calls = []
            self._faults.clear()

    def set_usergroup(self, group_id: str, members: list[str]) -> None:
        with self._lock:
            self.state.usergroups[group_id] = list(members)

    def usergroup(self, group_id: str) -> list[str]:
        """The group's members ([] for an unknown group)."""
        with self._lock:
            return list(self.state.usergroups.get(group_id, []))

    def set_member(self, channel: str, is_member: bool) -> None:
        with self._lock:
            self.state.memberships[channel] = is_member

    def set_scopes(self, scopes: list[str]) -> None:
        with self._lock:
            self.state.scopes = list(scopes)

    def scopes(self) -> list[str]:
        with self._lock:
            return list(self.state.scopes)

    def add_fault(self, method: str, fault: Fault) -> None:
        with self._lock:
            self._faults.add(method, fault)

    def take_fault(self, method: str) -> Fault | None:
        """Consume one use of the oldest fault queued for `method`, if any."""
        with self._lock:
            return self._faults.take(method)

    def record(self, method: str, params: JsonDict, t: float, status: int, ok: bool) -> None:
        with self._lock:
            self._calls.append(RecordedCall(method, copy.deepcopy(params), t, status, ok))
        logger.debug("slack stand-in: %s -> HTTP %s ok=%s", method, status, ok)

    def issue_trigger(self) -> str:
        with self._lock:
            return self.state.issue_trigger()

    def open_response_url(self, target: ResponseTarget) -> str:
        with self._lock:
            return self.state.open_response_url(target)

    # ---- reads (all return copies)

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str) -> list[Message]:
        with self._lock:
            return copy.deepcopy(self.state.channels.get(channel, []))

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The parent followed by its replies (like conversations.replies); [] when unknown."""
        with self._lock:
            return copy.deepcopy(self.state.thread(channel, ts))

    def find_message(self, channel: str, ts: str) -> Message | None:
        with self._lock:
            return copy.deepcopy(self.state.by_ts.get((channel, ts)))

    def find_ephemeral(self, channel: str, ts: str) -> JsonDict | None:
        with self._lock:
            return copy.deepcopy(self.state.find_ephemeral(channel, ts))

    def ephemerals(self, user: str | None = None) -> list[JsonDict]:
        with self._lock:
            return copy.deepcopy([e for e in self.state.ephemerals if user is None or e["user"] == user])

    def views(self) -> list[JsonDict]:
        with self._lock:
            return copy.deepcopy(list(self.state.views.values()))

    def home(self, user: str) -> JsonDict | None:
        with self._lock:
            return copy.deepcopy(self.state.homes.get(user))

    # ---- the Web API and response URLs

    def call(self, method: str, params: JsonDict) -> JsonDict:
        """Apply one authenticated Web API call and return Slack's JSON answer."""
        handler = METHODS.get(method)
        if handler is None:
            return error("unknown_method")
        with self._lock:
            needed = METHOD_SCOPES.get(method)
            if needed is not None and needed not in self.state.scopes:
                return {**error("missing_scope"), "needed": needed, "provided": ",".join(self.state.scopes)}
            answer = handler(self.state, params)
            events = self.state.take_events()
        self._notify(events)
        return answer

    def apply_response(self, response_id: str, body: JsonDict) -> tuple[bool, str]:
        """A post to a response_url. Returns (ok, Slack's plain-text answer)."""
        with self._lock:
            answer = apply_response(self.state, response_id, body)
            events = self.state.take_events()
        self._notify(events)
        return answer

    def _notify(self, events: list[tuple[str, Message]]) -> None:
        listener = self.on_message
        if listener is None:
            return
        for name, message in events:
            try:
                listener(name, message)
            except Exception:
                logger.exception("slack stand-in: on_message listener failed")
