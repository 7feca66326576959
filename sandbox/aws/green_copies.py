"""What green copies from blue, when, and what it does not: the settings a drift report compares after switchover.

- At creation green copies blue's topology and features (RDS User Guide, "Creating a blue/green deployment";
  "Overview": "The green environment also includes the features used by the DB instance, such as DB snapshots,
  Performance Insights, Enhanced Monitoring, and Multi-AZ"): instance class, storage, backup retention, deletion
  protection, CA certificate, enhanced monitoring, tags, and blue's parameter group (or the one asked for).
  They are copied once: a setting changed on blue after creation (deletion protection turned on, say) is not.
- Not copied: IAM roles associated with blue (AssociatedRoles).
- Every database has its own DbiResourceId (moto gives every instance the same one): after switchover the new
  primary carries green's, not old blue's.
- Tags: "During switchover, tags from the blue environment replace all tags on resources in the green environment"
  ("Switching a blue/green deployment", "Switchover actions"); old blue keeps its tags.
- DeleteBlueGreenDeployment with DeleteTarget needs green without deletion protection ("Deleting a blue/green
  deployment": the green databases "must have deletion protection turned off").
"""

from __future__ import annotations

import random
import string
from typing import TYPE_CHECKING

from moto.rds.models import DBCluster, DBInstance

from sandbox.aws import errors
from sandbox.aws.maintenance import forget_pending
from sandbox.aws.parameter_groups import reset_statuses

if TYPE_CHECKING:
    from sandbox.aws.blue_green import SandboxBlueGreenDeployment
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

COPIED_INSTANCE_SETTINGS = ("monitoring_interval", "monitoring_role_arn", "ca_certificate_identifier", "multi_az")


def new_resource_id() -> str:
    return "db-" + "".join(random.choices(string.ascii_uppercase + string.digits, k=26))


class GreenCopiesMixin:
    """Green's settings at creation and at switchover; mixed into SandboxRDSBackend."""

    def create_db_instance(self: SandboxRDSBackend, db_kwargs: dict) -> DBInstance:
        instance = super().create_db_instance(db_kwargs)  # type: ignore[misc]
        instance.dbi_resource_id = new_resource_id()
        return instance

    def create_db_instance_read_replica(self: SandboxRDSBackend, db_kwargs: dict) -> DBInstance:
        """moto's replica is a shallow copy of its primary: give it its own id, tags and sandbox state."""
        replica = super().create_db_instance_read_replica(db_kwargs)  # type: ignore[misc]
        replica.dbi_resource_id = new_resource_id()
        replica.tags = list(replica.tags)
        replica._associated_roles = list(replica._associated_roles)
        replica.status_infos = None
        replica.percent_progress = None
        reset_statuses(replica)
        forget_pending(replica)
        return replica

    def copy_blue_settings(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment) -> None:
        """What moto's green creation leaves out: enhanced monitoring and the like; no IAM roles."""
        for pair in deployment.pairs:
            blue, green = pair.blue, pair.green
            if isinstance(blue, DBInstance) and isinstance(green, DBInstance):
                for name in COPIED_INSTANCE_SETTINGS:
                    if hasattr(blue, name):
                        setattr(green, name, getattr(blue, name))
            green.tags = list(blue.tags)
            green._associated_roles = []

    def carry_tags_over(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment) -> None:
        for pair in deployment.pairs:
            pair.green.tags = list(pair.blue.tags)

    def refuse_protected_targets(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment) -> None:
        for pair in deployment.pairs:
            if pair.green.deletion_protection:
                noun = "Cluster" if isinstance(pair.green, DBCluster) else "DB Instance"
                raise errors.invalid_parameter_combination(
                    f"Cannot delete protected {noun}, please disable deletion protection and try again."
                )
