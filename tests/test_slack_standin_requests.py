"""The Slack stand-in's signed requests to the app (slash commands, clicks, view submissions) and the response
URLs they carry, against a signature-checking endpoint, the real Bolt app, and from synchronous code.
"""

from __future__ import annotations

import http.server
import threading
import time

import pytest
from slack_bolt.async_app import AsyncApp
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from sandbox.slack import SlackStandIn, SlackStandInThread
from tests.standin_fixtures import (
    ALICE,
    APPROVAL_BLOCKS,
    BOB,
    CHANNEL,
    MODAL,
    SECRET,
    TOKEN,
    Receiver,
    client_fixture,  # noqa: F401  (the `client` fixture)
    receiver_fixture,  # noqa: F401  (the `receiver` fixture)
    serve,
    standin_fixture,  # noqa: F401  (the `standin` fixture)
)

# ---- requests to the app


async def test_signed_command_verifies_and_forgeries_do_not(standin: SlackStandIn, receiver: Receiver) -> None:
    result = await standin.send_command(user_id=ALICE, text="plan orders-pg", channel_id="C0DB")
    assert result.status == 200 and result.elapsed > 0
    sent = receiver.requests[0]
    assert sent.valid
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = sent.form
    assert {k: form[k] for k in ("user_id", "text", "command", "channel_id", "team_id")} == {
        "user_id": ALICE,
        "text": "plan orders-pg",
        "command": "/bluegreen",
        "channel_id": "C0DB",
        "team_id": "T0STANDIN",
    }
    assert (form["response_url"], form["trigger_id"]) == (result.response_url, result.trigger_id)
    assert (
        SignatureVerifier("another-secret").is_valid(
            sent.body, sent.headers["X-Slack-Request-Timestamp"], sent.headers["X-Slack-Signature"]
        )
        is False
    )

    forged = await standin.send_command(user_id=ALICE, text="plan", signature="v0=" + "0" * 64)
    replayed = await standin.send_command(user_id=ALICE, text="plan", timestamp=int(time.time()) - 600)
    unsigned = await standin.send_command(user_id=ALICE, text="plan", sign=False)
    assert [r.status for r in (forged, replayed, unsigned)] == [401, 401, 401]
    assert forged.json == {"error": "invalid request"}
    assert "X-Slack-Signature" not in receiver.requests[-1].headers
    assert [r.valid for r in receiver.requests] == [True, False, False, False]


async def test_headers_override_replaces_signed_headers(standin: SlackStandIn, receiver: Receiver) -> None:
    result = await standin.send_command(user_id=ALICE, text="plan", headers_override={"X-Slack-Request-Timestamp": "1"})
    assert result.status == 401
    assert receiver.requests[0].headers["X-Slack-Request-Timestamp"] == "1"


async def test_response_url_posts_are_recorded_and_applied(standin: SlackStandIn, receiver: Receiver) -> None:
    command = await standin.send_command(user_id=ALICE, text="plan")
    respond = AsyncWebhookClient(command.response_url)

    assert (await respond.send(text="planning, only you see this")).status_code == 200
    assert (await respond.send(text="plan posted", response_type="in_channel", blocks=APPROVAL_BLOCKS)).body == "ok"

    (ephemeral,) = standin.ephemerals(ALICE)
    assert (ephemeral["text"], ephemeral["source"]) == ("planning, only you see this", "response_url")
    (message,) = standin.messages(CHANNEL)
    assert (message.text, message.blocks) == ("plan posted", APPROVAL_BLOCKS)
    recorded = standin.calls("response_url")
    assert [c.params.get("response_type") for c in recorded] == [None, "in_channel"]
    assert recorded[1].params["blocks"] == APPROVAL_BLOCKS

    unknown = await AsyncWebhookClient(standin.root_url + "/response/R0NOPE").send(text="x")
    assert unknown.status_code == 404


async def test_click_response_url_replaces_then_deletes_the_original(
    standin: SlackStandIn, client: AsyncWebClient, receiver: Receiver
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="approve?", blocks=APPROVAL_BLOCKS)
    click = await standin.click(
        user_id=BOB, action_id="approve", value="run-7", channel_id=CHANNEL, message_ts=posted["ts"]
    )
    respond = AsyncWebhookClient(click.response_url)

    await respond.send(text="Approved by <@U0BOB>", replace_original=True, blocks=APPROVAL_BLOCKS[:1])
    (message,) = standin.messages(CHANNEL)
    assert (message.text, message.blocks, message.edits) == ("Approved by <@U0BOB>", APPROVAL_BLOCKS[:1], 1)

    await respond.send(delete_original=True)
    assert standin.messages(CHANNEL) == []
    assert [c.params.get("delete_original") for c in standin.calls("response_url")] == [None, True]


