"""Failures and RDS events seen while a run waits (bot/workflow/watch.py), against the sandbox AWS over HTTP:
replication degrading while a switchover awaits approval, INVALID_CONFIGURATION or a failed task while green is
provisioned, a failure while the maintenance window is awaited, and the RDS events posted de-duplicated,
rate-limited and not again after a restart."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest

from bot.config import MaintenanceWindow, Settings
from bot.errors import ApprovalRefused
from bot.workflow import watch
from bot.workflow.engine import Engine
from bot.workflow.events import ApprovalDecided, Event, Notice, StepReport
from bot.workflow.steps import approval as approval_step
from sandbox.aws import Sandbox
from sandbox.waiting import async_wait_until
from storage import open_store
from tests.engine_fixtures import (
    APPROVER,
    RecordingSink,
    calls,
    pending_request,
    request,
    run_to_end,
    sandbox_gateways,
)

EVENTS_INTERVAL = 0.6


@pytest.fixture(autouse=True)
def fast_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "WATCH_INTERVAL", 0.05)
    monkeypatch.setattr(watch, "EVENTS_INTERVAL", EVENTS_INTERVAL)


def broadcasts(sink: RecordingSink, word: str) -> list[Notice]:
    return [n for n in sink.of(Notice) if n.broadcast and word in n.text]


async def deployment_provisioning(rds: Any, database: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        arn = rds.describe_db_instances(DBInstanceIdentifier=database)["DBInstances"][0]["DBInstanceArn"]
        listed = rds.describe_blue_green_deployments(Filters=[{"Name": "source", "Values": [arn]}])
        live = [d for d in listed["BlueGreenDeployments"] if d["Status"] == "PROVISIONING"]
        return live[0] if live else None

    return await async_wait_until(found, 10, what=f"a deployment of {database} provisioning")


async def test_degraded_replication_voids_the_pending_approval_and_fails_the_run(engine, sandbox, sink, store):
    created = await run_to_end(engine, request("create", "orders-pg"))
    assert created.status == "succeeded", created.error
    run = await engine.start(request("switchover", "orders-pg"))
    pending = await pending_request(store, run.id)

    sandbox.control.degrade_replication("orders-pg")
    final = await engine.wait(run.id, 20)

    assert final.status == "failed"
    assert "degraded" in (final.error or "") and "`rollback orders-pg`" in (final.error or "")
    voided = store.approvals.get(pending.id)
    assert voided.status == "rejected" and "degraded" in voided.meta[watch.VOIDED]["reason"]
    with pytest.raises(ApprovalRefused) as refused:
        await engine.approve(pending.id, APPROVER)
    assert "voided" in refused.value.message and "degraded" in refused.value.message
    assert refused.value.fix and "`create orders-pg` again" in refused.value.fix
    assert store.approvals.get(pending.id).status == "rejected"  # the refused click changed nothing
    (notice,) = broadcasts(sink, "degraded")
    assert "`rollback orders-pg`" in notice.text
    (decided,) = [e for e in sink.of(ApprovalDecided) if e.request_id == pending.id]
    assert decided.decision == "voided" and decided.reason and "degraded" in decided.reason
    assert [e.action for e in store.audit.list(run_id=run.id) if e.action.startswith("approval:")] == [
        "approval:requested",
        "approval:voided",
        "approval:refused:approved",
    ]
    assert calls(sandbox, "SwitchoverBlueGreenDeployment", ok_only=False) == []


async def test_invalid_configuration_while_provisioning_fails_the_create_with_the_fix(
    engine, sandbox, sink, store, rds
):
    sandbox.control.config(proxy_mode="native", provisioning_task=0.5)
    run = await engine.start(request("create", "orders-pg", engine_version="16.4"))
    await deployment_provisioning(rds, "orders-pg")

    sandbox.control.invalidate_configuration("orders-pg")
    final = await engine.wait(run.id, 20)

    assert final.status == "failed"
    assert "INVALID_CONFIGURATION" in (final.error or "") and "`rollback orders-pg`" in (final.error or "")
    (notice,) = broadcasts(sink, "INVALID_CONFIGURATION")
    assert "`create orders-pg` again" in notice.text
    assert store.runs.get(run.id).meta[watch.FAILURE_META]["code"] == "INVALID_CONFIGURATION"


async def test_a_failed_task_while_provisioning_is_reported_with_aws_reason(engine, sandbox, sandbox_client, sink, rds):
    sandbox.control.config(proxy_mode="native", provisioning_task=0.5)
    run = await engine.start(request("create", "orders-pg", engine_version="16.4"))
    await deployment_provisioning(rds, "orders-pg")

    failed = sandbox_client.fail_provisioning("orders-pg", reason="the target parameter group is incompatible")
    final = await engine.wait(run.id, 20)

    assert final.status == "failed"
    assert f"task {failed['task']}" in (final.error or "") and "`rollback orders-pg`" in (final.error or "")
    assert broadcasts(sink, f"task {failed['task']}")
    shown = "\n".join([n.text for n in sink.of(Notice)] + ["\n".join(r.lines) for r in sink.of(StepReport)])
    assert shown.count("Creation of blue/green deployment failed because the target parameter group is") == 1


@pytest.fixture
async def engine_with(sandbox: Sandbox, settings: Settings) -> AsyncIterator[Callable[..., Engine]]:
    """Engines on the sandbox with a sink and settings of the test's choosing (closed at the end)."""
    made: list[Engine] = []

    def make(sink: RecordingSink, chosen: Settings = settings) -> Engine:
        made.append(
            Engine(store=open_store(chosen.db_path), settings=chosen, sinks=[sink], gateways=sandbox_gateways(sandbox))
        )
        return made[-1]

    yield make
    for engine in made:
        await engine.aclose()
        engine.store.close()


