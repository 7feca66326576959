"""The Slack side of the Slack-front tests: who is who in the stand-in's workspace, the `slack` fixture, and helpers
that drive a run through the Slack stand-in and read its thread back. The app under test: `tests.bot_fixtures`.

- `slack` (import `slack_fixture`): a started `SlackStandIn`, with the user groups S0SRE (Carol) and S0DBAS (Erin).
- `start_run`, `approval_message`, `click_button`: a run requested, and its approval request clicked, as a user would.
- `run_thread`, `assert_thread_complete`, `assert_nothing_posted_twice`: a run's thread as the stand-in holds it.
- `RequestRecorder`: a hop between the stand-in and the app that keeps every signed request, to replay or tamper.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from handlers.ids import ApprovalActions
from sandbox.slack import CommandResult, Message, SlackStandIn
from storage import Store

SIGNING_SECRET = "test-signing-secret-not-real"
BOT_TOKEN = "xoxb-standin"
OPS = "C0OPS"  # the production environment's channel
ELSEWHERE = "C0RANDOM"  # a channel no environment lists
ALICE = "U0ALICE"  # operator (by id), requester
BOB = "U0BOB"  # operator and approver (by id)
CAROL = "U0CAROL"  # approver through the S0SRE user group
DAVE = "U0DAVE"  # neither operator nor approver
ERIN = "U0ERIN"  # operator through the S0DBAS user group
SRE_GROUP = "S0SRE"
DBA_GROUP = "S0DBAS"


@pytest.fixture(name="slack")
async def slack_fixture() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN) as standin:
        standin.set_usergroup(SRE_GROUP, [CAROL])
        standin.set_usergroup(DBA_GROUP, [ERIN])
        yield standin


# ---------------------------------------------------------------- a run, driven and read through the stand-in


async def start_run(slack: SlackStandIn, store: Store, user: str, text: str, *, timeout: float = 20) -> str:
    """Sends `/bluegreen text` as `user` in the ops channel and returns the id of the run it started."""
    before = {run.id for run in store.runs.list(limit=200)}
    result = await slack.send_command(user_id=user, text=text, channel_id=OPS)
    assert result.status == 200, result.body

    def started() -> list[str]:
        return [run.id for run in store.runs.list(limit=200) if run.id not in before]

    await slack.wait_for(started, timeout=timeout, description=f"a run from {text!r} ({slack.ephemerals(user)})")
    return started()[0]


def thread_ts(store: Store, run_id: str) -> str | None:
    run = store.runs.get(run_id)
    return ((run.meta or {}).get("slack") or {}).get("ts") if run else None


def find_approval_message(slack: SlackStandIn, store: Store, run_id: str) -> Message | None:
    """The run's approval request that still carries its buttons, if posted."""
    ts = thread_ts(store, run_id)
    for reply in slack.thread(OPS, ts)[1:] if ts else []:
        if ApprovalActions.approve in json.dumps(reply.blocks):
            return reply
    return None


async def approval_message(slack: SlackStandIn, store: Store, run_id: str, *, timeout: float = 60) -> Message:
    await slack.wait_for(
        lambda: find_approval_message(slack, store, run_id), timeout=timeout, description="the approval request"
    )
    found = find_approval_message(slack, store, run_id)
    assert found is not None
    return found


def approve_value(message: Message) -> str:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == ApprovalActions.approve:
                return element["value"]
    raise AssertionError("no Approve button on the message")


async def click_button(
    slack: SlackStandIn,
    message: Message,
    user: str,
    action: ApprovalActions = ApprovalActions.approve,
    value: str | None = None,
) -> CommandResult:
    return await slack.click(
        user_id=user,
        action_id=action.value,
        value=approve_value(message) if value is None else value,
        channel_id=OPS,
        message_ts=message.ts,
        block_id="approval-buttons",
    )


@dataclass(frozen=True)
class RunThread:
    """A run's Slack thread as the stand-in holds it."""

    parent: Message
    replies: list[Message]

    def replies_starting(self, prefix: str) -> list[Message]:
        return [reply for reply in self.replies if reply.text.startswith(prefix)]


