"""Slack misbehaving during real runs, and the bot process restarted in the middle of one.

The real engine drives create + switchover of orders-pg on the sandbox AWS; the real Bolt app is served over HTTP
and driven through the Slack stand-in. However Slack answers (429 with Retry-After, 5xx, a late answer after the
client gave up) and whatever happens to the process, each run's thread must end complete: one parent whose checklist
shows every step done, one report per step, the summary broadcast once, nothing posted twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.aws import Sandbox
from sandbox.slack import SlackStandIn
from storage import Store, open_store
from tests.bot_fixtures import (
    Bot,
    bot_environment,
    make_settings,
    sandbox_engine,
    serve_bot,
    serve_processes,
)
from tests.process_fixtures import Zygote, zygote_fixture  # noqa: F401  (the `zygote` fixture)
from tests.slack_fixtures import (
    ALICE,
    BOB,
    BOT_TOKEN,
    SIGNING_SECRET,
    approval_message,
    assert_thread_complete,
    click_button,
    run_thread,
    slack_fixture,  # noqa: F401  (the `slack` fixture)
    start_run,
)

RUN_TIMEOUT = 60
SWITCHOVER = "SwitchoverBlueGreenDeployment"


@pytest.fixture
async def live(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Bot]:
    settings = make_settings(tmp_path, slack.base_url)
    async with serve_bot(slack, settings, sandbox_engine(sandbox.endpoint)) as served:
        yield served


async def create_then_switchover(slack: SlackStandIn, bot: Bot, *, before_approval=None) -> tuple[str, str]:
    """Runs create, then switchover approved by BOB; `before_approval()` runs once the approval request is up."""
    create = await start_run(slack, bot.store, ALICE, "create orders-pg")
    assert (await bot.engine.wait(create, within=RUN_TIMEOUT)).status == "succeeded"
    switchover = await start_run(slack, bot.store, ALICE, "switchover orders-pg")
    request = await approval_message(slack, bot.store, switchover)
    if before_approval:
        before_approval()
    assert (await click_button(slack, request, BOB)).status == 200
    assert (await bot.engine.wait(switchover, within=RUN_TIMEOUT)).status == "succeeded"
    await asyncio.wait_for(bot.sink.drain(), 20)
    return create, switchover


def successful_switchovers(sandbox: Sandbox) -> list[dict]:
    return [
        e
        for e in sandbox.control.timeline()
        if e["kind"] == "call" and e["action"] == SWITCHOVER and e.get("code") is None
    ]


async def test_rate_limits_and_server_errors_during_a_run_leave_every_thread_complete(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox
) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=1)  # the create run's parent message
    slack.fail_next("chat.update", status=500, count=2)

    def more_faults() -> None:  # in the middle of the switchover and up to its summary
        slack.fail_next("chat.postMessage", status=503, count=2)
        slack.fail_next("chat.update", status=429, retry_after=1)
        slack.fail_next("chat.postMessage", status=500, count=6)  # more than the client's own 3 retries

    create, switchover = await create_then_switchover(slack, live, before_approval=more_faults)

    assert_thread_complete(slack, live.store, create)
    thread = assert_thread_complete(slack, live.store, switchover)
    assert "orders-proxy" in thread.replies[-1].text  # the summary names the proxy's detached window
    assert len(successful_switchovers(sandbox)) == 1
    statuses = {(c.method, c.status) for c in slack.calls()}
    for fault in [("chat.postMessage", 429), ("chat.postMessage", 503), ("chat.postMessage", 500)]:
        assert fault in statuses
    assert ("chat.update", 500) in statuses and ("chat.update", 429) in statuses
    # Retry-After was honoured: each call answered 429 was sent again at least a second later. (Another run's
    # worker may call the same method meanwhile: the two runs' threads are posted to concurrently.)
    for method in ("chat.postMessage", "chat.update"):
        calls = slack.calls(method)
        for idx, call in enumerate(calls):
            if call.status == 429:
                again = next(later for later in calls[idx + 1 :] if later.params == call.params)
                assert again.t - call.t >= 1.0, (method, again.t - call.t)


@pytest.fixture
async def impatient(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Bot]:
    """The app with a Slack client that gives up on a call after 1 s."""
    settings = make_settings(tmp_path, slack.base_url)
    async with serve_bot(slack, settings, sandbox_engine(sandbox.endpoint), client_timeout=1.0) as served:
        yield served


LATE = 1.5  # the stand-in answers (and applies the call) this late: after the client timed out


async def test_a_late_checklist_edit_does_not_leave_the_checklist_stale(slack: SlackStandIn, impatient: Bot) -> None:
    slack.fail_next("chat.update", delay=LATE)  # the first checklist edit times out, then lands late
    _, switchover = await create_then_switchover(
        slack, impatient, before_approval=lambda: slack.fail_next("chat.update", delay=LATE)
    )
    assert_thread_complete(slack, impatient.store, switchover)


async def test_a_late_reply_is_not_posted_twice(slack: SlackStandIn, impatient: Bot) -> None:
    def late_reply() -> None:
        slack.fail_next("chat.postMessage", delay=LATE)  # the next reply in the switchover's thread

    _, switchover = await create_then_switchover(slack, impatient, before_approval=late_reply)
    await slack.wait_for(lambda: slack.held_back == 0, timeout=2 * LATE, description="the late reply applied")
    assert slack.calls("conversations.replies"), "the sink did not read the thread back before posting again"
    assert_thread_complete(slack, impatient.store, switchover)


# ---------------------------------------------------------------- a restart in the middle of a run


async def test_a_restarted_bot_resumes_the_run_in_the_same_thread(
    slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path, zygote: Zygote
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BLUEGREEN_", "AWS_"))},
        **bot_environment(tmp_path, slack.base_url),
        "AWS_ENDPOINT_URL": sandbox.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
    }
    settings = make_settings(tmp_path, slack.base_url)
    with serve_processes(zygote, tmp_path) as start:
        crashing = start({**env, "BLUEGREEN_FAILPOINT": "after-call:DeregisterDBProxyTargets"})
        # The deployment exists first (created in-process: the failpoint would fire during create's own detach).
        async with serve_bot(slack, settings, sandbox_engine(sandbox.endpoint)) as created_by:
            create = await start_run(slack, created_by.store, ALICE, "create orders-pg")
            assert (await created_by.engine.wait(create, within=RUN_TIMEOUT)).status == "succeeded"
            await asyncio.wait_for(created_by.sink.drain(), 10)

        await crashing.release()
        slack.app_url = f"{crashing.url}/slack/events"
        store = open_store(settings.db_path)
        try:
            switchover = await start_run(slack, store, ALICE, "switchover orders-pg")
            request = await approval_message(slack, store, switchover)
            resuming = start(env)
            assert (await click_button(slack, request, BOB)).status == 200
            assert await crashing.exited() == -signal.SIGKILL, crashing.output()
            before = run_thread(slack, store, switchover)
            assert store.runs.get(switchover).is_active

            await resuming.release()  # resume_unfinished at start-up
            await finished(slack, store, switchover)
            thread = assert_thread_complete(slack, store, switchover)
        finally:
            store.close()
        outputs = crashing.output() + resuming.output()

    assert thread.parent.ts == before.parent.ts
    assert [m.ts for m in thread.replies[: len(before.replies)]] == [m.ts for m in before.replies]
    later = [m.text for m in thread.replies[len(before.replies) :]]
    assert any("Picked up again" in text for text in later), later
    assert len(later) >= 3  # the notice, the remaining steps' reports, the summary
    assert len(successful_switchovers(sandbox)) == 1
    assert BOT_TOKEN not in outputs and SIGNING_SECRET not in outputs


async def finished(slack: SlackStandIn, store: Store, run_id: str) -> None:
    """Waits for the run to end in storage and for its summary to be in the thread."""
    await slack.wait_for(lambda: not store.runs.get(run_id).is_active, timeout=RUN_TIMEOUT, description="run end")
    await slack.wait_for(
        lambda: run_thread(slack, store, run_id).replies_starting(f"Run {run_id} "),
        timeout=20,
        description="the summary in the thread",
    )
