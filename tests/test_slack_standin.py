"""The Slack stand-in, exercised over real HTTP: slack_sdk clients against it, signed requests from it."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from sandbox.slack.standin import SlackStandIn, SlackStandInThread

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


@pytest.fixture
async def standin() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(signing_secret=SECRET) as slack:
        yield slack


@pytest.fixture
def client(standin: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=standin.base_url)


@pytest.fixture
async def receiver(standin: SlackStandIn) -> AsyncIterator[Receiver]:
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


# ---- misbehaving on demand


async def test_429_with_retry_after_is_honoured_by_the_retry_handler(standin: SlackStandIn) -> None:
    standin.fail_next("chat.postMessage", status=429, retry_after=1)
    client = AsyncWebClient(token=TOKEN, base_url=standin.base_url, retry_handlers=[AsyncRateLimitErrorRetryHandler()])
    answer = await client.chat_postMessage(channel=CHANNEL, text="after the limit")

    assert answer["ok"] is True
    first, second = standin.calls("chat.postMessage")
    assert (first.status, first.ok, second.status, second.ok) == (429, False, 200, True)
    assert second.t - first.t >= 1.0
    assert len(standin.messages(CHANNEL)) == 1


async def test_429_reaches_a_client_without_retries(standin: SlackStandIn, client: AsyncWebClient) -> None:
    standin.fail_next("chat.update", retry_after=7)
    with pytest.raises(SlackApiError) as failure:
        await client.chat_update(channel=CHANNEL, ts="1.000001", text="x")
    assert failure.value.response.status_code == 429
    assert failure.value.response.headers["Retry-After"] == "7"


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retried_by_the_server_error_handler(standin: SlackStandIn, status: int) -> None:
    standin.fail_next("chat.postMessage", status=status, count=2)
    handler = AsyncServerErrorRetryHandler(
        max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
    )
    client = AsyncWebClient(token=TOKEN, base_url=standin.base_url, retry_handlers=[handler])
    await client.chat_postMessage(channel=CHANNEL, text="third time lucky")
    assert [c.status for c in standin.calls("chat.postMessage")] == [status, status, 200]
    assert len(standin.messages(CHANNEL)) == 1


async def test_a_late_answer_times_the_client_out_but_still_posts(standin: SlackStandIn) -> None:
    standin.fail_next("chat.postMessage", delay=0.5)
    with pytest.raises(TimeoutError):
        await post_raw(
            standin.base_url + "chat.postMessage",
            json={"channel": CHANNEL, "text": "slow"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=aiohttp.ClientTimeout(total=0.1),
        )
    await standin.wait_for(lambda: standin.messages(CHANNEL), timeout=3)
    assert standin.calls("chat.postMessage")[0].status == 200


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


# ---- helpers for tests and the demo


async def test_render_channel_reads_like_the_conversation(standin: SlackStandIn, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="approve?", blocks=APPROVAL_BLOCKS)
    await client.chat_postMessage(channel=CHANNEL, thread_ts=posted["ts"], text=f"leaked {TOKEN} and {SECRET}")

    rendered = standin.render_channel(CHANNEL)
    lines = rendered.splitlines()
    assert lines[0] == f"#{CHANNEL}"
    assert "  === Deploy orders-pg ===" in lines
    assert "  *Upgrade* 15.4 -> 16.2, see runbook (https://wiki.example/rb)" in lines
    assert "  *Proxy* orders-proxy" in lines
    assert "  *Requested by* @U0ALICE" in lines
    assert "  plan hash `ab12` & run 7" in lines
    assert "  [ Approve ] [ Reject ]" in lines
    assert "  thread: 1 reply" in lines
    assert "    |   leaked [redacted] and [redacted]" in lines
    assert TOKEN not in rendered and SECRET not in rendered
    assert SECRET not in repr(standin)


async def test_on_message_reports_posts_and_edits(standin: SlackStandIn, client: AsyncWebClient) -> None:
    seen: list[tuple[str, str]] = []
    standin.on_message = lambda event, message: seen.append((event, message.text))
    posted = await client.chat_postMessage(channel=CHANNEL, text="one")
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="one, edited")
    assert seen == [("posted", "one"), ("updated", "one, edited")]


async def test_wait_for_names_what_it_waited_for(standin: SlackStandIn) -> None:
    never_posted: list[str] = []
    with pytest.raises(TimeoutError, match="never_posted"):
        await standin.wait_for(lambda: never_posted, timeout=0.1)


async def test_reset_forgets_messages_calls_and_faults(standin: SlackStandIn, client: AsyncWebClient) -> None:
    standin.set_usergroup("S0DBA", [ALICE])
    await client.chat_postMessage(channel=CHANNEL, text="one")
    standin.fail_next("chat.postMessage", status=503)
    standin.reset()
    await client.chat_postMessage(channel=CHANNEL, text="two")
    assert [m.text for m in standin.messages(CHANNEL)] == ["two"]
    assert [c.status for c in standin.calls()] == [200]
    assert (await client.usergroups_users_list(usergroup="S0DBA"))["users"] == [ALICE]


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
