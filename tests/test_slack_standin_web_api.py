"""The Slack stand-in's Web API, exercised over real HTTP with slack_sdk clients: chat.*, views.*, users and
conversations, message metadata, and history and thread paging.
"""

from __future__ import annotations

import json

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackStandIn
from tests.standin_fixtures import (
    ALICE,
    APPROVAL_BLOCKS,
    BOB,
    CHANNEL,
    MODAL,
    TOKEN,
    Receiver,
    client_fixture,  # noqa: F401  (the `client` fixture)
    post_raw,
    receiver_fixture,  # noqa: F401  (the `receiver` fixture)
    standin_fixture,  # noqa: F401  (the `standin` fixture)
)

# ---- Web API methods


async def test_auth_test_checks_the_bearer_token(standin: SlackStandIn, client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert (answer["user_id"], answer["team_id"]) == ("UBLUEGREEN", "T0STANDIN")

    with pytest.raises(SlackApiError) as wrong:
        await AsyncWebClient(token="xoxb-wrong", base_url=standin.base_url).auth_test()
    assert wrong.value.response["error"] == "invalid_auth"
    assert (await post_raw(standin.base_url + "auth.test"))["error"] == "invalid_auth"

    calls = standin.calls("auth.test")
    assert [c.ok for c in calls] == [True, False, False]
    assert all("token" not in c.params for c in calls)


async def test_thread_replies_broadcasts_and_updates_show_in_messages(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="Plan for orders-pg", blocks=APPROVAL_BLOCKS)
    assert parent["channel"] == CHANNEL
    first = await client.chat_postMessage(channel=CHANNEL, thread_ts=parent["ts"], text="step 1 done")
    # Replying to a reply lands in the parent's thread, as in Slack.
    second = await client.chat_postMessage(
        channel=CHANNEL, thread_ts=first["ts"], text="switchover done", reply_broadcast=True
    )
    await client.chat_update(channel=CHANNEL, ts=parent["ts"], text="Plan for orders-pg (approved)")
    await client.chat_update(channel=CHANNEL, ts=first["ts"], text="step 1 done in 4 s")

    assert parent["ts"] < first["ts"] < second["ts"]
    top = standin.messages(CHANNEL)
    assert [m.ts for m in top] == [parent["ts"], second["ts"]]
    head = top[0]
    assert head.text == "Plan for orders-pg (approved)"
    assert head.blocks == APPROVAL_BLOCKS  # chat.update without blocks keeps them
    assert head.edits == 1
    assert [r.text for r in head.replies] == ["step 1 done in 4 s", "switchover done"]
    assert top[1].broadcast and top[1].thread_ts == parent["ts"]

    thread = standin.thread(CHANNEL, parent["ts"])
    assert [m.ts for m in thread] == [parent["ts"], first["ts"], second["ts"]]
    assert thread[1].edits == 1


async def test_timestamps_stay_unique_under_a_burst(standin: SlackStandIn, client: AsyncWebClient) -> None:
    answers = [await client.chat_postMessage(channel=CHANNEL, text=f"m{i}") for i in range(30)]
    stamps = [a["ts"] for a in answers]
    assert stamps == sorted(set(stamps))


async def test_form_encoded_bodies_and_token_in_the_body(standin: SlackStandIn) -> None:
    answer = await post_raw(
        standin.base_url + "chat.postMessage",
        data={"token": TOKEN, "channel": CHANNEL, "text": "hi", "blocks": json.dumps(APPROVAL_BLOCKS[:1])},
    )
    assert answer["ok"] is True
    assert standin.messages(CHANNEL)[0].blocks == APPROVAL_BLOCKS[:1]
    params = standin.calls("chat.postMessage")[0].params
    assert params["blocks"] == APPROVAL_BLOCKS[:1] and "token" not in params


@pytest.mark.parametrize(
    ("method", "kwargs", "error"),
    [
        ("chat.postMessage", {"channel": CHANNEL}, "no_text"),
        ("chat.postMessage", {"channel": CHANNEL, "text": "x", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        ("chat.postMessage", {"channel": CHANNEL, "text": "x", "thread_ts": "1.000001"}, "thread_not_found"),
        ("chat.postMessage", {"text": "x"}, "channel_not_found"),
        ("chat.update", {"channel": CHANNEL, "ts": "1.000001", "text": "x"}, "message_not_found"),
        ("chat.meMessage", {"channel": CHANNEL, "text": "x"}, "unknown_method"),
        ("usergroups.users.list", {"usergroup": "S0NOPE"}, "no_such_subteam"),
        ("views.open", {"trigger_id": "1.2.made-up", "view": MODAL}, "expired_trigger_id"),
    ],
)
async def test_what_slack_rejects_is_rejected_and_recorded(
    standin: SlackStandIn, client: AsyncWebClient, method: str, kwargs: dict, error: str
) -> None:
    with pytest.raises(SlackApiError) as failure:
        await client.api_call(method, json=kwargs)
    assert failure.value.response["error"] == error
    (call,) = standin.calls(method)
    assert (call.status, call.ok) == (200, False)
    assert standin.messages(CHANNEL) == []


async def test_fifty_blocks_are_allowed(standin: SlackStandIn, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="x", blocks=[{"type": "divider"}] * 50)
    assert len(standin.messages(CHANNEL)[0].blocks) == 50


async def test_post_ephemeral_is_kept_per_user(standin: SlackStandIn, client: AsyncWebClient) -> None:
    answer = await client.chat_postEphemeral(channel=CHANNEL, user=ALICE, text="only for Alice")
    assert answer["message_ts"]
    (ephemeral,) = standin.ephemerals(ALICE)
    assert (ephemeral["text"], ephemeral["channel"], ephemeral["source"]) == (
        "only for Alice",
        CHANNEL,
        "chat.postEphemeral",
    )
    assert standin.ephemerals(BOB) == []
    assert standin.messages(CHANNEL) == []


async def test_views_open_needs_a_fresh_issued_trigger(
    standin: SlackStandIn, client: AsyncWebClient, receiver: Receiver
) -> None:
    command = await standin.send_command(user_id=ALICE, text="plan")
    opened = await client.views_open(trigger_id=command.trigger_id, view=MODAL)
    view = opened["view"]
    assert view["id"].startswith("V") and view["callback_id"] == "plan-request"
    assert standin.views() == [view]

    standin.trigger_ttl = 0.0  # every trigger is now older than the limit
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        await client.views_open(trigger_id=command.trigger_id, view=MODAL)


async def test_views_update_checks_the_hash(standin: SlackStandIn, client: AsyncWebClient, receiver: Receiver) -> None:
    command = await standin.send_command(user_id=ALICE, text="plan")
    view = (await client.views_open(trigger_id=command.trigger_id, view=MODAL))["view"]
    retitled = {**MODAL, "title": {"type": "plain_text", "text": "Plan (2)"}}

    updated = await client.views_update(view_id=view["id"], hash=view["hash"], view=retitled)
    assert updated["view"]["id"] == view["id"]
    assert standin.views()[0]["title"]["text"] == "Plan (2)"
    with pytest.raises(SlackApiError, match="hash_conflict"):
        await client.views_update(view_id=view["id"], hash=view["hash"], view=MODAL)
    with pytest.raises(SlackApiError, match="not_found"):
        await client.views_update(view_id="V0NOPE", view=MODAL)


async def test_views_publish_sets_the_home_tab(standin: SlackStandIn, client: AsyncWebClient) -> None:
    home = {"type": "home", "blocks": APPROVAL_BLOCKS[:1]}
    await client.views_publish(user_id=ALICE, view=home)
    assert standin.home(ALICE)["blocks"] == APPROVAL_BLOCKS[:1]
    assert standin.home(BOB) is None


async def test_usergroups_users_and_conversations(standin: SlackStandIn, client: AsyncWebClient) -> None:
    standin.set_usergroup("S0DBA", [ALICE, BOB])
    assert (await client.usergroups_users_list(usergroup="S0DBA"))["users"] == [ALICE, BOB]
    assert (await client.users_info(user=ALICE))["user"]["id"] == ALICE
    assert (await client.conversations_info(channel=CHANNEL))["channel"]["id"] == CHANNEL
    assert [c.method for c in standin.calls()] == ["usergroups.users.list", "users.info", "conversations.info"]


# ---- message metadata, history and threads (what a poster reads back to tell whether a post landed)

TAG = {"event_type": "bluegreen_message", "event_payload": {"run_id": "r-1", "key": "parent"}}


async def test_metadata_is_kept_and_returned_only_when_asked_for(standin: SlackStandIn, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="tagged", metadata=TAG)
    form = await post_raw(  # form bodies carry the metadata as a JSON string
        standin.base_url + "chat.postMessage",
        data={"token": TOKEN, "channel": CHANNEL, "text": "form", "metadata": json.dumps(TAG)},
    )
    await client.chat_postMessage(channel=CHANNEL, text="plain")
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="tagged, edited")

    plain = await client.conversations_history(channel=CHANNEL)
    assert [m["text"] for m in plain["messages"]] == ["plain", "form", "tagged, edited"]  # newest first
    assert all("metadata" not in m for m in plain["messages"])
    full = await client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    assert [m.get("metadata") for m in full["messages"]] == [None, TAG, TAG]
    assert form["ok"] and standin.calls("chat.postMessage")[1].params["metadata"] == TAG
    assert standin.messages(CHANNEL)[0].metadata == TAG


@pytest.mark.parametrize("metadata", [{"event_payload": {}}, {"event_type": "x", "event_payload": "no"}, "{not json"])
async def test_malformed_metadata_is_refused(standin: SlackStandIn, metadata: object) -> None:
    value = metadata if isinstance(metadata, str) else json.dumps(metadata)
    answer = await post_raw(
        standin.base_url + "chat.postMessage", data={"token": TOKEN, "channel": CHANNEL, "text": "x", "metadata": value}
    )
    assert answer == {"ok": False, "error": "invalid_metadata_format"}
    assert standin.messages(CHANNEL) == []


async def test_history_pages_newest_first_within_oldest_and_latest(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    stamps = [(await client.chat_postMessage(channel=CHANNEL, text=f"m{i}"))["ts"] for i in range(7)]
    parent = stamps[0]
    await client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="quiet reply")
    broadcast = (await client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="loud", reply_broadcast=True))[
        "ts"
    ]

    texts, cursor, pages = [], None, 0
    while True:
        page = await client.conversations_history(channel=CHANNEL, limit=3, cursor=cursor)
        texts += [m["text"] for m in page["messages"]]
        pages += 1
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] == bool(cursor)
        if not cursor:
            break
    assert texts == ["loud", "m6", "m5", "m4", "m3", "m2", "m1", "m0"] and pages == 3  # no quiet reply

    window = await client.conversations_history(channel=CHANNEL, oldest=stamps[2], latest=stamps[5])
    assert [m["text"] for m in window["messages"]] == ["m4", "m3"]  # both bounds exclusive by default
    inclusive = await client.conversations_history(channel=CHANNEL, oldest=stamps[2], latest=stamps[5], inclusive=True)
    assert [m["text"] for m in inclusive["messages"]] == ["m5", "m4", "m3", "m2"]
    top = (await client.conversations_history(channel=CHANNEL, oldest=parent, inclusive=True, limit=999))["messages"]
    head = next(m for m in top if m["ts"] == parent)
    assert (head["reply_count"], head["latest_reply"], head["thread_ts"]) == (2, broadcast, parent)
    assert next(m for m in top if m["ts"] == broadcast)["subtype"] == "thread_broadcast"

    with pytest.raises(SlackApiError) as bad:
        await client.conversations_history(channel=CHANNEL, cursor="not-a-cursor")
    assert bad.value.response["error"] == "invalid_cursor"


