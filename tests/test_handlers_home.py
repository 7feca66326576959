"""The App Home tab, through a signed `app_home_opened` event to the real app over HTTP (engine: a fake)."""

from __future__ import annotations

import json
import time

import aiohttp
from slack_sdk.signature import SignatureVerifier

from sandbox.slack import SlackStandIn
from tests.bot_fixtures import (
    Bot,
    bot_fixture,  # noqa: F401  (the `bot` fixture)
)
from tests.slack_fixtures import (
    ALICE,
    DAVE,
    OPS,
    SIGNING_SECRET,
    slack_fixture,  # noqa: F401  (the `slack` fixture)
)


async def send_event(url: str, event: dict) -> int:
    """Slack's Events API request, signed the way Slack signs it (the stand-in sends commands and clicks only)."""
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0STANDIN",
            "api_app_id": "A0STANDIN",
            "event": event,
            "event_id": "Ev0001",
            "event_time": int(time.time()),
        }
    )
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status


async def test_home_lists_active_and_recent_runs_with_thread_links(slack: SlackStandIn, bot: Bot) -> None:
    active = bot.store.runs.create(kind="create", database="orders-pg", params={}, requester=ALICE, channel=OPS)
    link = f"https://standin.slack.com/archives/{OPS}/p1700000000000100"
    bot.store.runs.merge_meta(active.id, {"slack": {"channel": OPS, "ts": "1700000000.000100", "permalink": link}})
    done = bot.store.runs.create(kind="rollback", database="ledger-aurora", params={}, requester=ALICE, channel=OPS)
    bot.store.runs.set_status(done.id, "succeeded")

    status = await send_event(f"{bot.url}/slack/events", {"type": "app_home_opened", "user": DAVE, "tab": "home"})
    assert status == 200
    await slack.wait_for(lambda: slack.home(DAVE), timeout=5, description="the published home tab")
    home = json.dumps(slack.home(DAVE))
    assert active.id in home and done.id in home and link in home
    assert home.index(active.id) < home.index("Recent runs") < home.index(done.id)


async def test_the_messages_tab_publishes_nothing(slack: SlackStandIn, bot: Bot) -> None:
    url = f"{bot.url}/slack/events"
    assert await send_event(url, {"type": "app_home_opened", "user": DAVE, "tab": "messages"}) == 200
    assert await send_event(url, {"type": "app_home_opened", "user": ALICE, "tab": "home"}) == 200
    await slack.wait_for(lambda: slack.home(ALICE), timeout=5, description="Alice's home tab")
    assert slack.home(DAVE) is None and len(slack.calls("views.publish")) == 1
