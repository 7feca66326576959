"""The Slack stand-in's Socket Mode, as Slack documents it: `apps.connections.open` takes only the app-level token
(in the Authorization header), the connection opens with `hello`, commands and clicks arrive as envelopes the app must
acknowledge within the ack timeout (an envelope left unacknowledged is recorded), and `disconnect` makes slack_sdk's
client open a new connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackStandIn
from sandbox.slack.signed_requests import NO_ACK
from sandbox.slack.socket_mode import ACK_TIMEOUT
from tests.slack_fixtures import ALICE, BOT_TOKEN, OPS, slack_fixture  # noqa: F401  (the `slack` fixture)

APP_TOKEN = "xapp-1-standin"  # SlackStandIn's default app-level token


async def test_apps_connections_open_takes_only_the_app_level_token_in_the_header(slack: SlackStandIn) -> None:
    client = AsyncWebClient(base_url=slack.base_url)
    with pytest.raises(SlackApiError) as refused:
        await client.apps_connections_open(app_token=BOT_TOKEN)
    assert refused.value.response["error"] == "not_allowed_token_type"

    async with aiohttp.ClientSession() as http:
        form = await http.post(f"{slack.base_url}apps.connections.open", data={"token": APP_TOKEN})
        assert (await form.json())["error"] == "invalid_auth"  # Slack wants it in the Authorization header
        anonymous = await http.post(f"{slack.base_url}apps.connections.open")
        assert (await anonymous.json())["error"] == "not_authed"
        # An app-level token is for apps.connections.open only.
        post = await http.post(
            f"{slack.base_url}chat.postMessage",
            data={"channel": OPS, "text": "hi"},
            headers={"Authorization": f"Bearer {APP_TOKEN}"},
        )
        assert (await post.json())["error"] == "not_allowed_token_type"

    opened = await client.apps_connections_open(app_token=APP_TOKEN)
    assert opened["url"].startswith(f"ws://{slack.host}:{slack.port}/link/?ticket=")
    assert [call.ok for call in slack.calls("apps.connections.open")] == [False, False, False, True]
    assert not slack.messages(OPS)


@pytest.fixture
async def raw_socket(slack: SlackStandIn) -> AsyncIterator[tuple[aiohttp.ClientWebSocketResponse, str]]:
    """A Socket Mode connection opened by hand (no SDK), and the URL it was opened with."""
    url = (await AsyncWebClient(base_url=slack.base_url).apps_connections_open(app_token=APP_TOKEN))["url"]
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as socket:
        yield socket, url


async def test_a_connection_opens_with_hello_and_its_url_serves_once(
    slack: SlackStandIn, raw_socket: tuple[aiohttp.ClientWebSocketResponse, str]
) -> None:
    socket, url = raw_socket
    hello = await socket.receive_json(timeout=5)
    assert hello["type"] == "hello"
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": slack.api_app_id}
    assert slack.socket_connected
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as again:
            await http.ws_connect(url)
    assert again.value.status == 401


async def test_an_unacknowledged_envelope_is_recorded_and_an_acknowledged_one_answers(
    slack: SlackStandIn, raw_socket: tuple[aiohttp.ClientWebSocketResponse, str]
) -> None:
    assert ACK_TIMEOUT == 3.0  # Slack's limit; shortened below to keep the test fast
    slack.socket_mode.ack_timeout = 0.3
    socket, _ = raw_socket
    assert (await socket.receive_json(timeout=5))["type"] == "hello"

    ignored = await slack.send_command(user_id=ALICE, text="status orders-pg", channel_id=OPS)
    envelope = await socket.receive_json(timeout=5)
    assert ignored.status == NO_ACK and ignored.json is None

    answer = {"response_type": "ephemeral", "text": "orders-pg is available"}
    sending = slack.send_command(user_id=ALICE, text="status orders-pg", channel_id=OPS)
    task = asyncio.ensure_future(sending)
    second = await socket.receive_json(timeout=5)
    await socket.send_str(json.dumps({"envelope_id": second["envelope_id"], "payload": answer}))
    acked = await task

    # The same fields a signed HTTP slash command carries, in a `slash_commands` envelope.
    assert envelope["type"] == "slash_commands" and envelope["accepts_response_payload"] is True
    form, _, _ = slack.command_payload(user_id=ALICE, text="status orders-pg", channel_id=OPS)
    assert set(envelope["payload"]) == set(form)
    assert envelope["payload"]["command"] == "/bluegreen" and envelope["payload"]["user_id"] == ALICE
    assert envelope["payload"]["response_url"] == ignored.response_url

    assert acked.status == 200 and acked.json == answer
    recorded = slack.envelopes("slash_commands")
    assert [(e.envelope_id, e.acked) for e in recorded] == [
        (envelope["envelope_id"], False),
        (second["envelope_id"], True),
    ]
    assert recorded[0].seconds == pytest.approx(0.3) and recorded[1].ack_payload == answer
    assert not slack.calls("chat.postMessage")  # nothing went over HTTP, and nothing was posted


async def test_disconnect_makes_the_sdk_client_open_a_new_connection(slack: SlackStandIn) -> None:
    client = SocketModeClient(app_token=APP_TOKEN, web_client=AsyncWebClient(base_url=slack.base_url))
    try:
        await client.connect()
        await slack.wait_for(lambda: slack.socket_connected, timeout=5, description="the SDK client connected")
        assert await slack.socket_mode.disconnect("refresh_requested") == 1
        await slack.wait_for(
            lambda: slack.socket_mode.served == 2 and slack.socket_mode.connections == 1,
            timeout=5,
            description="a second connection opened and the first one closed",
        )
    finally:
        await client.close()
    assert [call.ok for call in slack.calls("apps.connections.open")] == [True, True]
    with pytest.raises(ValueError, match="refresh_requested"):
        await slack.socket_mode.disconnect("bye")
