"""A local stand-in for Slack: serves the Web API and response URLs over HTTP, and sends signed slash commands,
button clicks and view submissions to the real Bolt app as a chosen user.

    async with SlackStandIn(signing_secret=secret) as slack:
        client = AsyncWebClient(token="xoxb-standin", base_url=slack.base_url)
        slack.app_url = "http://127.0.0.1:3000/slack/events"
        result = await slack.send_command(user_id="U0ALICE", text="plan orders-pg")
        await slack.wait_for(lambda: slack.messages("C0OPS"))

`SlackStandInThread` runs the same thing on its own event loop for synchronous tests and other threads.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from sandbox.slack.render import render_channel as render_channel_text
from sandbox.slack.state import (
    Fault,
    JsonDict,
    Message,
    MessageListener,
    RecordedCall,
    ResponseTarget,
    SlackWorkspace,
    channel_name,
)

__all__ = ["CommandResult", "Message", "RecordedCall", "SlackStandIn", "SlackStandInThread"]

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.02
TEAM_DOMAIN = "standin"
VERIFICATION_TOKEN = "standin-verification-token"  # the legacy payload `token` field, not a secret
JSON_FIELDS = ("blocks", "view", "metadata")  # form bodies carry these as JSON strings

T = TypeVar("T")


@dataclass(frozen=True)
class CommandResult:
    """The app's HTTP answer to a command, click or submission, plus the ids the stand-in issued for it."""

    status: int
    body: str
    json: JsonDict | None
    elapsed: float
    response_url: str
    trigger_id: str


class RecordedReads:
    """What the stand-in recorded, read the same way from the server and from its thread wrapper."""

    workspace: SlackWorkspace

    def _secrets(self) -> tuple[str, str]:
        raise NotImplementedError

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

    def render_channel(self, channel: str) -> str:
        return render_channel_text(channel, self.messages(channel), redact=self._secrets())