async def test_click_sends_a_block_actions_payload_with_the_current_message(
    standin: SlackStandIn, client: AsyncWebClient, receiver: Receiver
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="approve?", blocks=[{"type": "divider"}])
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="approve? (v2)", blocks=APPROVAL_BLOCKS)

    result = await standin.click(
        user_id=BOB,
        action_id="approve",
        value="run-7",
        channel_id=CHANNEL,
        message_ts=posted["ts"],
        block_id="approval",
    )
    assert result.status == 200
    sent = receiver.requests[0]
    assert sent.valid
    payload = sent.payload
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == BOB
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert payload["channel"]["id"] == CHANNEL
    assert (payload["message"]["ts"], payload["message"]["text"]) == (posted["ts"], "approve? (v2)")
    assert payload["message"]["blocks"] == APPROVAL_BLOCKS
    (action,) = payload["actions"]
    assert {k: action[k] for k in ("action_id", "block_id", "value", "type")} == {
        "action_id": "approve",
        "block_id": "approval",
        "value": "run-7",
        "type": "button",
    }
    assert (payload["trigger_id"], payload["response_url"]) == (result.trigger_id, result.response_url)

    with pytest.raises(LookupError):
        await standin.click(user_id=BOB, action_id="approve", value="x", channel_id=CHANNEL, message_ts="1.000001")


async def test_submit_view_sends_view_submission_and_returns_the_apps_answer(
    standin: SlackStandIn, receiver: Receiver
) -> None:
    receiver.reply = {"response_action": "errors", "errors": {"db": "unknown database"}}
    values = {"db": {"db_id": {"type": "plain_text_input", "value": "orders-pg"}}}
    result = await standin.submit_view(user_id=ALICE, view={**MODAL, "id": "V0001"}, values=values)

    assert result.json == receiver.reply
    payload = receiver.requests[0].payload
    assert receiver.requests[0].valid
    assert (payload["type"], payload["user"]["id"]) == ("view_submission", ALICE)
    assert (payload["view"]["callback_id"], payload["view"]["id"]) == ("plan-request", "V0001")
    assert payload["view"]["state"]["values"] == values


async def test_requests_to_the_app_need_an_app_url(standin: SlackStandIn) -> None:
    with pytest.raises(RuntimeError, match="app_url"):
        await standin.send_command(user_id=ALICE, text="plan")


async def test_the_real_bolt_app_runs_against_the_standin(standin: SlackStandIn) -> None:
    app = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=standin.base_url), signing_secret=SECRET)

    @app.command("/bluegreen")
    async def plan(ack, respond, command, client) -> None:
        await ack()
        await respond(f"Planning {command['text']}")
        await client.chat_postMessage(channel=command["channel_id"], text="Approve?", blocks=APPROVAL_BLOCKS)

    @app.action("approve")
    async def approve(ack, respond, body) -> None:
        await ack()
        await respond(text=f"Approved by <@{body['user']['id']}>", replace_original=True)

    runner, standin.app_url = await serve(app.web_app())
    try:
        command = await standin.send_command(user_id=ALICE, text="orders-pg")
        assert command.status == 200
        await standin.wait_for(lambda: standin.messages(CHANNEL) and standin.ephemerals(ALICE))
        posted = standin.messages(CHANNEL)[0]

        click = await standin.click(
            user_id=BOB, action_id="approve", value="run-7", channel_id=CHANNEL, message_ts=posted.ts
        )
        assert click.status == 200
        await standin.wait_for(lambda: standin.messages(CHANNEL)[0].edits == 1)

        assert standin.messages(CHANNEL)[0].text == "Approved by <@U0BOB>"
        assert standin.ephemerals(ALICE)[0]["text"] == "Planning orders-pg"
        methods = [c.method for c in standin.calls()]
        assert methods.count("chat.postMessage") == 1 and methods.count("response_url") == 2
        assert "auth.test" in methods
        forged = await standin.send_command(user_id=ALICE, text="orders-pg", signature="v0=forged")
        assert forged.status == 401
    finally:
        await runner.cleanup()


# ---- from synchronous code


class _SyncReceiver(http.server.BaseHTTPRequestHandler):
    verifier = SignatureVerifier(SECRET)
    results: list[bool] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        valid = self.verifier.is_valid(
            body, self.headers.get("X-Slack-Request-Timestamp"), self.headers.get("X-Slack-Signature")
        )
        self.results.append(valid)
        self.send_response(200 if valid else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_thread_wrapper_serves_sync_clients_and_sends_commands() -> None:
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SyncReceiver)
    _SyncReceiver.results = []
    threading.Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        with SlackStandInThread(signing_secret=SECRET) as slack:
            slack.app_url = f"http://127.0.0.1:{receiver.server_address[1]}/slack/events"
            seen_from_thread: list[str] = []
            slack.on_message = lambda event, message: seen_from_thread.append(threading.current_thread().name)

            WebClient(token=TOKEN, base_url=slack.base_url).chat_postMessage(channel=CHANNEL, text="from sync")
            slack.wait_for(lambda: slack.messages(CHANNEL), timeout=2)
            assert slack.messages(CHANNEL)[0].text == "from sync"
            assert seen_from_thread == ["slack-standin"]

            result = slack.send_command(user_id=ALICE, text="plan")
            assert result.status == 200 and _SyncReceiver.results == [True]
            assert slack.send_command(user_id=ALICE, text="plan", signature="v0=bad").status == 401
            assert [c.method for c in slack.calls()] == ["chat.postMessage"]
            assert "from sync" in slack.render_channel(CHANNEL)
            with pytest.raises(TimeoutError):
                slack.wait_for(lambda: False, timeout=0.05)
    finally:
        receiver.shutdown()
        receiver.server_close()