async def test_a_failure_while_the_window_is_awaited_fails_the_approved_switchover(
    sandbox, settings, engine_with, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(approval_step, "WINDOW_POLL_SECONDS", 0.05)
    hour = time.gmtime().tm_hour
    closed = MaintenanceWindow.parse(f"{(hour + 3) % 24:02d}:00-{(hour + 4) % 24:02d}:00")  # hours from now
    env = settings.environment()
    windowed = replace(settings, environments={env.name: replace(env, maintenance_window=closed)})
    sink = RecordingSink()
    engine = engine_with(sink, windowed)
    created = await run_to_end(engine, request("create", "orders-pg"))
    assert created.status == "succeeded", created.error
    run = await engine.start(request("switchover", "orders-pg"))
    await engine.approve((await pending_request(engine.store, run.id)).id, APPROVER)
    await async_wait_until(
        lambda: engine.store.runs.get(run.id).status == "waiting_window", 10, what="the run to await the window"
    )

    sandbox.control.invalidate_configuration("orders-pg")
    final = await engine.wait(run.id, 20)

    assert final.status == "failed" and "INVALID_CONFIGURATION" in (final.error or "")
    assert broadcasts(sink, "INVALID_CONFIGURATION")
    assert calls(sandbox, "SwitchoverBlueGreenDeployment", ok_only=False) == []


class TimedSink(RecordingSink):
    """Records when each event reached it (monotonic seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[tuple[float, Event]] = []

    async def emit(self, event: Event) -> None:
        self.times.append((time.monotonic(), event))
        await super().emit(event)


def event_messages(sink: TimedSink) -> list[tuple[float, str]]:
    return [(at, e.text) for at, e in sink.times if isinstance(e, Notice) and e.text.startswith("RDS event")]


def shown_events(texts: list[str], deployment_id: str) -> Counter[str]:
    """The event messages in notices and reports, one per bullet line."""
    marker = f" UTC {deployment_id}: "
    return Counter(line.split(marker, 1)[1] for text in texts for line in text.splitlines() if marker in line)


async def test_rds_events_are_posted_once_each_and_at_most_one_message_per_interval(sandbox, engine_with, rds):
    sandbox.control.config(proxy_mode="native", provisioning_task=0.4)
    sink = TimedSink()
    engine = engine_with(sink)
    run = await engine.start(request("create", "orders-pg", engine_version="16.4"))
    deployment_id = (await deployment_provisioning(rds, "orders-pg"))["BlueGreenDeploymentIdentifier"]
    for _ in range(3):  # green's storage initialisation starts and ends, as AWS reports it: two events each time
        reads = len(calls(sandbox, "DescribeEvents"))
        sandbox.control.set_green_status("orders-pg", "storage-initialization", progress=10)
        sandbox.control.set_green_status("orders-pg", "available")
        await async_wait_until(
            lambda before=reads: len(calls(sandbox, "DescribeEvents")) > before, 10, what="the bot to read them"
        )
    final = await engine.wait(run.id, 30)
    assert final.status == "succeeded", final.error

    listed = rds.describe_events(SourceType="blue-green-deployment", SourceIdentifier=deployment_id)["Events"]
    messages = event_messages(sink)
    reports = ["\n".join(e.lines) for e in sink.of(StepReport)]
    assert len(listed) >= 4  # storage initialisations begun (and ended), then the creation completed
    assert shown_events([text for _, text in messages] + reports, deployment_id) == Counter(
        e["Message"] for e in listed
    )
    assert 1 <= len(messages) < len(listed)
    gaps = [later - earlier for (earlier, _), (later, _) in pairwise(messages)]
    assert all(gap >= EVENTS_INTERVAL * 0.9 for gap in gaps), gaps


def event_notices(sink: RecordingSink, message: str) -> list[Notice]:
    return [n for n in sink.of(Notice) if n.text.startswith("RDS event") and message in n.text]


async def test_a_resumed_run_does_not_post_the_events_it_posted_before(sandbox, engine_with):
    first_sink, second_sink = RecordingSink(), RecordingSink()
    first = engine_with(first_sink)
    created = await run_to_end(first, request("create", "orders-pg"))
    assert created.status == "succeeded", created.error
    run = await first.start(request("switchover", "orders-pg"))
    await pending_request(first.store, run.id)  # the approval gate watches from now on
    sandbox.control.set_green_status("orders-pg", "storage-initialization", progress=40)  # RDS-EVENT-0405
    began = "Your storage volumes are being initialized."
    await async_wait_until(lambda: event_notices(first_sink, began), 10, what="the event in the thread")
    await first.aclose()  # the process stops; the run stays active, waiting for its approval

    second = engine_with(second_sink)
    assert await second.resume_unfinished() == [run.id]
    sandbox.control.set_green_status("orders-pg", "available")  # RDS-EVENT-0406
    ended = "Your storage volumes have been initialized."
    await async_wait_until(lambda: event_notices(second_sink, ended), 10, what="the new event in the thread")
    await second.cancel(run.id, APPROVER)
    final = await second.wait(run.id, 30)

    assert final.status == "cancelled", final.error
    assert len(event_notices(first_sink, began)) == 1
    assert event_notices(second_sink, began) == []  # remembered in the run's meta: not posted again
    assert len(event_notices(second_sink, ended)) == 1
