"""The stand-in's token scopes, as Slack reports and enforces them: every authenticated answer names the granted
scopes in `X-OAuth-Scopes`, and a method whose scope was not granted answers `missing_scope` and changes nothing."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackStandIn
from sandbox.slack.state import DEFAULT_SCOPES
from tests.standin_fixtures import (
    CHANNEL,
    client_fixture,  # noqa: F401  (the `client` fixture)
    standin_fixture,  # noqa: F401  (the `standin` fixture)
)


def granted(headers: dict) -> list[str]:
    value = next(v for k, v in headers.items() if k.lower() == "x-oauth-scopes")
    return value.split(",")


async def test_every_answer_names_the_granted_scopes(standin: SlackStandIn, client: AsyncWebClient) -> None:
    assert granted((await client.auth_test()).headers) == list(DEFAULT_SCOPES)
    standin.set_scopes(["commands", "chat:write"])
    assert granted((await client.auth_test()).headers) == ["commands", "chat:write"]
    with pytest.raises(SlackApiError) as refused:
        await AsyncWebClient(token="xoxb-wrong", base_url=standin.base_url).auth_test()
    assert not any(k.lower() == "x-oauth-scopes" for k in refused.value.response.headers)


async def test_a_method_without_its_scope_answers_missing_scope(standin: SlackStandIn, client: AsyncWebClient) -> None:
    standin.set_scopes([scope for scope in DEFAULT_SCOPES if scope != "chat:write"])
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel=CHANNEL, text="hello")
    assert (refused.value.response["error"], refused.value.response["needed"]) == ("missing_scope", "chat:write")
    assert standin.messages(CHANNEL) == []
    standin.set_scopes(list(DEFAULT_SCOPES))
    await client.chat_postMessage(channel=CHANNEL, text="hello")
    assert [m.text for m in standin.messages(CHANNEL)] == ["hello"]


async def test_membership_shows_in_conversations_info_and_blocks_posting(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    assert (await client.conversations_info(channel=CHANNEL))["channel"]["is_member"] is True
    standin.set_member(CHANNEL, False)
    assert (await client.conversations_info(channel=CHANNEL))["channel"]["is_member"] is False
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel=CHANNEL, text="hello")
    assert refused.value.response["error"] == "not_in_channel"
    standin.set_member(CHANNEL, True)
    await client.chat_postMessage(channel=CHANNEL, text="hello")
    assert len(standin.messages(CHANNEL)) == 1
