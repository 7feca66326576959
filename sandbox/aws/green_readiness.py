"""Green instances that are not ready although the deployment says AVAILABLE, and the switchover AWS then refuses.

- A green instance can sit in `storage-optimization` (after a storage change) or `storage-initialization` (lazy
  loading after creation) with `PercentProgress`, while DescribeBlueGreenDeployments already says AVAILABLE
  (terraform-provider-aws #36241, #35802, PR #48830; RDS User Guide, "Lazy loading and storage initialization for
  blue/green deployments"). SwitchoverBlueGreenDeployment then fails with InvalidBlueGreenDeploymentStateFault
  "DB instance <green> is not in available state".
- Storage initialisation emits RDS-EVENT-0405 / RDS-EVENT-0406 for the deployment.
- A deployment whose replication is degraded cannot switch over (sandbox/aws/replication.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.rds.models import DBCluster, DBInstance

from sandbox.aws import errors
from sandbox.aws.blue_green import current_status

if TYPE_CHECKING:
    from sandbox.aws.blue_green import SandboxBlueGreenDeployment
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

GREEN_STATUSES = (
    "available",
    "storage-optimization",
    "storage-initialization",
    "modifying",
    "backing-up",
    "rebooting",
    "configuring-enhanced-monitoring",
    "maintenance",
)
PROGRESS_STATUSES = ("storage-optimization", "storage-initialization")
PINNED = "sandbox_pinned_status"


def green_instances(deployment: SandboxBlueGreenDeployment) -> list[DBInstance]:
    return [pair.green for pair in deployment.pairs if isinstance(pair.green, DBInstance)]


class GreenReadinessMixin:
    """Green instance statuses and the switchover refusals that follow; mixed into SandboxRDSBackend."""

    def green_ready_status(self, green: DBInstance | DBCluster) -> str:
        """What a green database shows once provisioning ends: `available`, or a status a test set earlier."""
        return getattr(green, PINNED, None) or "available"

    def set_green_status(
        self: SandboxRDSBackend, source: str, status: str, progress: int | None = None
    ) -> dict[str, Any]:
        if status not in GREEN_STATUSES:
            raise ValueError(f"status must be one of {GREEN_STATUSES}")
        if progress is not None and not 0 <= int(progress) <= 100:
            raise ValueError("progress must be between 0 and 100")
        deployment = self.active_deployment_for(source)
        greens = green_instances(deployment)
        previous = {current_status(green) for green in greens}
        provisioning = deployment.status == "PROVISIONING"
        for green in greens:
            setattr(green, PINNED, None if status == "available" else status)
            green.percent_progress = (
                str(int(progress)) if progress is not None and status in PROGRESS_STATUSES else None
            )
            if not provisioning:  # while provisioning the status applies when the green is created
                self._set_resource_status(green, status)
        if status == "storage-initialization" and "storage-initialization" not in previous:
            self.emit_deployment_event(deployment, "RDS-EVENT-0405")
        if status == "available" and "storage-initialization" in previous:
            self.emit_deployment_event(deployment, "RDS-EVENT-0406")
        return {
            "deployment": deployment.blue_green_deployment_identifier,
            "instances": [green.db_instance_identifier for green in greens],
            "status": status,
            "progress": progress,
        }

    def refuse_unready_switchover(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment) -> None:
        """AWS checks before it starts: replication not degraded, every green database available."""
        deployment_id = deployment.blue_green_deployment_identifier
        degraded = deployment.replication.degraded
        if degraded is not None:
            raise errors.invalid_deployment_state(
                f"Switchover isn't available for blue/green deployment {deployment_id} because its replication is "
                f"degraded ({degraded}). Delete the blue/green deployment and its green databases, then create it "
                "again."
            )
        for pair in deployment.pairs:
            green = pair.green
            if current_status(green) != "available":
                noun = "DB cluster" if isinstance(green, DBCluster) else "DB instance"
                identifier = (
                    green.db_cluster_identifier if isinstance(green, DBCluster) else green.db_instance_identifier
                )
                raise errors.invalid_deployment_state(f"{noun} {identifier} is not in available state")