def run_thread(slack: SlackStandIn, store: Store, run_id: str) -> RunThread:
    ts = thread_ts(store, run_id)
    assert ts, f"run {run_id} has no Slack thread recorded"
    parent, *replies = slack.thread(OPS, ts)
    return RunThread(parent, replies)


def assert_thread_complete(slack: SlackStandIn, store: Store, run_id: str, *, status: str = "succeeded") -> RunThread:
    """The run's thread tells the whole truth, once: one parent whose final checklist shows every step done, one
    report reply per step, the summary broadcast once, and no message posted twice anywhere in the channel."""
    run = store.runs.get(run_id)
    assert run is not None and run.status == status, (run.status if run else None, run.error if run else None)
    steps = store.steps.list(run_id)
    thread = run_thread(slack, store, run_id)

    parents = [m for m in slack.messages(OPS) if m.thread_ts in (None, m.ts) and run_id in m.text]
    assert [m.ts for m in parents] == [thread.parent.ts], f"run {run_id} has {len(parents)} parent messages"
    checklist = json.dumps(thread.parent.blocks)
    assert f"{len(steps)}/{len(steps)} steps complete" in thread.parent.text, thread.parent.text
    assert {step.status for step in steps} <= {"done", "skipped"}, [(s.title, s.status) for s in steps]
    assert checklist.count(":white_check_mark:") == sum(step.status == "done" for step in steps), checklist
    assert checklist.count(":fast_forward:") == sum(step.status == "skipped" for step in steps), checklist
    assert f"*{status}*" in checklist

    # A step that ran (even one that handed over to a new plan) reports once; a step skipped unstarted never.
    # Titles can repeat within a run (a replanned tail), so count per title.
    ran = Counter(step.title for step in steps if step.started_at is not None)
    for title in {step.title for step in steps}:
        reports = thread.replies_starting(f"{title}: ")
        assert len(reports) == ran[title], f"{title!r}: {len(reports)} report replies for {ran[title]} runs of it"
    summaries = thread.replies_starting(f"Run {run_id} ")
    assert len(summaries) == 1 and summaries[0].broadcast, [m.text for m in thread.replies]
    assert thread.replies[-1].ts == summaries[0].ts, "the summary is not the last reply"
    assert_nothing_posted_twice(slack)
    return thread


def assert_nothing_posted_twice(slack: SlackStandIn) -> None:
    """No two parent messages in the ops channel, and no two messages within one thread, carry the same text.
    (Two runs' threads may legitimately hold the same step report.)"""
    parents = [top for top in slack.messages(OPS) if top.thread_ts in (None, top.ts)]  # not broadcast replies
    for messages in ([*parents], *([parent, *parent.replies] for parent in parents)):
        texts = [message.text for message in messages]
        twice = sorted({text[:120] for text in texts if texts.count(text) > 1})
        assert not twice, f"posted more than once: {twice}"


# ---------------------------------------------------------------- a recording hop between the stand-in and the app


class RequestRecorder:
    """A pass-through HTTP hop that keeps the exact bytes and headers of every request, so a test can replay or
    tamper with a genuine signed request. Point `slack.app_url` at `url`."""

    def __init__(self, target_url: str) -> None:
        self.target_url = target_url
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def __aenter__(self) -> RequestRecorder:
        app = web.Application()
        app.router.add_post("/slack/events", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/slack/events"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session:
            await self._session.close()
        if self._runner:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith(("x-slack-", "content-type"))}
        self.requests.append((body, headers))
        status, text = await self.send(body, headers)
        return web.Response(status=status, text=text, content_type="application/json" if text[:1] == "{" else None)

    async def send(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """Sends these exact bytes and headers to the app; returns its status and body."""
        assert self._session is not None
        async with self._session.post(self.target_url, data=body, headers=headers) as response:
            return response.status, await response.text()
