"""A local stand-in for Slack: serves the Web API and response URLs over HTTP, and sends slash commands, button clicks
and view submissions to the real Bolt app as a chosen user: signed HTTP requests to `app_url`, or envelopes over
Socket Mode (sandbox/slack/socket_mode.py) once the app has connected with the app-level token.

    async with SlackStandIn(signing_secret=secret) as slack:
        client = AsyncWebClient(token="xoxb-standin", base_url=slack.base_url)
        slack.app_url = "http://127.0.0.1:3000/slack/events"
        result = await slack.send_command(user_id="U0ALICE", text="plan orders-pg")
        await slack.wait_for(lambda: slack.messages("C0OPS"))

`SlackStandInThread` (sandbox/slack/threaded.py) runs the same thing on its own event loop for synchronous tests
and other threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from sandbox.slack.controls import POLL_INTERVAL, StandInControls, timeout_message
from sandbox.slack.faults import HeldBackCalls, fault_response
from sandbox.slack.models import JsonDict
from sandbox.slack.signed_requests import SignedRequests
from sandbox.slack.socket_mode import ACK_TIMEOUT, OPEN_METHOD, SocketMode
from sandbox.slack.workspace import SlackWorkspace

__all__ = ["SlackStandIn"]

logger = logging.getLogger(__name__)

JSON_FIELDS = ("blocks", "view", "metadata")  # form bodies carry these as JSON strings
_RESPONSE_FIELDS = ("response_type", "replace_original", "delete_original", "text", "blocks", "thread_ts")


class SlackStandIn(StandInControls, SignedRequests):
    def __init__(
        self,
        *,
        signing_secret: str,
        bot_token: str = "xoxb-standin",
        app_token: str = "xapp-1-standin",
        app_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        team_id: str = "T0STANDIN",
        bot_user_id: str = "UBLUEGREEN",
        app_request_timeout: float = 10.0,
        ack_timeout: float = ACK_TIMEOUT,
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
        self.socket_mode = SocketMode(app_token=app_token, app_id=self.api_app_id, ack_timeout=ack_timeout)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._held_back = HeldBackCalls()

    def __repr__(self) -> str:  # no secrets in reprs
        return f"SlackStandIn(root={self.root_url if self._runner else None!r}, app_url={self.app_url!r})"

    # ---- lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._serve_web_api)
        app.router.add_post("/response/{response_id}", self._serve_response_url)
        self.socket_mode.add_routes(app)
        # No access log: a client could put the token in a query string.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._held_back.open()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.app_request_timeout))
        logger.info("slack stand-in listening on %s", self.root_url)

    async def stop(self) -> None:
        self._held_back.release_all()  # wakes handlers held back by a `delay` fault
        await self.socket_mode.close()
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

    @property
    def trigger_ttl(self) -> float:
        return self.workspace.trigger_ttl

    @trigger_ttl.setter
    def trigger_ttl(self, seconds: float) -> None:
        self.workspace.trigger_ttl = seconds

    @property
    def held_back(self) -> int:
        """How many calls a `delay` fault is holding back right now (not applied, not recorded yet)."""
        return self._held_back.count

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
                raise TimeoutError(timeout_message(predicate, timeout, description))
            await asyncio.sleep(POLL_INTERVAL)

    def _secrets(self) -> tuple[str, ...]:
        return (self._signer.signing_secret, self._bot_token, self.socket_mode.app_token)

    # ---- the Web API and response URLs

    async def _serve_web_api(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        method = request.match_info["method"]
        params = await _read_params(request)
        body_token = params.pop("token", None)
        token = _bearer_token(request) or body_token

        fault = self.workspace.take_fault(method)
        if fault is not None and fault.delay > 0:
            await self._held_back.hold(fault.delay)
        elif fault is not None:
            self.workspace.record(method, params, arrived, fault.status, False)
            return fault_response(fault)

        if method == OPEN_METHOD:
            answer: JsonDict = self.socket_mode.open_connection(
                self.root_url, bearer=_bearer_token(request), form_token=body_token
            )
            self.workspace.record(method, params, arrived, 200, bool(answer.get("ok")))
            return web.json_response(answer)
        if token == self.socket_mode.app_token:  # an app-level token serves apps.connections.open only
            answer = {"ok": False, "error": "not_allowed_token_type"}
        elif token != self._bot_token:
            answer = {"ok": False, "error": "invalid_auth"}
        else:
            answer = self.workspace.call(method, params)
        self.workspace.record(method, params, arrived, 200, bool(answer.get("ok")))
        if token != self._bot_token:
            return web.json_response(answer)
        # Slack names the token's scopes on every answer to an authenticated call.
        return web.json_response(answer, headers={"X-OAuth-Scopes": ",".join(self.workspace.scopes())})

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