async def test_replies_give_the_parent_first_then_the_replies_in_pages(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    parent = (await client.chat_postMessage(channel=CHANNEL, text="parent", metadata=TAG))["ts"]
    replies = [
        (await client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text=f"r{i}", metadata=TAG))["ts"]
        for i in range(5)
    ]
    await client.chat_postMessage(channel=CHANNEL, text="elsewhere in the channel")

    seen, cursor = [], None
    while True:
        page = await client.conversations_replies(
            channel=CHANNEL, ts=parent, limit=2, cursor=cursor, include_all_metadata=True
        )
        seen += [(m["text"], m["thread_ts"], m["metadata"]["event_type"]) for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == [(text, parent, "bluegreen_message") for text in ["parent", "r0", "r1", "r2", "r3", "r4"]]

    from_a_reply = await client.conversations_replies(channel=CHANNEL, ts=replies[1])  # a reply's ts: its thread
    assert [m["text"] for m in from_a_reply["messages"]] == ["parent", "r0", "r1", "r2", "r3", "r4"]
    assert all("metadata" not in m for m in from_a_reply["messages"])
    recent = await client.conversations_replies(channel=CHANNEL, ts=parent, oldest=replies[2])
    assert [m["text"] for m in recent["messages"]] == ["parent", "r3", "r4"]
    with pytest.raises(SlackApiError) as missing:
        await client.conversations_replies(channel=CHANNEL, ts="1.000001")
    assert missing.value.response["error"] == "thread_not_found"
