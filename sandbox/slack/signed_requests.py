"""Requests from Slack to the app: slash commands, button clicks, view submissions and Events API callbacks, sent as
a chosen user and signed with the signing secret the way Slack signs them (or unsigned, forged, replayed or
re-headered on demand); or, while the app holds a Socket Mode connection, the same payloads as envelopes over it
(sandbox/slack/socket_mode.py). One builder per payload serves both transports.

Each command and click carries a trigger id and a response URL the stand-in issued, so the app's answers through
them land in the workspace.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from sandbox.slack.models import JsonDict, ResponseTarget, channel_name
from sandbox.slack.socket_mode import SocketMode
from sandbox.slack.workspace import SlackWorkspace

TEAM_DOMAIN = "standin"
VERIFICATION_TOKEN = "standin-verification-token"  # the legacy payload `token` field, not a secret
NO_ACK = 504  # a `CommandResult.status` over Socket Mode: no ack in time (the user sees the command fail)

# "auto": over Socket Mode while an app is connected (as Slack does for an app with Socket Mode on), else HTTP.
Via = Literal["auto", "http", "socket"]


@dataclass(frozen=True)
class CommandResult:
    """The app's answer to a command, click or submission, plus the ids the stand-in issued for it.

    Over HTTP: the status and body of the app's HTTP response. Over Socket Mode: 200 and the ack's `payload` (as JSON)
    once the envelope was acknowledged, `NO_ACK` and an empty body when it was not within the ack timeout."""

    status: int
    body: str
    json: JsonDict | None
    elapsed: float
    response_url: str
    trigger_id: str


class SignedRequests:
    """The stand-in's requests to the app, mixed into `SlackStandIn`, which provides what is declared here."""

    workspace: SlackWorkspace
    socket_mode: SocketMode
    app_url: str | None
    team_id: str
    api_app_id: str
    _signer: SignatureVerifier
    _session: aiohttp.ClientSession | None

    @property
    def root_url(self) -> str:
        """The server's address, where the response URLs point."""
        raise NotImplementedError

    async def send_command(
        self,
        *,
        user_id: str,
        text: str,
        channel_id: str = "C0OPS",
        command: str = "/bluegreen",
        sign: bool = True,
        timestamp: int | None = None,
        signature: str | None = None,
        headers_override: dict[str, str] | None = None,
        via: Via = "auto",
    ) -> CommandResult:
        """Type `command text` as `user_id` in `channel_id`. The signing options apply over HTTP only."""
        form, response_url, trigger_id = self.command_payload(
            user_id=user_id, text=text, channel_id=channel_id, command=command
        )
        if self._over_socket(via):
            return await self._send_envelope("slash_commands", form, True, response_url, trigger_id)
        return await self._post_to_app(
            urlencode(form), response_url, trigger_id, sign, timestamp, signature, headers_override
        )

    def command_payload(
        self, *, user_id: str, text: str, channel_id: str = "C0OPS", command: str = "/bluegreen"
    ) -> tuple[dict[str, str], str, str]:
        """A slash command's fields (the HTTP form; the `payload` of a `slash_commands` envelope), with the response
        URL and trigger id issued for it."""
        trigger_id = self.workspace.issue_trigger()
        response_url = self._response_url(ResponseTarget(kind="command", user=user_id, channel=channel_id))
        form = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": channel_name(channel_id),
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        return form, response_url, trigger_id

    async def click(
        self,
        *,
        user_id: str,
        action_id: str,
        value: str,
        channel_id: str,
        message_ts: str,
        block_id: str = "",
        sign: bool = True,
        timestamp: int | None = None,
        signature: str | None = None,
        headers_override: dict[str, str] | None = None,
        via: Via = "auto",
    ) -> CommandResult:
        """Click a button on a message (or on an ephemeral message) as `user_id`; raises LookupError if absent. The
        signing options apply over HTTP only."""
        payload, response_url, trigger_id = self.click_payload(
            user_id=user_id,
            action_id=action_id,
            value=value,
            channel_id=channel_id,
            message_ts=message_ts,
            block_id=block_id,
        )
        if self._over_socket(via):
            return await self._send_envelope("interactive", payload, False, response_url, trigger_id)
        body = urlencode({"payload": json.dumps(payload)})
        return await self._post_to_app(body, response_url, trigger_id, sign, timestamp, signature, headers_override)

    def click_payload(
        self, *, user_id: str, action_id: str, value: str, channel_id: str, message_ts: str, block_id: str = ""
    ) -> tuple[JsonDict, str, str]:
        """A `block_actions` payload for a click on a button, with the response URL and trigger id issued for it."""
        message, is_ephemeral = self._clicked_message(channel_id, message_ts)
        trigger_id = self.workspace.issue_trigger()
        response_url = self._response_url(
            ResponseTarget(
                kind="block_actions",
                user=user_id,
                channel=channel_id,
                message_ts=message_ts,
                is_ephemeral=is_ephemeral,
            )
        )
        payload = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": is_ephemeral,
            },
            "trigger_id": trigger_id,
            "team": {"id": self.team_id, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": channel_name(channel_id)},
            "message": message,
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return payload, response_url, trigger_id

    async def submit_view(
        self,
        *,
        user_id: str,
        view: JsonDict,
        values: JsonDict,
        sign: bool = True,
        timestamp: int | None = None,
        signature: str | None = None,
        headers_override: dict[str, str] | None = None,
        via: Via = "auto",
    ) -> CommandResult:
        """Submit a modal as `user_id`; `values` is `state.values` ({block_id: {action_id: {...}}})."""
        payload, trigger_id = self.view_submission_payload(user_id=user_id, view=view, values=values)
        if self._over_socket(via):
            return await self._send_envelope("interactive", payload, True, "", trigger_id)
        body = urlencode({"payload": json.dumps(payload)})
        return await self._post_to_app(body, "", trigger_id, sign, timestamp, signature, headers_override)

    def view_submission_payload(self, *, user_id: str, view: JsonDict, values: JsonDict) -> tuple[JsonDict, str]:
        """A `view_submission` payload, with the trigger id issued for it."""
        trigger_id = self.workspace.issue_trigger()
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": TEAM_DOMAIN},
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": trigger_id,
            "view": {**view, "state": {"values": values}},
            "response_urls": [],
            "enterprise": None,
            "is_enterprise_install": False,
        }
        return payload, trigger_id

    async def send_event(
        self,
        event: JsonDict,
        *,
        sign: bool = True,
        timestamp: int | None = None,
        signature: str | None = None,
        headers_override: dict[str, str] | None = None,
        via: Via = "auto",
    ) -> CommandResult:
        """Deliver `event` (its `type` and fields) to the app as the Events API does: a signed JSON `event_callback`
        envelope (over Socket Mode, the `payload` of an `events_api` envelope). The app's answer is only an
        acknowledgement."""
        envelope = self.event_payload(event)
        if self._over_socket(via):
            return await self._send_envelope("events_api", envelope, False, "", "")
        headers = {"Content-Type": "application/json", **(headers_override or {})}
        return await self._post_to_app(json.dumps(envelope), "", "", sign, timestamp, signature, headers)

    def event_payload(self, event: JsonDict) -> JsonDict:
        """The `event_callback` wrapping `event`."""
        now = time.time()
        envelope = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": {"event_ts": f"{now:.6f}", **event},
            "type": "event_callback",
            "event_id": f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.workspace.state.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        return envelope

    async def update_usergroup(self, group_id: str, members: list[str]) -> CommandResult:
        """Change a user group's members, then tell the app as Slack does: a `subteam_members_changed` event with
        the users added and removed."""
        before = set(self.workspace.usergroup(group_id))
        self.workspace.set_usergroup(group_id, members)
        added, removed = sorted(set(members) - before), sorted(before - set(members))
        now = int(time.time())
        return await self.send_event(
            {
                "type": "subteam_members_changed",
                "subteam_id": group_id,
                "team_id": self.team_id,
                "date_previous_update": now - 1,
                "date_update": now,
                "added_users": added,
                "added_users_count": str(len(added)),
                "removed_users": removed,
                "removed_users_count": str(len(removed)),
            }
        )

    def _clicked_message(self, channel_id: str, message_ts: str) -> tuple[JsonDict, bool]:
        message = self.workspace.find_message(channel_id, message_ts)
        if message is not None:
            return message.as_payload(), False
        ephemeral = self.workspace.find_ephemeral(channel_id, message_ts)
        if ephemeral is not None:
            return {"type": "message", "ts": message_ts, "text": ephemeral["text"], "blocks": ephemeral["blocks"]}, True
        raise LookupError(f"no message {message_ts} in channel {channel_id} to click on")

    def _user(self, user_id: str) -> JsonDict:
        return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": self.team_id}

    def _response_url(self, target: ResponseTarget) -> str:
        return f"{self.root_url}/response/{self.workspace.open_response_url(target)}"

    def _over_socket(self, via: Via) -> bool:
        return via == "socket" or (via == "auto" and self.socket_mode.connected)

    async def _send_envelope(
        self, type_: str, payload: JsonDict, accepts_response_payload: bool, response_url: str, trigger_id: str
    ) -> CommandResult:
        envelope = await self.socket_mode.deliver(type_, payload, accepts_response_payload=accepts_response_payload)
        if not envelope.acked:
            return CommandResult(NO_ACK, "", None, envelope.seconds, response_url, trigger_id)
        body = json.dumps(envelope.ack_payload) if envelope.ack_payload is not None else ""
        return CommandResult(200, body, envelope.ack_payload, envelope.seconds, response_url, trigger_id)

    async def _post_to_app(
        self,
        body: str,
        response_url: str,
        trigger_id: str,
        sign: bool,
        timestamp: int | None,
        signature: str | None,
        headers_override: dict[str, str] | None,
    ) -> CommandResult:
        if self.app_url is None or self._session is None:
            raise RuntimeError("set app_url and start() the stand-in before sending requests to the app")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if sign:
            request_ts = str(timestamp if timestamp is not None else int(time.time()))
            headers["X-Slack-Request-Timestamp"] = request_ts
            headers["X-Slack-Signature"] = signature or self._signer.generate_signature(timestamp=request_ts, body=body)
        headers.update(headers_override or {})
        started = time.monotonic()
        async with self._session.post(self.app_url, data=body.encode(), headers=headers) as response:
            text = await response.text()
            elapsed = time.monotonic() - started
            status = response.status
        return CommandResult(status, text, _maybe_json(text), elapsed, response_url, trigger_id)


def _maybe_json(text: str) -> JsonDict | None:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None
