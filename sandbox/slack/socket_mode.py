"""Socket Mode as Slack serves it, on the stand-in's own HTTP server.

`apps.connections.open`, called with the app-level token (`xapp-...`) in the Authorization header, answers a one-time
`ws://.../link/?ticket=...` URL. A connection to it gets `hello`, then envelopes, `{"envelope_id", "type", "payload",
"accepts_response_payload"}` of type `slash_commands`, `interactive` or `events_api`, each of which the app
acknowledges by sending back `{"envelope_id": ...}`, with a `payload` when the envelope accepts one, within 3 seconds.
`disconnect` asks the app to open a new connection (Slack sends it before refreshing a connection).

Every envelope is recorded with what became of it: acknowledged in time (and the ack's payload), or not (Slack then
tells the user the command failed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from sandbox.slack.models import JsonDict

__all__ = ["ACK_TIMEOUT", "OPEN_METHOD", "Envelope", "SocketMode"]

logger = logging.getLogger(__name__)

OPEN_METHOD = "apps.connections.open"
LINK_PATH = "/link/"
ACK_TIMEOUT = 3.0  # seconds Slack waits for an envelope's acknowledgement
DISCONNECT_REASONS = ("warning", "refresh_requested", "link_disabled")
NOT_APP_LEVEL = ("xoxb-", "xoxp-", "xoxe-")  # bot, user and refresh tokens: refused by apps.connections.open


@dataclass(frozen=True)
class Envelope:
    """One envelope sent over Socket Mode and what became of it."""

    envelope_id: str
    type: str  # "slash_commands" | "interactive" | "events_api"
    payload: JsonDict
    accepts_response_payload: bool
    acked: bool  # acknowledged within the ack timeout
    seconds: float  # until the ack, or the timeout when none came
    ack_payload: JsonDict | None = None


class SocketMode:
    """The stand-in's Socket Mode endpoint: connections opened by `apps.connections.open`, envelopes and their acks.

    Runs on the stand-in's event loop; `connected`, `connections` and `envelopes()` are safe from any thread.
    """

    def __init__(self, *, app_token: str, app_id: str, ack_timeout: float = ACK_TIMEOUT) -> None:
        self.app_token = app_token
        self.app_id = app_id
        self.ack_timeout = ack_timeout
        self._lock = threading.Lock()
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._awaiting: dict[str, asyncio.Future[JsonDict]] = {}
        self._envelopes: list[Envelope] = []
        self._served = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(LINK_PATH, self._serve_link)

    # ---- apps.connections.open

    def open_connection(self, root_url: str, *, bearer: str | None, form_token: str | None) -> JsonDict:
        """`apps.connections.open`'s answer. Slack takes the app-level token from the Authorization header only, and
        refuses a bot or user token (`not_allowed_token_type`)."""
        if bearer is None:
            return {"ok": False, "error": "invalid_auth" if form_token else "not_authed"}
        if bearer.startswith(NOT_APP_LEVEL):
            return {"ok": False, "error": "not_allowed_token_type"}
        if bearer != self.app_token:
            return {"ok": False, "error": "invalid_auth"}
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
        ws_root = "ws" + root_url.removeprefix("http")
        return {"ok": True, "url": f"{ws_root}{LINK_PATH}?ticket={ticket}&app_id={self.app_id}"}

    # ---- state, from any thread

    @property
    def connections(self) -> int:
        with self._lock:
            return sum(1 for socket in self._sockets if not socket.closed)

    @property
    def served(self) -> int:
        """Connections opened so far (a reconnecting app opens a new one)."""
        with self._lock:
            return self._served

    @property
    def connected(self) -> bool:
        return self.connections > 0

    def envelopes(self, type_: str | None = None) -> list[Envelope]:
        with self._lock:
            return [e for e in self._envelopes if type_ is None or e.type == type_]

    def forget(self) -> None:
        with self._lock:
            self._envelopes = []

    # ---- delivering, on the stand-in's loop

    async def deliver(self, type_: str, payload: JsonDict, *, accepts_response_payload: bool) -> Envelope:
        """Sends `payload` in an envelope over the newest connection and waits up to `ack_timeout` for its ack."""
        socket = self._newest()
        if socket is None:
            raise RuntimeError(
                "no app is connected over Socket Mode: start it with the stand-in's Web API URL as SLACK_API_URL and "
                "its app token as SLACK_APP_TOKEN (`python -m bot serve --socket`), then wait for `connected`"
            )
        envelope_id = str(uuid.uuid4())
        message: JsonDict = {
            "envelope_id": envelope_id,
            "type": type_,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if type_ == "events_api":
            message |= {"retry_attempt": 0, "retry_reason": ""}
        ack: asyncio.Future[JsonDict] = asyncio.get_running_loop().create_future()
        self._awaiting[envelope_id] = ack
        started = time.monotonic()
        try:
            await socket.send_str(json.dumps(message))
            answer = await asyncio.wait_for(ack, self.ack_timeout)
        except TimeoutError:
            logger.info(
                "slack stand-in: envelope %s (%s) not acknowledged within %gs", envelope_id, type_, self.ack_timeout
            )
            record = Envelope(envelope_id, type_, payload, accepts_response_payload, False, self.ack_timeout)
        else:
            ack_payload = answer.get("payload")
            record = Envelope(
                envelope_id,
                type_,
                payload,
                accepts_response_payload,
                True,
                time.monotonic() - started,
                ack_payload if isinstance(ack_payload, dict) else None,
            )
        finally:
            self._awaiting.pop(envelope_id, None)
        with self._lock:
            self._envelopes.append(record)
        return record

    async def disconnect(self, reason: str = "refresh_requested") -> int:
        """Sends every connection Slack's `disconnect` message; the app is expected to open a new connection.
        Returns how many connections were told."""
        if reason not in DISCONNECT_REASONS:
            raise ValueError(f"Slack's disconnect reasons are {', '.join(DISCONNECT_REASONS)}, not {reason!r}")
        told = 0
        for socket in self._open():
            await socket.send_str(json.dumps({"type": "disconnect", "reason": reason, "debug_info": _DEBUG_INFO}))
            told += 1
        return told

    async def close(self) -> None:
        for socket in self._open():
            await socket.close()
        for ack in self._awaiting.values():
            ack.cancel()

    # ---- the WebSocket endpoint

    async def _serve_link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        with self._lock:
            known = ticket in self._tickets
            self._tickets.discard(ticket)  # one connection per URL
        if not known:
            return web.Response(status=401, text="invalid_ticket: call apps.connections.open for a new URL")
        socket = web.WebSocketResponse(autoping=True)  # answers the client's pings with pongs
        await socket.prepare(request)
        with self._lock:
            self._sockets.append(socket)
            self._served += 1
        try:
            await socket.send_str(json.dumps(self._hello()))
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self._receive(message.data)
        finally:
            with self._lock:
                self._sockets.remove(socket)
        return socket

    def _receive(self, data: str) -> None:
        try:
            answer = json.loads(data)
        except json.JSONDecodeError:
            logger.warning("slack stand-in: Socket Mode message that is not JSON ignored")
            return
        envelope_id = answer.get("envelope_id") if isinstance(answer, dict) else None
        ack = self._awaiting.get(envelope_id) if isinstance(envelope_id, str) else None
        if ack is None or ack.done():
            logger.info("slack stand-in: ack for an envelope not awaited (%s) ignored", envelope_id)
            return
        ack.set_result(answer)

    def _hello(self) -> JsonDict:
        return {
            "type": "hello",
            "num_connections": self.connections,
            "debug_info": _DEBUG_INFO,
            "connection_info": {"app_id": self.app_id},
        }

    def _open(self) -> list[web.WebSocketResponse]:
        with self._lock:
            return [socket for socket in self._sockets if not socket.closed]

    def _newest(self) -> web.WebSocketResponse | None:
        sockets = self._open()
        return sockets[-1] if sockets else None


_DEBUG_INFO: JsonDict = {"host": "slack-standin", "build_number": 1, "approximate_connection_time": 18060}
