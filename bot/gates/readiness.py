"""Readiness: is the deployment ready to switch over now? Checked before the approval request and again right
before the first detach (or before the switchover call when nothing is detached), never inside a detached window.

Gates: the deployment AVAILABLE; every SwitchoverDetails member AVAILABLE; every green instance `available`
(storage optimisation or initialisation are pending, with their progress); replica lag under `max_replica_lag`
(`bot.gates.replica_lag`); no pending maintenance action on green. Reads go through the gateway and never raise
for AWS: a read that failed makes its gate unknown.
"""

from __future__ import annotations

import asyncio

from bot.aws.database_reads import DatabaseReads, InstanceState, MaintenanceAction, Unread
from bot.aws.models import Database, Deployment
from bot.gates.model import FAIL, PASS, UNKNOWN, GateResult
from bot.gates.replica_lag import judge_lag, lag_source, publishers

DEPLOYMENT, MEMBERS, GREEN, MAINTENANCE = "deployment", "switchover members", "green instances", "pending maintenance"
STORAGE_STATES = {"storage-optimization", "storage-initialization"}
BROKEN = {"INVALID_CONFIGURATION", "SWITCHOVER_FAILED"}


def judge_deployment(deployment: Deployment) -> GateResult:
    details = f" ({deployment.status_details})" if deployment.status_details else ""
    reason = f"{deployment.identifier} is {deployment.status}{details}"
    if deployment.status == "AVAILABLE":
        return GateResult(DEPLOYMENT, PASS, reason)
    if deployment.status == "PROVISIONING":
        return GateResult(DEPLOYMENT, FAIL, reason, fix="Wait for it to be AVAILABLE, then ask again.", pending=True)
    fix = (
        "It can no longer switch over: `rollback`, then `create` again."
        if deployment.status in BROKEN
        else "Check the deployment in the RDS console."
    )
    return GateResult(DEPLOYMENT, FAIL, reason, fix=fix)


def judge_members(deployment: Deployment) -> GateResult:
    if not deployment.members:
        return GateResult(MEMBERS, UNKNOWN, "AWS lists no SwitchoverDetails for the deployment")
    waiting = [m for m in deployment.members if m.status != "AVAILABLE"]
    if not waiting:
        return GateResult(MEMBERS, PASS, f"all {len(deployment.members)} AVAILABLE")
    listed = ", ".join(f"{(m.target or m.source).rsplit(':', 1)[-1]} {m.status}" for m in waiting)
    return GateResult(
        MEMBERS,
        FAIL,
        f"not AVAILABLE: {listed}",
        fix="Wait until every member is AVAILABLE (`status <db>`), then ask again.",
        pending=all(m.status in {"PROVISIONING", "AVAILABLE"} for m in waiting),
    )


def _state(state: InstanceState) -> str:
    progress = f" ({state.percent_progress}%)" if state.percent_progress is not None else ""
    return f"{state.identifier} is {state.status}{progress}"


def judge_green(states: list[InstanceState] | Unread) -> GateResult:
    if isinstance(states, Unread):
        return GateResult(GREEN, UNKNOWN, f"DescribeDBInstances did not answer ({states.reason})")
    if not states:
        return GateResult(GREEN, FAIL, "green has no instance", fix="Check the deployment in the RDS console.")
    busy = [s for s in states if s.status != "available"]
    if not busy:
        return GateResult(GREEN, PASS, f"{len(states)} available: " + ", ".join(s.identifier for s in states))
    storage = all(s.status in STORAGE_STATES for s in busy)
    fix = (
        "Wait for the storage work to finish (AWS refuses the switchover until then); `status <db>` shows it."
        if storage
        else "Wait for green to be available, or check it in the RDS console."
    )
    return GateResult(GREEN, FAIL, "; ".join(_state(s) for s in busy), fix=fix, pending=storage)


def judge_maintenance(actions: list[MaintenanceAction] | Unread) -> GateResult:
    if isinstance(actions, Unread):
        return GateResult(
            MAINTENANCE,
            UNKNOWN,
            f"DescribePendingMaintenanceActions did not answer ({actions.reason})",
            fix="Grant rds:DescribePendingMaintenanceActions to the bot (iam-policy.json).",
        )
    if not actions:
        return GateResult(MAINTENANCE, PASS, "none on green")
    first = actions[0]
    listed = "; ".join(
        f"{a.action} on {a.resource_arn.rsplit(':', 1)[-1]}" + (f" ({a.description})" if a.description else "")
        for a in actions
    )
    return GateResult(
        MAINTENANCE,
        FAIL,
        f"pending on green: {listed}",
        fix="Apply it before switching over: `aws rds apply-pending-maintenance-action --resource-identifier"
        f" {first.resource_arn} --apply-action {first.action} --opt-in-type immediate`, wait for green to be"
        " available, then ask again.",
    )


def green_instance_arns(green: Database) -> list[str]:
    """Green's instances (an Aurora cluster's members), as ARNs; plus the cluster itself for maintenance."""
    if green.kind != "cluster":
        return [green.arn]
    prefix = green.arn.rsplit(":cluster:", 1)[0]
    return [green.arn, *(f"{prefix}:db:{member}" for member in green.members)]


async def evaluate_readiness(
    gateway: DatabaseReads, deployment: Deployment, blue: Database, green: Database | None, *, max_lag: float
) -> list[GateResult]:
    """Every readiness gate of `deployment` (whose blue is `blue` and green `green`), in a fixed order."""
    results = [judge_deployment(deployment), judge_members(deployment)]
    if green is None:
        missing = GateResult(
            GREEN, FAIL, f"green {deployment.target_arn or '?'} does not exist", fix="`rollback`, then `create` again."
        )
        return [*results, missing]
    instances = list(green.members) if green.kind == "cluster" else [green.identifier]
    source = lag_source(blue.engine, blue.engine_version, green.engine_version)
    states, lag, maintenance = await asyncio.gather(
        gateway.instance_states(instances),
        gateway.latest_metric(source.metric, publishers(source, blue, green)),
        gateway.pending_maintenance(green_instance_arns(green)),
    )
    return [*results, judge_green(states), judge_lag(source, lag, max_lag), judge_maintenance(maintenance)]


def only_pending_lag(results: list[GateResult]) -> bool:
    """Every failure is the replica lag, over the limit: worth waiting for (the lag wait)."""
    failures = [r for r in results if r.status == FAIL]
    return bool(failures) and all(r.name == "replica lag" and r.pending for r in failures)
