"""Shared pieces of the Slack stand-in's own tests (tests/test_slack_standin_*.py): a started stand-in, a
slack_sdk client on it, and a tiny app endpoint that checks signatures the way Bolt does.

Import the fixtures under their function names: `standin_fixture`, `client_fixture`, `receiver_fixture`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackStandIn

SECRET = "test-signing-secret-123"
TOKEN = "xoxb-standin"
CHANNEL = "C0OPS"
ALICE = "U0ALICE"
BOB = "U0BOB"

APPROVAL_BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "Deploy orders-pg"}},
    {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*Upgrade* 15.4 -> 16.2, see <https://wiki.example/rb|runbook>"},
        "fields": [
            {"type": "mrkdwn", "text": "*Proxy*\norders-proxy"},
            {"type": "mrkdwn", "text": "*Requested by*\n<@U0ALICE>"},
        ],
    },
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "plan hash `ab12` &amp; run 7"}]},
    {
        "type": "actions",
        "block_id": "approval",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "value": "run-7",
                "text": {"type": "plain_text", "text": "Approve"},
            },
            {
                "type": "button",
                "action_id": "reject",
                "value": "run-7",
                "text": {"type": "plain_text", "text": "Reject"},
            },
        ],
    },
]

MODAL = {
    "type": "modal",
    "callback_id": "plan-request",
    "title": {"type": "plain_text", "text": "Plan"},
    "submit": {"type": "plain_text", "text": "Plan"},
    "blocks": [
        {
            "type": "input",
            "block_id": "db",
            "label": {"type": "plain_text", "text": "Database"},
            "element": {"type": "plain_text_input", "action_id": "db_id"},
        }
    ],
}


@dataclass
class ReceivedRequest:
    body: str
    headers: dict[str, str]
    valid: bool

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body, keep_blank_values=True).items()}

    @property
    def payload(self) -> dict:
        return json.loads(self.form["payload"])


class Receiver:
    """A tiny app endpoint that checks signatures the way Bolt does and remembers what it got."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.verifier = SignatureVerifier(SECRET)
        self.reply: dict | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        valid = self.verifier.is_valid(
            body, request.headers.get("X-Slack-Request-Timestamp"), request.headers.get("X-Slack-Signature")
        )
        self.requests.append(ReceivedRequest(body, dict(request.headers), valid))
        if not valid:
            return web.json_response({"error": "invalid request"}, status=401)
        return web.json_response(self.reply) if self.reply else web.Response(text="")


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"


@pytest.fixture(name="standin")
async def standin_fixture() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(signing_secret=SECRET) as slack:
        yield slack


@pytest.fixture(name="client")
def client_fixture(standin: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=standin.base_url)


@pytest.fixture(name="receiver")
async def receiver_fixture(standin: SlackStandIn) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/slack/events", receiver.handle)
    runner, url = await serve(app)
    standin.app_url = url
    yield receiver
    await runner.cleanup()


async def post_raw(url: str, **kwargs: object) -> dict:
    async with aiohttp.ClientSession() as session, session.post(url, **kwargs) as response:
        return await response.json()
