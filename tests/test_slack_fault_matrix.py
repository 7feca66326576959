"""The Slack fault matrix: `chat.postMessage` and `chat.update` answer 429 (with Retry-After), 500, 503, or late
(after the client gave up, the call still applied) at the first call, in the middle, or at the end of a real run.

Each case runs `create orders-pg` with the real engine on the sandbox AWS through the real app over HTTP, and
asserts that the run succeeds and its thread ends complete with nothing posted twice.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.aws import Sandbox
from sandbox.slack import Message, SlackStandIn
from storage import Store
from tests.bot_fixtures import (
    Bot,
    make_settings,
    sandbox_engine,
    serve_bot,
)
from tests.slack_fixtures import (
    ALICE,
    assert_thread_complete,
    slack_fixture,  # noqa: F401  (the `slack` fixture)
    start_run,
)

CLIENT_TIMEOUT = 1.0  # the app's Slack client gives up after this long...
LATE = 1.5  # ...and a "late" call is applied this long after it arrived
RUN_TIMEOUT = 60
METHODS = ("chat.postMessage", "chat.update")
FAULTS = ("429", "500", "503", "late")
POINTS = ("first", "middle", "last")


@dataclass(frozen=True)
class SlackFault:
    method: str
    fault: str
    point: str

    def arm(self, slack: SlackStandIn) -> None:
        if self.fault == "late":
            slack.fail_next(self.method, delay=LATE)
        else:
            slack.fail_next(self.method, status=int(self.fault), retry_after=1)


def cases() -> list[pytest.ParameterSet]:
    return [
        pytest.param(SlackFault(method, fault, point), id=f"{method}-{fault}-{point}")
        for method, fault, point in itertools.product(METHODS, FAULTS, POINTS)
    ]


@pytest.fixture
async def live(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Bot]:
    settings = make_settings(tmp_path, slack.base_url)
    async with serve_bot(slack, settings, sandbox_engine(sandbox.endpoint), client_timeout=CLIENT_TIMEOUT) as served:
        yield served


class ArmAtPoint:
    """Arms the fault right before the chosen call: before the run (first), after the report of the step halfway
    through (middle), or after the last step's report, so that the final checklist edit or the summary meets it."""

    def __init__(self, fault: SlackFault, slack: SlackStandIn, store: Store) -> None:
        self.fault = fault
        self.slack = slack
        self.store = store
        self.armed = False
        if fault.point == "first":
            self._arm()
        else:
            slack.on_message = self

    def _arm(self) -> None:
        self.armed = True
        self.fault.arm(self.slack)

    def __call__(self, event: str, message: Message) -> None:
        """The stand-in's listener: called after each change, before it answers the call that made it."""
        runs = self.store.runs.list(limit=1)
        if self.armed or event != "posted" or not message.thread_ts or not runs:
            return
        titles = [step.title for step in self.store.steps.list(runs[0].id) if step.status != "skipped"]
        wanted = titles[len(titles) // 2] if self.fault.point == "middle" else titles[-1]
        if message.text.startswith(f"{wanted}: "):
            self._arm()


@pytest.mark.parametrize("fault", cases())
async def test_slack_faults_leave_the_thread_complete(slack: SlackStandIn, live: Bot, fault: SlackFault) -> None:
    arming = ArmAtPoint(fault, slack, live.store)

    run_id = await start_run(slack, live.store, ALICE, "create orders-pg")
    assert (await live.engine.wait(run_id, within=RUN_TIMEOUT)).status == "succeeded"
    await live.sink.drain()
    assert arming.armed
    if fault.fault == "late":  # the client gave up; the call is applied late, whatever the sink did meanwhile
        await slack.wait_for(lambda: slack.held_back == 0, timeout=4 * LATE + 4, description="the late call applied")
        if fault.method == "chat.postMessage":  # the sink read the channel back before posting again
            assert slack.calls("conversations.replies") or slack.calls("conversations.history")
        else:  # the sink sent the checklist again, after an edit that arrived later had been applied
            await slack.wait_for(lambda: landed_late(slack, fault.method), timeout=4 * LATE + 4)  # room for a loaded CI
    else:
        faulted = [call.status for call in slack.calls(fault.method) if call.status != 200]
        assert faulted == [int(fault.fault)]
    assert_thread_complete(slack, live.store, run_id)


def landed_late(slack: SlackStandIn, method: str) -> bool:
    """A call the stand-in held back is recorded when it is finally applied, after calls that arrived later."""
    arrivals = [call.t for call in slack.calls(method)]
    return any(later < earlier for earlier, later in itertools.pairwise(arrivals))
