"""Is a blue/green deployment still able to switch over? Pure: a `Deployment` as AWS describes it (status,
StatusDetails, tasks, SwitchoverDetails member statuses) -> the failure an operator must hear about now, with its
fix, or None. Used while a run waits (provisioning, approval, maintenance window): see `bot.workflow.watch`.

AWS's words (API reference, BlueGreenDeployment / SwitchoverDetail / BlueGreenDeploymentTask, and the user guide's
"Switching a blue/green deployment" and "Limitations and considerations"):
- INVALID_CONFIGURATION: "Resources in the green environment are invalid, so switchover isn't possible" (for
  example green promoted by hand: replication is broken for good).
- SWITCHOVER_FAILED: a switchover was attempted and rolled back; nothing was renamed.
- Replication degraded (PostgreSQL logical replication after DDL or a large-object change on blue): green reports
  REPLICATION_DEGRADED and the deployment can never switch over; AWS's advice is to delete it and create it again.
- A task FAILED, or a member MISSING_SOURCE / MISSING_TARGET (a database of the pair was deleted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.aws.models import Deployment, identifier_from_arn
from bot.gates.model import FAIL, GateResult

GATE_NAME = "deployment health"

INVALID_CONFIGURATION = "INVALID_CONFIGURATION"
SWITCHOVER_FAILED = "SWITCHOVER_FAILED"
REPLICATION_DEGRADED = "REPLICATION_DEGRADED"
TASK_FAILED = "TASK_FAILED"
MEMBER_MISSING = "MEMBER_MISSING"
DELETING = "DELETING"
MISSING = "MISSING"

MISSING_MEMBER_STATUSES = frozenset({"MISSING_SOURCE", "MISSING_TARGET"})


@dataclass(frozen=True, slots=True)
class DeploymentFailure:
    """Why the deployment cannot be switched over, and what the operator should do."""

    code: str  # one of the constants above
    reason: str  # one line: what AWS reports
    fix: str  # what to do, with the commands

    def as_gate(self) -> GateResult:
        return GateResult(GATE_NAME, FAIL, self.reason, self.fix)

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "reason": self.reason, "fix": self.fix}


def _normalised(text: str | None) -> str:
    """ "Replication degraded", "replication-degraded" and "REPLICATION_DEGRADED" all read alike."""
    return re.sub(r"[\s\-]+", "_", (text or "").strip()).upper()


def replication_degraded(deployment: Deployment) -> bool:
    """Whether AWS reports the deployment's replication as degraded, in StatusDetails or in a member's status."""
    texts = [deployment.status, deployment.status_details, *(m.status for m in deployment.members)]
    return any(REPLICATION_DEGRADED in _normalised(text) for text in texts)


def _recreate(database: str) -> str:
    return f"`rollback {database}` (deletes the deployment and its green databases), then `create {database}` again"


def deployment_failure(deployment: Deployment, database: str) -> DeploymentFailure | None:
    """The first reason, in order of severity, that `deployment` (of blue database `database`) can no longer switch
    over; None while it is healthy (PROVISIONING, AVAILABLE, SWITCHOVER_IN_PROGRESS or SWITCHOVER_COMPLETED)."""
    name = deployment.identifier
    details = f": {deployment.status_details}" if deployment.status_details else ""
    if replication_degraded(deployment):
        return DeploymentFailure(
            REPLICATION_DEGRADED,
            f"replication from blue to green is degraded on {name}{details}; AWS will refuse its switchover",
            "A DDL or large-object change on blue breaks PostgreSQL logical replication for good:"
            f" {_recreate(database)}, and avoid DDL on blue until the switchover.",
        )
    if deployment.status == INVALID_CONFIGURATION:
        return DeploymentFailure(
            INVALID_CONFIGURATION,
            f"deployment {name} is INVALID_CONFIGURATION{details}: green is no longer a valid copy of blue",
            "Replication is broken (green promoted or changed by hand?) and cannot be repaired:"
            f" {_recreate(database)}.",
        )
    if deployment.status == SWITCHOVER_FAILED:
        return DeploymentFailure(
            SWITCHOVER_FAILED,
            f"a switchover of {name} failed{details}; AWS rolled it back, nothing was renamed",
            f"Read the RDS events in this thread for the cause; `status {database}` shows when the deployment is"
            f" AVAILABLE again, then start `switchover {database}` again, or remove it with `rollback {database}`.",
        )
    failed = [task.name for task in deployment.tasks if task.status == "FAILED"]
    if failed:
        return DeploymentFailure(
            TASK_FAILED,
            f"task {', '.join(failed)} of {name} failed{details}",
            f"Green cannot be completed: {_recreate(database)}; check the RDS events in this thread for the cause"
            " (an engine version or parameter group AWS refused, for example).",
        )
    missing = [m for m in deployment.members if m.status in MISSING_MEMBER_STATUSES]
    if missing:
        gone = ", ".join(
            f"{identifier_from_arn(m.source if m.status == 'MISSING_SOURCE' else m.target)} ({m.status})"
            for m in missing
        )
        return DeploymentFailure(
            MEMBER_MISSING,
            f"a database of {name} was deleted: {gone}",
            f"The deployment is incomplete and cannot switch over: {_recreate(database)}.",
        )
    if deployment.status == DELETING:
        return DeploymentFailure(
            DELETING,
            f"deployment {name} is being deleted (not by this run)",
            f"Someone removed it: `create {database}` again when it is gone.",
        )
    return None


def deployment_gone(deployment_id: str, database: str) -> DeploymentFailure:
    """The deployment the run waits on no longer exists (deleted outside this run)."""
    return DeploymentFailure(
        MISSING,
        f"deployment {deployment_id} no longer exists (deleted outside this run)",
        f"There is nothing to switch over: `create {database}` again.",
    )