class SlackStandIn(RecordedReads):
    def __init__(
        self,
        *,
        signing_secret: str,
        bot_token: str = "xoxb-standin",
        app_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        team_id: str = "T0STANDIN",
        bot_user_id: str = "UBLUEGREEN",
        app_request_timeout: float = 10.0,
    ) -> None:
        self._signer = SignatureVerifier(signing_secret)
        self._bot_token = bot_token
        self.app_url = app_url
        self.host = host
        self.port = port
        self.team_id = team_id
        self.api_app_id = "A0STANDIN"
        self.app_request_timeout = app_request_timeout
        self.workspace = SlackWorkspace(
            team_id=team_id, bot_user_id=bot_user_id, bot_id="B0STANDIN", app_id=self.api_app_id
        )
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stopping: asyncio.Event | None = None
        self._held_back = 0

    def __repr__(self) -> str:  # no secrets in reprs
        return f"SlackStandIn(root={self.root_url if self._runner else None!r}, app_url={self.app_url!r})"

    # ---- lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._serve_web_api)
        app.router.add_post("/response/{response_id}", self._serve_response_url)
        # No access log: a client could put the token in a query string.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._stopping = asyncio.Event()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.app_request_timeout))
        logger.info("slack stand-in listening on %s", self.root_url)

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()  # wakes handlers held back by a `delay` fault
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Web API base for `AsyncWebClient(base_url=...)`, which appends the method name."""
        return f"{self.root_url}/api/"

    # ---- configuration

    @property
    def on_message(self) -> MessageListener | None:
        """Called with ("posted" | "updated" | "deleted", Message) after each change; must not block."""
        return self.workspace.on_message

    @on_message.setter
    def on_message(self, listener: MessageListener | None) -> None:
        self.workspace.on_message = listener

    @property
    def trigger_ttl(self) -> float:
        return self.workspace.trigger_ttl

    @trigger_ttl.setter
    def trigger_ttl(self, seconds: float) -> None:
        self.workspace.trigger_ttl = seconds

    def set_usergroup(self, group_id: str, members: list[str]) -> None:
        self.workspace.set_usergroup(group_id, members)

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

    # ---- reads

    @property
    def held_back(self) -> int:
        """How many calls a `delay` fault is holding back right now (not applied, not recorded yet)."""
        return self._held_back

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,
        *,
        description: str | None = None,
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(_timeout_message(predicate, timeout, description))
            await asyncio.sleep(POLL_INTERVAL)

    # ---- the Web API

    async def _serve_web_api(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        method = request.match_info["method"]
        params = await _read_params(request)
        body_token = params.pop("token", None)
        token = _bearer_token(request) or body_token

        fault = self.workspace.take_fault(method)
        if fault is not None and fault.delay > 0:
            await self._hold_back(fault.delay)
        elif fault is not None:
            return self._fault_response(method, params, arrived, fault)

        if token != self._bot_token:
            answer: JsonDict = {"ok": False, "error": "invalid_auth"}
        else:
            answer = self.workspace.call(method, params)
        self.workspace.record(method, params, arrived, 200, bool(answer.get("ok")))
        return web.json_response(answer)

    def _fault_response(self, method: str, params: JsonDict, arrived: float, fault: Fault) -> web.Response:
        self.workspace.record(method, params, arrived, fault.status, False)
        if fault.status == 429:
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(fault.retry_after)},
            )
        return web.json_response({"ok": False, "error": "fatal_error"}, status=fault.status)

    async def _hold_back(self, delay: float) -> None:
        assert self._stopping is not None
        self._held_back += 1
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            pass
        finally:
            self._held_back -= 1

    async def _serve_response_url(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        response_id = request.match_info["response_id"]
        try:
            body = json.loads(await request.text() or "{}")
        except json.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            self.workspace.record("response_url", {"response_id": response_id}, arrived, 400, False)
            return web.Response(status=400, text="invalid_payload")
        ok, answer = self.workspace.apply_response(response_id, body)
        status = 200 if ok else (404 if answer == "no_such_url" else 400)
        recorded = {"response_id": response_id, **{k: body.get(k) for k in _RESPONSE_FIELDS if k in body}}
        self.workspace.record("response_url", recorded, arrived, status, ok)
        return web.Response(status=status, text=answer)

    # ---- requests to the app

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

    def _secrets(self) -> tuple[str, str]:
        return (self._signer.signing_secret, self._bot_token)


_RESPONSE_FIELDS = ("response_type", "replace_original", "delete_original", "text", "blocks", "thread_ts")


class SlackStandInThread(RecordedReads):
    """A `SlackStandIn` on its own event loop in a daemon thread, driven from synchronous code."""

    def __init__(self, *, start_timeout: float = 10.0, **standin_kwargs: Any) -> None:
        self.standin = SlackStandIn(**standin_kwargs)
        self._start_timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="slack-standin", daemon=True)
        self._thread.start()
        self._run(self.standin.start(), self._start_timeout)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._run(self.standin.stop(), self._start_timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self._start_timeout)
        self._loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> SlackStandInThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("SlackStandInThread is not started")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout if timeout is not None else self.standin.app_request_timeout + 5)

    # ---- requests to the app

    def send_command(self, **kwargs: Any) -> CommandResult:
        return self._run(self.standin.send_command(**kwargs))

    def click(self, **kwargs: Any) -> CommandResult:
        return self._run(self.standin.click(**kwargs))

    def submit_view(self, **kwargs: Any) -> CommandResult:
        return self._run(self.standin.submit_view(**kwargs))

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, *, description: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(_timeout_message(predicate, timeout, description))
            time.sleep(POLL_INTERVAL)

    # ---- configuration and reads (lock-guarded in the workspace, safe from any thread)

    @property
    def base_url(self) -> str:
        return self.standin.base_url

    @property
    def app_url(self) -> str | None:
        return self.standin.app_url

    @app_url.setter
    def app_url(self, url: str | None) -> None:
        self.standin.app_url = url

    @property
    def on_message(self) -> MessageListener | None:
        return self.standin.on_message

    @on_message.setter
    def on_message(self, listener: MessageListener | None) -> None:
        self.standin.on_message = listener

    def set_usergroup(self, group_id: str, members: list[str]) -> None:
        self.standin.set_usergroup(group_id, members)

    def fail_next(
        self, method: str, *, status: int = 429, retry_after: int = 1, count: int = 1, delay: float = 0.0
    ) -> None:
        self.standin.fail_next(method, status=status, retry_after=retry_after, count=count, delay=delay)

    def reset(self) -> None:
        self.standin.reset()

    @property
    def held_back(self) -> int:
        return self.standin.held_back

    @property
    def workspace(self) -> SlackWorkspace:
        return self.standin.workspace

    def _secrets(self) -> tuple[str, str]:
        return self.standin._secrets()


async def _read_params(request: web.Request) -> JsonDict:
    """Query string plus a form or JSON body, with JSON-string fields decoded."""
    params: JsonDict = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = json.loads(await request.text() or "{}")
            except json.JSONDecodeError:
                body = {}
            if isinstance(body, dict):
                params.update(body)
        else:
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    for key in JSON_FIELDS:
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except json.JSONDecodeError:
                pass
    return params


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None


def _maybe_json(text: str) -> JsonDict | None:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _timeout_message(predicate: Callable[[], Any], timeout: float, description: str | None) -> str:
    if description is None:
        try:
            description = inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            description = getattr(predicate, "__qualname__", repr(predicate))
    return f"timed out after {timeout:g}s waiting for: {description[:300]}"
