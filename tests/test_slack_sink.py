"""The Slack thread sink against the stand-in: one thread per run, coalesced edits, approvals, faults, restarts."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator

import pytest

from bot.workflow.events import (
    ApprovalDecided,
    ApprovalRequested,
    AwsCall,
    Notice,
    RunFinished,
    RunSnapshot,
    RunStarted,
    StepChanged,
    StepReport,
)
from handlers.ids import ApprovalActions
from handlers.thread.metadata import message_tag
from handlers.thread.sink import SlackThreadSink
from sandbox.slack import SlackStandIn
from storage import Store, open_store
from tests.bot_fixtures import fast_client
from tests.slack_fixtures import ALICE, BOB, OPS, slack_fixture  # noqa: F401  (the `slack` fixture)

STEPS = [
    ("deregister", "Detach orders-pg from orders-proxy"),
    ("create", "Create the deployment"),
    ("register", "Attach orders-pg to orders-proxy again"),
]


@pytest.fixture
def store() -> Store:
    return open_store(None)


@pytest.fixture
async def sink(slack: SlackStandIn, store: Store) -> AsyncIterator[SlackThreadSink]:
    thread_sink = SlackThreadSink(fast_client(slack.base_url), store, edit_interval=0.2, retry_delays=(0.05, 0.1))
    yield thread_sink
    await thread_sink.aclose(grace=2)


def new_run(store: Store, channel: str | None = OPS) -> str:
    run = store.runs.create(kind="create", database="orders-pg", params={}, requester=ALICE, channel=channel)
    store.steps.add(run.id, STEPS)
    store.runs.set_status(run.id, "running")
    return run.id


def snap(store: Store, run_id: str) -> RunSnapshot:
    run = store.runs.get(run_id)
    assert run is not None
    return RunSnapshot(run=run, steps=store.steps.list(run_id))


async def settle(sink: SlackThreadSink) -> None:
    async with asyncio.timeout(10):
        await sink.drain()


async def run_all_steps(store: Store, sink: SlackThreadSink, run_id: str) -> None:
    for idx in range(len(STEPS)):
        store.steps.start(run_id, idx)
        await sink.emit(StepChanged(snap(store, run_id), idx))
        store.steps.finish(run_id, idx, "done")
        await sink.emit(StepChanged(snap(store, run_id), idx))
        call = AwsCall(
            "DeregisterDBProxyTargets",
            f"aws rds step-{idx} --db-proxy-name orders-proxy",
            f"req-{idx}",
            "ok",
            time.time(),
        )
        await sink.emit(StepReport(snap(store, run_id), idx, [f"observed {idx}"], [call]))


async def finish(store: Store, sink: SlackThreadSink, run_id: str) -> None:
    store.runs.set_status(run_id, "succeeded")
    windows = {"orders-proxy": {"seconds": 4.2, "overhead_seconds": 0.3}}
    await sink.emit(RunFinished(snap(store, run_id), "succeeded", None, windows))


def parents(slack: SlackStandIn) -> list:
    """Top-level messages of the ops channel, without the replies broadcast to it."""
    return [message for message in slack.messages(OPS) if message.thread_ts in (None, message.ts)]


def texts(messages) -> str:
    return "\n".join(message.text + json.dumps(message.blocks) for message in messages)


async def test_a_run_becomes_one_thread_that_ends_complete(slack: SlackStandIn, store: Store, sink) -> None:
    run_id = new_run(store)
    await sink.emit(RunStarted(snap(store, run_id)))
    await run_all_steps(store, sink, run_id)
    await sink.emit(Notice(snap(store, run_id), "Falling back to the workaround", broadcast=True))
    await finish(store, sink, run_id)
    await settle(sink)

    (parent,) = parents(slack)
    meta = store.runs.get(run_id).meta["slack"]
    assert (meta["channel"], meta["ts"]) == (OPS, parent.ts)
    assert meta["permalink"].endswith(f"/archives/{OPS}/p{parent.ts.replace('.', '')}")
    checklist = json.dumps(parent.blocks)
    assert checklist.count(":white_check_mark:") == 3 and "succeeded" in checklist
    replies = slack.thread(OPS, parent.ts)[1:]
    assert len(replies) == 3 + 1 + 1
    for idx in range(3):
        assert f"aws rds step-{idx} --db-proxy-name orders-proxy" in texts(replies) and f"req-{idx}" in texts(replies)
    notice, summary = replies[3], replies[4]
    assert notice.broadcast and "workaround" in notice.text
    assert summary.broadcast and "orders-proxy" in texts([summary]) and "4.2s" in texts([summary])


async def test_checklist_edits_are_coalesced_and_the_last_state_is_shown(
    slack: SlackStandIn, store: Store, sink
) -> None:
    run_id = new_run(store)
    await sink.emit(RunStarted(snap(store, run_id)))
    await settle(sink)
    for _ in range(20):  # twenty changes in a burst
        store.steps.start(run_id, 0)
        await sink.emit(StepChanged(snap(store, run_id), 0))
    store.steps.finish(run_id, 0, "failed", detail="DBProxyTargetNotFoundFault")
    await sink.emit(StepChanged(snap(store, run_id), 0))
    await settle(sink)
    updates = slack.calls("chat.update")
    assert 1 <= len(updates) <= 2
    (parent,) = parents(slack)
    assert ":x:" in json.dumps(parent.blocks) and "DBProxyTargetNotFoundFault" in json.dumps(parent.blocks)
    gaps = [later.t - earlier.t for earlier, later in itertools.pairwise(updates)]
    assert all(gap >= 0.15 for gap in gaps)


async def test_approval_request_then_decision_replaces_the_buttons(slack: SlackStandIn, store: Store, sink) -> None:
    run_id = new_run(store)
    await sink.emit(RunStarted(snap(store, run_id)))
    request = store.approvals.request(
        run_id=run_id,
        kind="switchover",
        fingerprint="fp-1",
        requested_by=ALICE,
        approvers=[BOB, "S0SRE"],
        expires_at=time.time() + 600,
    )
    await sink.emit(
        ApprovalRequested(
            snap(store, run_id),
            request.id,
            "switchover",
            "fp-1",
            ALICE,
            [BOB, "S0SRE"],
            request.expires_at,
            "Switch orders-pg to green",
            {"green": "16.4"},
        )
    )
    await settle(sink)
    (parent,) = parents(slack)
    (approval,) = slack.thread(OPS, parent.ts)[1:]
    rendered = json.dumps(approval.blocks)
    assert "<@U0BOB>" in rendered and "<!subteam^S0SRE>" in rendered and "green" in rendered
    assert ApprovalActions.approve in rendered and ApprovalActions.reject in rendered
    assert store.approvals.get(request.id).meta["slack_ts"] == approval.ts

    store.approvals.decide(request.id, user=BOB, decision="approved")
    decided_at = time.time()
    await sink.emit(ApprovalDecided(snap(store, run_id), request.id, "approved", BOB, decided_at))
    await settle(sink)
    (approval,) = slack.thread(OPS, parent.ts)[1:]
    rendered = json.dumps(approval.blocks)
    assert "actions" not in [block["type"] for block in approval.blocks]
    hhmm = time.strftime("%H:%M", time.gmtime(decided_at))
    assert f"Approved* by <@U0BOB> at {hhmm} UTC" in rendered


async def test_expired_approval_says_so(slack: SlackStandIn, store: Store, sink) -> None:
    run_id = new_run(store)
    request = store.approvals.request(
        run_id=run_id,
        kind="delete_old",
        fingerprint="fp",
        requested_by=ALICE,
        approvers=[BOB],
        expires_at=time.time() + 1,
    )
    await sink.emit(
        ApprovalRequested(
            snap(store, run_id),
            request.id,
            "delete_old",
            "fp",
            ALICE,
            [BOB],
            request.expires_at,
            "Delete the old databases",
            {},
        )
    )
    await sink.emit(ApprovalDecided(snap(store, run_id), request.id, "expired", None, time.time()))
    await settle(sink)
    (parent,) = parents(slack)
    (approval,) = slack.thread(OPS, parent.ts)[1:]
    assert "Expired" in json.dumps(approval.blocks) and "actions" not in json.dumps(approval.blocks)


async def test_rate_limits_and_server_errors_lose_nothing(slack: SlackStandIn, store: Store, sink) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=0, count=2)
    slack.fail_next("chat.update", status=503, count=2)
    run_id = new_run(store)
    await sink.emit(RunStarted(snap(store, run_id)))
    await run_all_steps(store, sink, run_id)
    slack.fail_next("chat.postMessage", status=500, count=6)  # more than the client's own retries
    await finish(store, sink, run_id)
    await settle(sink)
    (parent,) = parents(slack)
    assert json.dumps(parent.blocks).count(":white_check_mark:") == 3
    replies = slack.thread(OPS, parent.ts)[1:]
    assert len(replies) == 4 and "succeeded" in replies[-1].text
    assert any(call.status == 429 for call in slack.calls("chat.postMessage"))
    assert any(call.status == 503 for call in slack.calls("chat.update"))


async def test_a_restarted_bot_carries_on_in_the_same_thread(slack: SlackStandIn, store: Store) -> None:
    first = SlackThreadSink(fast_client(slack.base_url), store, edit_interval=0.05)
    run_id = new_run(store)
    await first.emit(RunStarted(snap(store, run_id)))
    store.steps.start(run_id, 0)
    await first.emit(StepChanged(snap(store, run_id), 0))
    await first.aclose(grace=5)  # the process stops

    second = SlackThreadSink(fast_client(slack.base_url), store, edit_interval=0.05)
    await second.emit(RunStarted(snap(store, run_id), resumed=True))
    await run_all_steps(store, second, run_id)
    await finish(store, second, run_id)
    await settle(second)
    await second.aclose()

    (parent,) = parents(slack)  # still one parent message
    assert json.dumps(parent.blocks).count(":white_check_mark:") == 3
    replies = slack.thread(OPS, parent.ts)[1:]
    assert "Picked up again" in replies[0].text and "succeeded" in replies[-1].text


async def test_a_run_without_a_channel_posts_nothing(slack: SlackStandIn, store: Store, sink) -> None:
    run_id = new_run(store, channel=None)
    await sink.emit(RunStarted(snap(store, run_id)))
    await finish(store, sink, run_id)
    await settle(sink)
    assert slack.calls() == []


async def test_slack_down_never_raises_into_the_runner(slack: SlackStandIn, store: Store, sink) -> None:
    slack.fail_next("chat.postMessage", status=500, count=100)
    run_id = new_run(store)
    await sink.emit(RunStarted(snap(store, run_id)))
    await finish(store, sink, run_id)
    await settle(sink)  # gives up after its retries, without an exception
    assert parents(slack) == []


# ---------------------------------------------------------------- exactly once: late posts and restarts

CLIENT_TIMEOUT = 0.3  # the sink's client gives up after this long...
LATE = 0.5  # ...and a held-back post is applied this long after it arrived


def tags(messages) -> list[tuple[str, str] | None]:
    return [message_tag({"metadata": message.metadata}) for message in messages]


@pytest.fixture
async def impatient(slack: SlackStandIn, store: Store) -> AsyncIterator[SlackThreadSink]:
    client = fast_client(slack.base_url, timeout=CLIENT_TIMEOUT)
    thread_sink = SlackThreadSink(client, store, edit_interval=0.05, retry_delays=(0.05, 0.1))
    yield thread_sink
    await thread_sink.aclose(grace=2)


@pytest.mark.parametrize("late", ["parent", "reply"])
async def test_a_post_that_timed_out_but_landed_is_looked_up_not_posted_again(
    slack: SlackStandIn, store: Store, impatient: SlackThreadSink, late: str
) -> None:
    run_id = new_run(store)
    if late == "parent":
        slack.fail_next("chat.postMessage", delay=LATE)
    await impatient.emit(RunStarted(snap(store, run_id)))
    await settle(impatient)
    if late == "reply":
        slack.fail_next("chat.postMessage", delay=LATE)
    await run_all_steps(store, impatient, run_id)
    await finish(store, impatient, run_id)
    await settle(impatient)
    await slack.wait_for(lambda: slack.held_back == 0, timeout=2 * LATE)

    (parent,) = parents(slack)
    assert store.runs.get(run_id).meta["slack"]["ts"] == parent.ts
    replies = slack.thread(OPS, parent.ts)[1:]
    assert tags([parent, *replies]) == [
        (run_id, "parent"),
        *((run_id, f"report:{idx}:1") for idx in range(3)),
        (run_id, "summary"),
    ]
    # The late one was not sent again: the sink waited a client timeout more, then found it.
    assert len(slack.calls("chat.postMessage")) == 1 + 3 + 1
    read_back = slack.calls("conversations.history" if late == "parent" else "conversations.replies")
    assert len(read_back) == 1 and read_back[0].params["include_all_metadata"] in ("1", "true", True)


async def test_a_post_that_failed_and_did_not_land_is_posted_after_looking(
    slack: SlackStandIn, store: Store, sink: SlackThreadSink
) -> None:
    run_id = new_run(store)
    await sink.emit(RunStarted(snap(store, run_id)))
    await settle(sink)
    slack.fail_next("chat.postMessage", status=500, count=4)  # the client's 3 retries, then the sink's turn
    await sink.emit(Notice(snap(store, run_id), "Waiting for the maintenance window"))
    await settle(sink)

    (parent,) = parents(slack)
    (notice,) = slack.thread(OPS, parent.ts)[1:]
    assert "maintenance window" in notice.text
    assert len(slack.calls("conversations.replies")) == 1


async def test_a_restarted_sink_does_not_post_again_what_the_last_process_posted(
    slack: SlackStandIn, store: Store
) -> None:
    first = SlackThreadSink(fast_client(slack.base_url), store, edit_interval=0.05)
    run_id = new_run(store)
    await first.emit(RunStarted(snap(store, run_id)))
    store.steps.start(run_id, 0)
    store.steps.finish(run_id, 0, "done")
    report = StepReport(snap(store, run_id), 0, ["observed 0"], [])
    await first.emit(report)
    request = store.approvals.request(
        run_id=run_id,
        kind="switchover",
        fingerprint="fp-1",
        requested_by=ALICE,
        approvers=[BOB],
        expires_at=time.time() + 600,
    )
    approval = ApprovalRequested(
        snap(store, run_id), request.id, "switchover", "fp-1", ALICE, [BOB], request.expires_at, "Switch", {}
    )
    await first.emit(approval)
    await first.aclose(grace=5)
    (parent,) = parents(slack)
    before = slack.thread(OPS, parent.ts)
    # The process stopped right after posting, before recording the thread: only Slack knows it is there.
    store.runs.merge_meta(run_id, {"slack": None})

    second = SlackThreadSink(fast_client(slack.base_url), store, edit_interval=0.05)
    await second.emit(RunStarted(snap(store, run_id), resumed=True))
    await second.emit(report)  # the same report and approval request, published again after the restart
    await second.emit(approval)
    await settle(second)
    await second.aclose()

    assert [message.ts for message in parents(slack)] == [parent.ts]  # no second parent
    assert store.runs.get(run_id).meta["slack"]["ts"] == parent.ts
    after = slack.thread(OPS, parent.ts)
    assert [message.ts for message in after[: len(before)]] == [message.ts for message in before]
    (resumed,) = after[len(before) :]
    assert "Picked up again" in resumed.text
    assert tags(after) == [
        (run_id, "parent"),
        (run_id, "report:0:1"),
        (run_id, f"approval:{request.id}"),
        (run_id, "resumed:1"),
    ]
    assert store.approvals.get(request.id).meta["slack_ts"] == before[2].ts
    assert len(slack.calls("conversations.history")) == 1 and len(slack.calls("conversations.replies")) == 1
