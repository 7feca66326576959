"""Requests from Slack to the app: slash commands, button clicks, view submissions and Events API callbacks, sent as
a chosen user and signed with the signing secret the way Slack signs them (or unsigned, forged, replayed or
re-headered on demand).

Each command and click carries a trigger id and a response URL the stand-in issued, so the app's answers through
them land in the workspace.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from sandbox.slack.models import JsonDict, ResponseTarget, channel_name
from sandbox.slack.workspace import SlackWorkspace

TEAM_DOMAIN = "standin"
VERIFICATION_TOKEN = "standin-verification-token"  # the legacy payload `token` field, not a secret


@dataclass(frozen=True)
class CommandResult:
    """The app's HTTP answer to a command, click or submission, plus the ids the stand-in issued for it."""

    status: int
    body: str
    json: JsonDict | None
    elapsed: float
    response_url: str
    trigger_id: str


class SignedRequests:
    """The stand-in's requests to the app, mixed into `SlackStandIn`, which provides what is declared here."""

    workspace: SlackWorkspace
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
    ) -> CommandResult:
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
        return await self._post_to_app(
            urlencode(form), response_url, trigger_id, sign, timestamp, signature, headers_override
        )

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
    ) -> CommandResult:
        """Click a button on a message (or on an ephemeral message) as `user_id`; raises LookupError if absent."""
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
        body = urlencode({"payload": json.dumps(payload)})
        return await self._post_to_app(body, response_url, trigger_id, sign, timestamp, signature, headers_override)

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
    ) -> CommandResult:
        """Submit a modal as `user_id`; `values` is `state.values` ({block_id: {action_id: {...}}})."""
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
        body = urlencode({"payload": json.dumps(payload)})
        return await self._post_to_app(body, "", trigger_id, sign, timestamp, signature, headers_override)

    async def send_event(
        self,
        event: JsonDict,
        *,
        sign: bool = True,
        timestamp: int | None = None,
        signature: str | None = None,
        headers_override: dict[str, str] | None = None,
    ) -> CommandResult:
        """Deliver `event` (its `type` and fields) to the app as the Events API does: a signed JSON `event_callback`
        envelope. The app's answer is only an acknowledgement."""
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
        headers = {"Content-Type": "application/json", **(headers_override or {})}
        return await self._post_to_app(json.dumps(envelope), "", "", sign, timestamp, signature, headers)

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
