"""The pure side of watching a deployment: which AWS states are failures and what they tell the operator, and how
RDS events are shown (bot/gates/deployment_health.py, bot/workflow/watch.py's text helpers)."""

from __future__ import annotations

import json

import pytest

from bot.aws.deployment_events import RdsEvent
from bot.aws.models import Deployment, DeploymentTask, SwitchoverMember
from bot.gates.deployment_health import (
    INVALID_CONFIGURATION,
    MEMBER_MISSING,
    REPLICATION_DEGRADED,
    SWITCHOVER_FAILED,
    TASK_FAILED,
    deployment_failure,
    deployment_gone,
)
from bot.gates.model import FAIL
from bot.workflow.watch import EVENT_LINES, events_text, relevant
from handlers.messages.approvals import approval_decided

BLUE = "arn:aws:rds:us-east-1:123456789012:db:orders-pg"
GREEN = "arn:aws:rds:us-east-1:123456789012:db:orders-pg-green-abcdef"


def deployment(
    status: str = "AVAILABLE", details: str | None = None, member: str = "AVAILABLE", tasks=()
) -> Deployment:
    return Deployment(
        identifier="bgd-0123456789abcdef",
        name="bg-orders-pg-1",
        source_arn=BLUE,
        target_arn=GREEN,
        status=status,
        status_details=details,
        tasks=tuple(DeploymentTask(name, state) for name, state in tasks),
        members=(SwitchoverMember(BLUE, GREEN, member),),
    )


@pytest.mark.parametrize(
    "healthy",
    [
        deployment("PROVISIONING", member="PROVISIONING", tasks=[("CREATING_READ_REPLICA_OF_SOURCE", "IN_PROGRESS")]),
        deployment("AVAILABLE"),
        deployment("SWITCHOVER_IN_PROGRESS", "Switchover in progress", member="SWITCHOVER_IN_PROGRESS"),
        deployment("SWITCHOVER_COMPLETED", member="SWITCHOVER_COMPLETED"),
    ],
)
def test_a_deployment_on_its_way_is_not_a_failure(healthy: Deployment) -> None:
    assert deployment_failure(healthy, "orders-pg") is None


@pytest.mark.parametrize(
    "degraded",
    [
        deployment("AVAILABLE", "Replication degraded"),
        deployment("AVAILABLE", member="REPLICATION_DEGRADED"),
        deployment("INVALID_CONFIGURATION", "replication-degraded: DDL on blue"),
    ],
)
def test_degraded_replication_is_read_from_status_details_or_a_member(degraded: Deployment) -> None:
    failure = deployment_failure(degraded, "orders-pg")

    assert failure is not None and failure.code == REPLICATION_DEGRADED
    assert "degraded" in failure.reason and "bgd-0123456789abcdef" in failure.reason
    assert "`rollback orders-pg`" in failure.fix and "`create orders-pg` again" in failure.fix


def test_each_failure_names_what_aws_reports_and_the_fix() -> None:
    invalid = deployment_failure(deployment("INVALID_CONFIGURATION", "green was promoted"), "orders-pg")
    switch = deployment_failure(deployment("SWITCHOVER_FAILED", "Switchover timed out"), "orders-pg")
    task = deployment_failure(
        deployment("PROVISIONING", tasks=[("CONFIGURE_BACKUPS", "COMPLETED"), ("DB_ENGINE_VERSION_UPGRADE", "FAILED")]),
        "orders-pg",
    )
    missing = deployment_failure(deployment("AVAILABLE", member="MISSING_TARGET"), "orders-pg")

    assert invalid and invalid.code == INVALID_CONFIGURATION and "green was promoted" in invalid.reason
    assert "`rollback orders-pg`" in invalid.fix
    assert switch and switch.code == SWITCHOVER_FAILED and "Switchover timed out" in switch.reason
    assert "`switchover orders-pg`" in switch.fix and "nothing was renamed" in switch.reason
    assert task and task.code == TASK_FAILED and "DB_ENGINE_VERSION_UPGRADE" in task.reason
    assert "CONFIGURE_BACKUPS" not in task.reason and "`rollback orders-pg`" in task.fix
    assert missing and missing.code == MEMBER_MISSING and "orders-pg-green-abcdef (MISSING_TARGET)" in missing.reason
    gate = invalid.as_gate()
    assert (gate.status, gate.reason, gate.fix) == (FAIL, invalid.reason, invalid.fix)
    assert "`create orders-pg`" in deployment_gone("bgd-1", "orders-pg").fix


def event(source: str, message: str, at: float = 1_700_000_000.0) -> RdsEvent:
    return RdsEvent(source, "blue-green-deployment" if source.startswith("bgd-") else "db-instance", message, at)


def test_every_deployment_event_is_shown_but_only_the_relevant_member_events() -> None:
    assert relevant(event("bgd-1", "Blue/green deployment created"), "bgd-1")
    assert relevant(event("orders-pg-green-abcdef", "Storage optimization in progress"), "bgd-1")
    assert not relevant(event("orders-pg", "Finished DB instance backup"), "bgd-1")


def test_a_long_batch_of_events_is_counted_with_the_command_that_lists_them_all() -> None:
    batch = [event("bgd-1", f"event {n}", 1_700_000_000.0 + n) for n in range(EVENT_LINES + 3)]

    text = events_text(batch, "bgd-1")

    assert text.startswith("RDS events for bgd-1:")
    assert text.count("\n• ") == EVENT_LINES + 1
    assert "22:13:20 UTC bgd-1: event 0" in text
    assert "and 3 more" in text and "--source-identifier bgd-1" in text
    assert event("bgd-1", "x").key == event("bgd-1", "x").key != event("bgd-1", "y").key


def test_a_voided_request_message_says_why_and_has_no_buttons() -> None:
    message = approval_decided(
        request_id="a-1",
        run_id="r-1",
        kind="switchover",
        action="switch production over",
        decision="voided",
        user=None,
        at=1_700_000_000.0,
        reason="replication from blue to green is degraded",
    )

    rendered = json.dumps(message.as_kwargs()["blocks"])
    assert "Voided by the bot" in rendered and "replication from blue to green is degraded" in rendered
    assert "no longer be approved" in rendered and '"actions"' not in rendered
    assert "degraded" in message.text
