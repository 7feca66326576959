"""DeleteDBInstance and DeleteDBCluster as Amazon RDS runs them, where moto deletes at once and accepts more.

- A deleted instance or cluster shows `deleting` for the `deleting` duration, then is gone.
- DeleteDBCluster is refused while the cluster has a member instance that is not `deleting`
  (InvalidDBClusterStateFault, AWS's own message); delete the members first.
- A cluster member takes no final snapshot (InvalidParameterCombination); the cluster's final snapshot holds the data.
- Deleting what is already being deleted is refused (InvalidDBInstanceState / InvalidDBClusterStateFault).
- A requested final snapshot is taken when the request is accepted, so a name already in use is refused then.

Sources: the Aurora User Guide, "Deleting Aurora DB clusters and DB instances", and the project's AWS facts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.rds.models import DBCluster, DBInstance

from sandbox.aws import errors
from sandbox.aws.blue_green import current_status, timeline_name

if TYPE_CHECKING:
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

LIVE_MEMBERS_MESSAGE = "Cluster cannot be deleted, it still contains DB instances in non-deleting state."
MEMBER_SNAPSHOT_MESSAGE = "FinalDBSnapshotIdentifier cannot be specified when deleting a cluster instance"
PROTECTED_INSTANCE_MESSAGE = "Cannot delete protected DB Instance, please disable deletion protection and try again."
PROTECTED_CLUSTER_MESSAGE = "Cannot delete protected Cluster, please disable deletion protection and try again."


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


class DeletionsMixin:
    """Overrides of moto's delete methods; mixed into SandboxRDSBackend."""

    def delete_db_instance(
        self: SandboxRDSBackend,
        db_instance_identifier: str,
        final_db_snapshot_identifier: str | None = None,
        skip_final_snapshot: Any = False,
        delete_automated_backups: Any = True,
    ) -> DBInstance:
        instance = self.databases.get(db_instance_identifier)
        if instance is None:
            raise errors.instance_not_found(db_instance_identifier)
        if instance.status == "deleting":
            raise errors.invalid_instance_state(f"Instance {db_instance_identifier} is already being deleted.")
        if instance.deletion_protection:
            raise errors.invalid_parameter_combination(PROTECTED_INSTANCE_MESSAGE)
        member = getattr(instance, "db_cluster_identifier", None) is not None
        if member and final_db_snapshot_identifier:
            raise errors.invalid_parameter_combination(MEMBER_SNAPSHOT_MESSAGE)
        if final_db_snapshot_identifier and not _flag(skip_final_snapshot):
            self.create_db_snapshot(db_instance_identifier, final_db_snapshot_identifier, snapshot_type="manual")
        backups = _flag(delete_automated_backups)
        self._set_resource_status(instance, "deleting")
        self.sandbox.after("deleting", lambda _now: self._remove_instance(instance, backups))
        return instance

    def delete_db_cluster(
        self: SandboxRDSBackend, cluster_identifier: str, snapshot_name: str | None = None
    ) -> DBCluster:
        cluster = self.clusters.get(cluster_identifier)
        if cluster is None:
            raise errors.cluster_not_found(cluster_identifier)
        if current_status(cluster) == "deleting":
            raise errors.invalid_cluster_state(f"DB cluster {cluster_identifier} is already being deleted.")
        if cluster.deletion_protection:
            raise errors.invalid_parameter_combination(PROTECTED_CLUSTER_MESSAGE)
        if any(member.status != "deleting" for member in cluster.members):
            raise errors.invalid_cluster_state(LIVE_MEMBERS_MESSAGE)
        if snapshot_name:
            self.create_db_cluster_snapshot(cluster_identifier, snapshot_name)
        self._set_resource_status(cluster, "deleting")
        self.sandbox.after("deleting", lambda _now: self.remove_now(cluster))
        return cluster

    def remove_now(self: SandboxRDSBackend, resource: DBInstance | DBCluster) -> None:
        """Remove an instance, or a cluster and its members, at once and without snapshots (the end of a deletion
        AWS drives itself, such as a blue/green deployment deleted with its target)."""
        if isinstance(resource, DBCluster):
            for member in list(resource.members):
                self._remove_instance(member, delete_automated_backups=True)
            if self.clusters.get(resource.db_cluster_identifier) is resource:
                resource.deletion_protection = False
                super().delete_db_cluster(resource.db_cluster_identifier)  # type: ignore[misc]
                self.sandbox.transition(timeline_name(resource), "DELETED")
        else:
            self._remove_instance(resource, delete_automated_backups=True)

    def _remove_instance(self: SandboxRDSBackend, instance: DBInstance, delete_automated_backups: bool) -> None:
        if self.databases.get(instance.db_instance_identifier) is not instance:
            return  # already removed
        instance.deletion_protection = False
        super().delete_db_instance(  # type: ignore[misc]
            instance.db_instance_identifier, skip_final_snapshot=True, delete_automated_backups=delete_automated_backups
        )
        self.sandbox.transition(timeline_name(instance), "DELETED")
