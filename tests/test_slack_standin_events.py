"""The Slack stand-in's channel membership (`set_member`: `conversations.info` `is_member`, `not_in_channel` from
`chat.postMessage`) and its Events API callbacks (`send_event`, `update_usergroup`), signed as Slack signs them."""

from __future__ import annotations

import json

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackStandIn
from tests.standin_fixtures import (
    ALICE,
    BOB,
    CHANNEL,
    Receiver,
    client_fixture,  # noqa: F401  (the `client` fixture)
    receiver_fixture,  # noqa: F401  (the `receiver` fixture)
    standin_fixture,  # noqa: F401  (the `standin` fixture)
)


async def test_a_channel_the_bot_is_not_in(standin: SlackStandIn, client: AsyncWebClient) -> None:
    assert (await client.conversations_info(channel=CHANNEL))["channel"]["is_member"] is True
    standin.set_member(CHANNEL, False)
    assert (await client.conversations_info(channel=CHANNEL))["channel"]["is_member"] is False
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel=CHANNEL, text="hello")
    assert refused.value.response["error"] == "not_in_channel"
    assert standin.messages(CHANNEL) == []
    await client.chat_postMessage(channel=ALICE, text="a direct message")  # other conversations are unaffected
    standin.set_member(CHANNEL, True)
    await client.chat_postMessage(channel=CHANNEL, text="hello")
    assert [m.text for m in standin.messages(CHANNEL)] == ["hello"]


async def test_membership_change_is_sent_as_a_signed_event_callback(standin: SlackStandIn, receiver: Receiver) -> None:
    standin.set_usergroup("S0SRE", [ALICE, BOB])
    result = await standin.update_usergroup("S0SRE", [BOB, "U0NEW"])
    assert result.status == 200
    (sent,) = receiver.requests
    assert sent.valid and sent.headers["Content-Type"] == "application/json"
    envelope = json.loads(sent.body)
    assert envelope["type"] == "event_callback" and envelope["team_id"] == standin.team_id
    assert envelope["event_id"].startswith("Ev") and envelope["authorizations"][0]["is_bot"] is True
    event = envelope["event"]
    assert event["type"] == "subteam_members_changed" and event["subteam_id"] == "S0SRE"
    assert (event["added_users"], event["removed_users"]) == (["U0NEW"], [ALICE])
    assert standin.workspace.usergroup("S0SRE") == [BOB, "U0NEW"]

    forged = await standin.send_event({"type": "subteam_members_changed"}, signature="v0=" + "0" * 64)
    assert forged.status == 401 and not receiver.requests[-1].valid
