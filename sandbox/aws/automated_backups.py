"""Automated backups as Amazon RDS keeps them, where moto snapshots every instance once and restores to "now".

- An RDS DB instance with backups on (BackupRetentionPeriod > 0) has automated snapshots `rds:<id>-YYYY-MM-DD-HH-MM`
  (SnapshotType `automated`); one with backups off has none. Aurora backs up the cluster volume: a cluster has
  automated DB cluster snapshots, its member instances none (Aurora User Guide, "Overview of backing up and restoring
  an Aurora DB cluster").
- LatestRestorableTime: "RDS uploads transaction logs for DB instances to Amazon S3 every 5 minutes" (RDS User Guide,
  "Restoring a DB instance to a specified time"); a cluster's is "typically within 5 minutes of the current time".
  The sandbox moves it in 5-minute steps from the database's creation. It is null while the database is being
  created ("The Latest Restorable Time and Earliest Restorable Time values return NULL until the restore operation is
  complete"), when it failed, and when backups are off.
- The restorable window starts at creation or `BackupRetentionPeriod` days ago, whichever is later.
- Automated backups go with their database (DeleteDBInstance's and DeleteDBCluster's DeleteAutomatedBackups
  default: "remove automated backups immediately after the DB cluster is deleted").
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow
from moto.rds.models import DBCluster, DBClusterSnapshot, DBInstance, DBSnapshot

from sandbox.aws.blue_green import current_status
from sandbox.aws.proxy_targets import identifier_of

if TYPE_CHECKING:
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

UPLOAD_INTERVAL = dt.timedelta(minutes=5)
# Statuses in which a database has no restorable time (being created, or a creation that failed).
NOT_RESTORABLE = ("creating", "failed", "restore-error", "incompatible-restore", "cloning-failed")


def is_cluster_member(instance: DBInstance) -> bool:
    return getattr(instance, "db_cluster_identifier", None) is not None


def backups_on(resource: DBInstance | DBCluster) -> bool:
    return int(resource.backup_retention_period or 0) > 0


def latest_restorable_time(resource: DBInstance | DBCluster) -> dt.datetime | None:
    if current_status(resource) in NOT_RESTORABLE or not backups_on(resource):
        return None
    created: dt.datetime = resource.created
    return created + UPLOAD_INTERVAL * ((utcnow() - created) // UPLOAD_INTERVAL)


def earliest_restorable_time(resource: DBInstance | DBCluster) -> dt.datetime | None:
    if latest_restorable_time(resource) is None:
        return None
    return max(resource.created, utcnow() - dt.timedelta(days=int(resource.backup_retention_period)))


def install() -> None:
    """DescribeDBInstances' and DescribeDBClusters' restorable times, as above (moto says "now" for every one)."""
    if getattr(DBInstance, "sandbox_restorable_times", False):
        return
    DBInstance.latest_restorable_time = property(latest_restorable_time)  # type: ignore[assignment,method-assign]
    DBCluster.latest_restorable_time = property(latest_restorable_time)  # type: ignore[assignment,method-assign]
    # moto assigns earliest_restorable_time in DBCluster.__init__: the setter takes and drops that value.
    DBCluster.earliest_restorable_time = property(earliest_restorable_time, lambda _self, _value: None)  # type: ignore[attr-defined]
    DBInstance.sandbox_restorable_times = True  # type: ignore[attr-defined]


class AutomatedBackupsMixin:
    """Automated snapshots and their lifetime; mixed into SandboxRDSBackend."""

    def create_auto_snapshot(self: SandboxRDSBackend, db_instance_identifier: str, db_snapshot_identifier: str) -> Any:
        instance = self.databases.get(db_instance_identifier)
        if instance is not None and (is_cluster_member(instance) or not backups_on(instance)):
            return None  # moto asks for one at every creation; AWS takes none here
        return super().create_auto_snapshot(db_instance_identifier, db_snapshot_identifier)  # type: ignore[misc]

    def create_db_instance(self: SandboxRDSBackend, db_kwargs: dict[str, Any]) -> DBInstance:
        instance = super().create_db_instance(db_kwargs)  # type: ignore[misc]
        for snapshot in self.automated_snapshots(instance):  # taken before the instance got its own DbiResourceId
            snapshot.dbi_resource_id = instance.dbi_resource_id
        return instance

    def automated_snapshots(self: SandboxRDSBackend, resource: DBInstance | DBCluster) -> list[Any]:
        name = identifier_of(resource)
        if isinstance(resource, DBCluster):
            found: list[Any] = list(self.cluster_snapshots.values())
            return [s for s in found if s.snapshot_type == "automated" and s.db_cluster_identifier == name]
        found = list(self.database_snapshots.values())
        return [s for s in found if s.snapshot_type == "automated" and s.db_instance_identifier == name]

    def take_automated_snapshot(self: SandboxRDSBackend, resource: DBInstance | DBCluster) -> None:
        snapshot_id = f"rds:{identifier_of(resource)}-{utcnow().strftime('%Y-%m-%d-%H-%M')}"
        if isinstance(resource, DBCluster):
            if snapshot_id not in self.cluster_snapshots:
                self.create_auto_cluster_snapshot(resource.db_cluster_identifier, snapshot_id)
                self.sandbox.transition(f"cluster-snapshot:{snapshot_id}", "available")
        elif snapshot_id not in self.database_snapshots and backups_on(resource):
            self.create_auto_snapshot(resource.db_instance_identifier, snapshot_id)
            self.sandbox.transition(f"snapshot:{snapshot_id}", "available")

    def drop_automated_snapshots(
        self: SandboxRDSBackend, resource: DBInstance | DBCluster, record: bool = True
    ) -> None:
        """`record` False: the snapshot moto took at creation, which AWS never takes (not on the timeline)."""
        for snapshot in self.automated_snapshots(resource):
            if isinstance(snapshot, DBClusterSnapshot):
                self.cluster_snapshots.pop(snapshot.db_cluster_snapshot_identifier, None)
                name = f"cluster-snapshot:{snapshot.db_cluster_snapshot_identifier}"
            elif isinstance(snapshot, DBSnapshot):
                self.database_snapshots.pop(snapshot.db_snapshot_identifier, None)
                name = f"snapshot:{snapshot.db_snapshot_identifier}"
            else:
                continue
            if record:
                self.sandbox.transition(name, "DELETED")

    def remove_now(self: SandboxRDSBackend, resource: DBInstance | DBCluster) -> None:
        super().remove_now(resource)  # type: ignore[misc]
        if isinstance(resource, DBCluster) and self.clusters.get(resource.db_cluster_identifier) is not resource:
            self.drop_automated_snapshots(resource)
