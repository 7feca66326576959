"""The channel page without a browser: Block Kit and mrkdwn as HTML (sandbox/slack/html_render.py), the channel as
one person sees it (sandbox/slack/page_view.py), and the page's endpoints (sandbox/slack/web_page.py) sending signed
commands and clicks to a signature-checking app through the real stand-in. The browser: tests/test_demo_web.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackStandIn
from sandbox.slack.html_render import blocks_html, mrkdwn_html
from sandbox.slack.models import Message
from sandbox.slack.page_view import Note, render_view
from sandbox.slack.web_page import ChannelPage, Person
from tests.standin_fixtures import (
    ALICE,
    APPROVAL_BLOCKS,
    BOB,
    CHANNEL,
    SECRET,
    TOKEN,
    Receiver,
    client_fixture,  # noqa: F401  (the `client` fixture)
    receiver_fixture,  # noqa: F401  (the `receiver` fixture)
    standin_fixture,  # noqa: F401  (the `standin` fixture)
)

USERS = {ALICE: "alice", BOB: "bob"}

# ---- mrkdwn


@pytest.mark.parametrize(
    ("mrkdwn", "html"),
    [
        ("*bold* and _italic_ and ~gone~", "<b>bold</b> and <i>italic</i> and <s>gone</s>"),
        ("run `r-1` ok", "run <code>r-1</code> ok"),
        ("```aws rds *not bold*\n--x```", "<pre>aws rds *not bold*\n--x</pre>"),
        ("`a_b_c` and orders_pg_x stay", "<code>a_b_c</code> and orders_pg_x stay"),
        ("2*3*4 is not bold", "2*3*4 is not bold"),
        ("see <https://example.com/a?b=1&amp;c=2|the runbook>", 'see <a href="https://example.com/a?b=1&amp;c=2"'),
        ("by <@U0ALICE>", '<span class="mention" data-user="U0ALICE">@alice</span>'),
        ("for <!subteam^S0SRE>", '<span class="mention group">@S0SRE</span>'),
        ("a &lt;b&gt; &amp; c", "a &lt;b&gt; &amp; c"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("<javascript:alert(1)|click>", "click"),
        (":white_check_mark: done", 'class="emoji drawn e-white_check_mark"'),
        ("arn:aws:rds:us-east-1:db:x", "arn:aws:rds:us-east-1:db:x"),
    ],
)
def test_mrkdwn_renders_as_slack_shows_it(mrkdwn: str, html: str) -> None:
    assert html in mrkdwn_html(mrkdwn, USERS)


def test_no_markup_from_a_message_survives_unescaped() -> None:
    hostile = '<img src=x onerror=alert(1)> *"><script>x</script>* `</code><b>` ```</pre><i>``` \ue0009\ue001'
    rendered = mrkdwn_html(hostile, USERS)
    assert "<img" not in rendered and "<script" not in rendered and "<i>" not in rendered
    assert rendered.count("<code>") == rendered.count("</code>") == 1
    assert rendered.count("<pre>") == rendered.count("</pre>") == 1


# ---- Block Kit


def test_blocks_render_header_fields_context_buttons_and_confirm() -> None:
    blocks = json.loads(json.dumps(APPROVAL_BLOCKS))
    approve, reject = blocks[3]["elements"]
    approve.update(
        style="primary",
        confirm={
            "title": {"type": "plain_text", "text": "Switch over orders-pg?"},
            "text": {"type": "plain_text", "text": "Proxies detached: orders-proxy."},
            "confirm": {"type": "plain_text", "text": "Approve switchover"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        },
    )
    reject["style"] = "danger"
    blocks.append({"type": "divider"})
    blocks.append({"type": "mystery"})

    html = blocks_html(blocks, message_ts="1.000100", users=USERS)

    assert '<div class="block header">Deploy orders-pg</div>' in html
    assert (
        '<div class="field"><b>Requested by</b>\n<span class="mention" data-user="U0ALICE">@alice</span></div>' in html
    )
    assert '<div class="block context"><span>plan hash <code>ab12</code> &amp; run 7</span></div>' in html
    buttons = re.findall(r"<button [^>]*>[^<]*</button>", html)
    assert len(buttons) == 2
    assert 'class="button primary"' in buttons[0] and ">Approve<" in buttons[0]
    assert 'class="button danger"' in buttons[1] and ">Reject<" in buttons[1] and "data-confirm" not in buttons[1]
    for button in buttons:
        assert 'data-message-ts="1.000100"' in button and 'data-block-id="approval"' in button
    assert 'data-action-id="approve"' in buttons[0] and "run-7" not in html  # the value stays on the server
    confirm = json.loads(re.search(r'data-confirm="([^"]*)"', buttons[0]).group(1).replace("&quot;", '"'))
    assert confirm == {
        "title": "Switch over orders-pg?",
        "text": "Proxies detached: orders-proxy.",
        "confirm": "Approve switchover",
        "deny": "Cancel",
        "style": "",
    }
    assert '<hr class="block divider">' in html
    assert "[mystery block]" in html


# ---- the channel as one person sees it


def _message(ts: str, text: str, **fields: object) -> Message:
    return Message(ts=ts, channel=CHANNEL, text=text, blocks=[], user="UBOT", **fields)  # type: ignore[arg-type]


def test_the_view_has_threads_broadcasts_and_only_the_viewers_ephemerals() -> None:
    parent = _message("10.000001", "Switchover: orders-pg", thread_ts="10.000001")
    reply = _message("11.000001", "*approval needed*", thread_ts=parent.ts)
    summary = _message("12.000001", "succeeded", thread_ts=parent.ts, broadcast=True)
    parent.replies = [reply, summary]
    ephemerals = [
        {"ts": "11.500000", "channel": CHANNEL, "user": ALICE, "text": "a second person must approve", "blocks": []},
        {"ts": "11.600000", "channel": CHANNEL, "user": BOB, "text": "for bob only", "blocks": []},
    ]
    notes = [Note("9.000001", ALICE, "command", "/bluegreen switchover orders-pg"), Note("9.5", BOB, "reply", "hi")]

    view = render_view(
        [parent, summary], ephemerals, notes, viewer=ALICE, users=USERS, bot_user="UBOT", bot_name="bluegreen-bot"
    )

    channel = view.channel
    order = [
        channel.index(marker) for marker in ("used <code>", "Switchover: orders-pg", "a second person", "succeeded")
    ]
    assert order == sorted(order)
    assert "for bob only" not in channel and ">hi<" not in channel
    assert '<a href="#" data-open-thread="10.000001">2 replies</a>' in channel
    assert "replied to a thread:" in channel
    assert "<b>approval needed</b>" not in channel  # a plain reply stays in its thread
    assert list(view.threads) == [parent.ts] and view.latest_thread == parent.ts
    thread = view.threads[parent.ts]
    assert "<b>approval needed</b>" in thread and "also sent to the channel" in thread
    assert view.ephemerals == [{"ts": "11.500000", "text": "a second person must approve"}]


# ---- the page's endpoints, through the real stand-in to a signature-checking app


@pytest.fixture(name="page")
async def page_fixture(standin: SlackStandIn, receiver: Receiver) -> AsyncIterator[ChannelPage]:
    page = ChannelPage(standin, people=[Person(ALICE, "alice"), Person(BOB, "bob")], channel=CHANNEL)
    await page.start()
    yield page
    await page.stop()


async def _post(url: str, body: object, *, content_type: str = "application/json") -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=json.dumps(body), headers={"Content-Type": content_type}) as response,
    ):
        return response.status, await response.json()


async def test_a_typed_command_reaches_the_app_signed_as_that_person(page: ChannelPage, receiver: Receiver) -> None:
    receiver.reply = {"response_type": "ephemeral", "text": "Usage: /bluegreen create DATABASE"}

    status, answer = await _post(page.url + "command", {"as": BOB, "text": "/bluegreen help"})

    assert (status, answer["ok"]) == (200, True)
    [sent] = receiver.requests
    assert sent.valid
    assert (sent.form["user_id"], sent.form["command"], sent.form["text"]) == (BOB, "/bluegreen", "help")
    state = page.state(BOB)
    assert "used <code>/bluegreen help</code>" in state["channel"]
    assert "Usage: /bluegreen create DATABASE" in state["channel"]  # the acknowledgement, to bob only
    assert "Usage:" not in page.state(ALICE)["channel"]


async def test_the_page_refuses_what_slack_would_not_send(page: ChannelPage, receiver: Receiver) -> None:
    refusals = [
        await _post(page.url + "command", {"as": ALICE, "text": "/bluegreen help"}, content_type="text/plain"),
        await _post(page.url + "command", {"as": "U0MALLORY", "text": "/bluegreen help"}),
        await _post(page.url + "command", {"as": ALICE, "text": "/deploy everything"}),
        await _post(page.url + "click", {"as": ALICE, "message_ts": "1.0", "block_id": "b", "action_id": "a"}),
    ]
    assert [status for status, _ in refusals] == [415, 400, 400, 409]
    assert all(answer["error"] for _, answer in refusals)
    assert receiver.requests == []


async def test_a_click_sends_the_buttons_value_from_the_message(
    page: ChannelPage, receiver: Receiver, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="approval", blocks=APPROVAL_BLOCKS)
    ts = posted["ts"]
    assert f'data-message-ts="{ts}"' in page.state(ALICE)["channel"]

    status, answer = await _post(
        page.url + "click", {"as": BOB, "message_ts": ts, "block_id": "approval", "action_id": "reject"}
    )

    assert (status, answer["ok"]) == (200, True)
    [sent] = receiver.requests
    payload = sent.payload
    assert sent.valid and payload["type"] == "block_actions" and payload["user"]["id"] == BOB
    assert payload["actions"][0] | {"action_ts": None} == {
        "action_id": "reject",
        "block_id": "approval",
        "value": "run-7",
        "type": "button",
        "action_ts": None,
    }


async def test_state_is_an_etag_and_the_token_never_appears(page: ChannelPage, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel=CHANNEL, text=f"oops, the token {TOKEN} and secret {SECRET}")
    async with aiohttp.ClientSession() as session:
        async with session.get(page.url + "state.json", params={"as": ALICE}) as response:
            first = await response.json()
        async with session.get(page.url + "state.json", params={"as": ALICE, "known": first["etag"]}) as response:
            again = await response.json()
        async with session.get(page.url) as response:
            html = await response.text()
    assert TOKEN not in json.dumps(first) and SECRET not in json.dumps(first) and "[redacted]" in first["channel"]
    assert again == {"etag": first["etag"], "unchanged": True}
    # Everything inline: no stylesheet, script, font or image fetched from anywhere.
    assert "<style>" in html and "state.json" in html
    assert not re.findall(r"(?:src|href)=\"(?!data:)|@import|url\(|@font-face|https?://", html)
