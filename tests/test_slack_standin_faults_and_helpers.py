"""The Slack stand-in misbehaving on demand (429, 5xx, late answers), and the helpers tests and the demo use:
rendering, the message listener, waiting, reset.
"""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackStandIn
from tests.standin_fixtures import (
    ALICE,
    APPROVAL_BLOCKS,
    CHANNEL,
    SECRET,
    TOKEN,
    client_fixture,  # noqa: F401  (the `client` fixture)
    post_raw,
    standin_fixture,  # noqa: F401  (the `standin` fixture)
)

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
