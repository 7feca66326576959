"""The Slack stand-in's channel as a web page: the bot's messages rendered as Slack shows them, live, with threads,
and a viewer who acts as one of the demo's people: types `/bluegreen ...` and presses buttons, which reach the real
bot as signed requests (the stand-in's `send_command` and `click`, exactly as the tests send them).

    page = ChannelPage(standin, people=[Person("U0ALICE", "alice"), Person("U0BOB", "bob")])
    await page.start()          # on the stand-in's event loop (`SlackStandInThread.serve_page` does this)
    print(page.url)

A small HTTP server of its own, on the stand-in's event loop:
- `GET /`: the page; its CSS and script (sandbox/slack/static/) inline, so it needs no internet.
- `GET /state.json?as=U..&known=ETAG`: the channel as that person sees it (sandbox/slack/page_view.py), or
  `{"etag": ..., "unchanged": true}` when nothing changed; the page polls it.
- `POST /command` `{"as": "U..", "text": "/bluegreen ..."}` and `POST /click` `{"as", "message_ts", "block_id",
  "action_id"}`: JSON bodies only, so another site in the browser cannot post a form here (that needs a CORS
  preflight this server never grants). A click is looked up in the stand-in's copy of the message: the page names a
  button, it does not supply its value.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import aiohttp
from aiohttp import web

from sandbox.slack.http_server import SlackStandIn
from sandbox.slack.models import JsonDict
from sandbox.slack.page_view import Note, note_ts, render_view
from sandbox.slack.render import redact_secrets

__all__ = ["ChannelPage", "Person"]

logger = logging.getLogger(__name__)

POLL_MILLISECONDS = 300
MAX_COMMAND_LENGTH = 4000  # what Slack lets a person type in the message box


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str
    role: str = ""  # shown next to the switch: what this person may do


class ChannelPage:
    def __init__(
        self,
        standin: SlackStandIn,
        *,
        people: Sequence[Person],
        channel: str = "C0OPS",
        channel_label: str = "ops",
        command: str = "/bluegreen",
        suggestions: Sequence[str] = (),
        bot_name: str = "bluegreen-bot",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not people:
            raise ValueError("the page needs at least one person to act as")
        self.standin = standin
        self.people = list(people)
        self.channel = channel
        self.channel_label = channel_label
        self.command = command
        self.suggestions = list(suggestions)
        self.bot_name = bot_name
        self.host = host
        self.port = port
        self._notes: list[Note] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def _users(self) -> dict[str, str]:
        return {person.user_id: person.name for person in self.people}

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/", self._serve_page)
        app.router.add_get("/state.json", self._serve_state)
        app.router.add_post("/command", self._serve_command)
        app.router.add_post("/click", self._serve_click)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        logger.info("channel page on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- the page and its state

    async def _serve_page(self, request: web.Request) -> web.Response:
        config = {
            "people": [{"id": p.user_id, "name": p.name, "role": p.role} for p in self.people],
            "channel_label": self.channel_label,
            "command": self.command,
            "suggestions": self.suggestions,
            "poll_ms": POLL_MILLISECONDS,
        }
        page = (
            _asset("page.html")
            .replace("{{channel_label}}", html.escape(self.channel_label))
            .replace("{{style}}", _asset("page.css"))
            .replace("{{config}}", json.dumps(config).replace("</", "<\\/"))
            .replace("{{script}}", _asset("page.js"))
        )
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    def state(self, viewer: str) -> JsonDict:
        """The channel as `viewer` sees it, with an etag over the whole of it."""
        workspace = self.standin.workspace
        view = render_view(
            workspace.messages(self.channel),
            [e for e in workspace.ephemerals(viewer) if e.get("channel") == self.channel],
            list(self._notes),
            viewer=viewer,
            users=self._users,
            bot_user=workspace.state.bot_user_id,
            bot_name=self.bot_name,
        )
        body = redact_secrets(json.dumps(view.as_json()), self.standin._secrets())
        return {"etag": hashlib.sha256(body.encode()).hexdigest()[:16], **json.loads(body)}

    async def _serve_state(self, request: web.Request) -> web.Response:
        viewer = request.query.get("as", "")
        if viewer not in self._users:
            return _refuse(400, f"unknown person {viewer!r}: one of {sorted(self._users)}")
        state = self.state(viewer)
        if request.query.get("known") == state["etag"]:
            return web.json_response({"etag": state["etag"], "unchanged": True})
        return web.json_response(state, headers={"Cache-Control": "no-store"})

    # ---- acting as a person

    async def _serve_command(self, request: web.Request) -> web.Response:
        body, refusal = await self._read_action(request)
        if refusal is not None:
            return refusal
        user, typed = body["as"], str(body.get("text", "")).strip()
        name, _, text = typed.partition(" ")
        if name != self.command:
            return _refuse(400, f"this workspace has one slash command: type {self.command} followed by what to do")
        if len(typed) > MAX_COMMAND_LENGTH:
            return _refuse(400, f"at most {MAX_COMMAND_LENGTH} characters")
        self._notes.append(Note(note_ts(), user, "command", typed))
        try:
            result = await self.standin.send_command(user_id=user, text=text.strip(), channel_id=self.channel)
        except (TimeoutError, aiohttp.ClientError) as error:
            return self._failed(user, f"{self.command} failed: the app did not answer ({type(error).__name__})")
        if result.status != 200:
            return self._failed(user, f'{self.command} failed with the error "http_status_{result.status}"')
        answer = result.json
        if answer and (answer.get("text") or answer.get("blocks")):
            # Slack shows the acknowledgement's body to the person who typed the command, to them only.
            self._notes.append(Note(note_ts(), user, "reply", str(answer.get("text", "")), answer.get("blocks") or []))
        elif answer is None and result.body.strip():
            self._notes.append(Note(note_ts(), user, "reply", result.body.strip()))
        return web.json_response({"ok": True, "status": result.status, "elapsed_ms": round(result.elapsed * 1000)})

    async def _serve_click(self, request: web.Request) -> web.Response:
        body, refusal = await self._read_action(request)
        if refusal is not None:
            return refusal
        user = body["as"]
        message_ts, block_id, action_id = (str(body.get(key, "")) for key in ("message_ts", "block_id", "action_id"))
        button = self._find_button(user, message_ts, block_id, action_id)
        if button is None:
            return _refuse(409, "that button is no longer on the message (it changed since the page showed it)")
        try:
            result = await self.standin.click(
                user_id=user,
                action_id=action_id,
                value=str(button.get("value", "")),
                channel_id=self.channel,
                message_ts=message_ts,
                block_id=block_id,
            )
        except (TimeoutError, aiohttp.ClientError) as error:
            return self._failed(user, f"the app did not answer the click ({type(error).__name__})")
        except LookupError:
            return _refuse(409, "that message is gone")
        if result.status != 200:
            return self._failed(user, f"the app answered the click with HTTP {result.status}")
        return web.json_response({"ok": True, "status": result.status, "elapsed_ms": round(result.elapsed * 1000)})

    async def _read_action(self, request: web.Request) -> tuple[JsonDict, web.Response | None]:
        if request.content_type != "application/json":
            return {}, _refuse(415, "send JSON (Content-Type: application/json)")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}, _refuse(400, "the body is not JSON")
        if not isinstance(body, dict) or body.get("as") not in self._users:
            return {}, _refuse(400, f"say who acts: 'as' is one of {sorted(self._users)}")
        return body, None

    def _find_button(self, user: str, message_ts: str, block_id: str, action_id: str) -> JsonDict | None:
        workspace = self.standin.workspace
        message = workspace.find_message(self.channel, message_ts)
        if message is not None:
            blocks = message.blocks
        else:
            ephemeral = workspace.find_ephemeral(self.channel, message_ts)
            if ephemeral is None or ephemeral.get("user") != user:
                return None
            blocks = ephemeral.get("blocks") or []
        for block in blocks:
            if block.get("type") not in ("actions", "section") or str(block.get("block_id", "")) != block_id:
                continue
            elements = block.get("elements") or [block.get("accessory") or {}]
            for element in elements:
                if element.get("type") == "button" and element.get("action_id") == action_id:
                    return element
        return None

    def _failed(self, user: str, text: str) -> web.Response:
        self._notes.append(Note(note_ts(), user, "error", text))
        return web.json_response({"ok": False, "error": text}, status=502)


def _asset(name: str) -> str:
    return resources.files("sandbox.slack").joinpath("static", name).read_text(encoding="utf-8")


def _refuse(status: int, error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status)
