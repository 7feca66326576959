"""Restored databases and new cluster members over time, and the restore failing on demand.

- A restored DB instance is `creating` (the API answers so: AWS CLI examples of both restore actions) for `restoring`;
  then, with backups on, `backing-up` for `backing_up` (RDS takes a baseline backup right after a restore:
  terraform-provider-aws #44104, "RDS was recently changed to always perform an immediate baseline backup after
  restore if automated backups are enabled"; #2014 shows creating -> backing-up), with its first automated snapshot
  at the end; then `available`. Events: RDS-EVENT-0005 "DB instance created.", RDS-EVENT-0043 "Restored from
  snapshot <id>." (source type db-snapshot) or RDS-EVENT-0019 "Restored from DB instance <source> to <target>.",
  RDS-EVENT-0001 / 0002 around the backup.
- A restored DB cluster is `creating` for `restoring`, then `available` with an automated cluster snapshot
  (RDS-EVENT-0170 "DB cluster created."). It has no instances: CreateDBInstance with DBClusterIdentifier adds them,
  "only after the ... operation has completed and the DB cluster is available" (InvalidDBClusterStateFault before);
  each is `creating` for `instance_creating`, then `available`.
- fail_next_restore (sandbox/aws/rehearsal_controls.py): the restore is accepted and the new database ends, after
  `restoring`, in a failure status. Instances: `restore-error` ("The DB instance encountered an error attempting to
  restore to a point-in-time or from a snapshot") by default, `incompatible-restore` ("Amazon RDS can't do a
  point-in-time restore") or `failed` on request ("DB instance status", RDS User Guide), with RDS-EVENT-0031 "DB
  instance put into <state> state. ..." and RDS-EVENT-0278 "The DB instance creation failed. <reason>". Clusters:
  Aurora's "DB cluster status" page documents `cloning-failed` for a clone and no status for a failed full copy; the
  sandbox uses `cloning-failed` for copy-on-write and `failed` otherwise, with RDS-EVENT-0354 "You can't create the
  DB cluster because of incompatible resources. <reason>." Such a database can only be deleted (without a final
  snapshot: DeleteDBInstance's documentation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.rds.models import DBCluster, DBInstance, Event
from moto.rds.responses import RDSResponse

from sandbox.aws import errors
from sandbox.aws.automated_backups import backups_on
from sandbox.aws.blue_green import current_status
from sandbox.aws.faults import CreationFailure
from sandbox.aws.proxy_targets import identifier_of
from sandbox.aws.resource_events import emit

if TYPE_CHECKING:
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

INSTANCE_RESTORE_FAILURES = ("restore-error", "incompatible-restore", "failed")
CLUSTER_RESTORE_FAILURES = ("failed", "cloning-failed")
RESTORE_FAILURES = tuple(dict.fromkeys(INSTANCE_RESTORE_FAILURES + CLUSTER_RESTORE_FAILURES))
DEFAULT_RESTORE_FAILURE = "the restored database could not be started from the backup"


def _instance_event(backend: SandboxRDSBackend, instance: DBInstance, event_id: str, **values: str) -> None:
    emit(backend, "db-instance", instance.db_instance_identifier, instance.arn, event_id, **values)


def _cluster_event(backend: SandboxRDSBackend, cluster: DBCluster, event_id: str, **values: str) -> None:
    emit(backend, "db-cluster", cluster.db_cluster_identifier, cluster.arn, event_id, **values)


def _forget_moto_events(backend: SandboxRDSBackend, source: str) -> None:
    """moto's own events of a creation (its messages, without AWS's ids) give way to the sandbox's."""
    backend.events = [e for e in backend.events if not (isinstance(e, Event) and source in e.source_identifier)]


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _still(backend: SandboxRDSBackend, resource: DBInstance | DBCluster, status: str) -> bool:
    """True while `resource` exists under its name and is still `status` (a deletion or a fault ends a phase)."""
    inventory: Any = backend.clusters if isinstance(resource, DBCluster) else backend.databases
    return inventory.get(identifier_of(resource)) is resource and current_status(resource) == status


class RestoreProgressMixin:
    """The states of restored databases and new cluster members; mixed into SandboxRDSBackend."""

    def begin_instance_restore(self: SandboxRDSBackend, instance: DBInstance, kind: str, **origin: str) -> None:
        """`kind` is "snapshot" (origin: snapshot=) or "point-in-time" (origin: source=)."""
        self.drop_automated_snapshots(instance, record=False)  # the first one is taken once the restore is done
        _forget_moto_events(self, instance.db_instance_identifier)
        self._set_resource_status(instance, "creating")
        failure = self.sandbox.faults.take_creation_failure("restore", instance.db_instance_identifier)
        self.sandbox.after("restoring", lambda _now: self._instance_restored(instance, kind, origin, failure))

    def _instance_restored(
        self: SandboxRDSBackend,
        instance: DBInstance,
        kind: str,
        origin: dict[str, str],
        failure: CreationFailure | None,
    ) -> None:
        if not _still(self, instance, "creating"):
            return
        if failure is not None:
            status = failure.status if failure.status in INSTANCE_RESTORE_FAILURES else "restore-error"
            self._set_resource_status(instance, status)
            _instance_event(self, instance, "RDS-EVENT-0031", state=status)
            _instance_event(self, instance, "RDS-EVENT-0278", message=failure.reason)
            return
        _instance_event(self, instance, "RDS-EVENT-0005")
        if kind == "snapshot":
            snapshot = origin["snapshot"]
            arn = f"arn:aws:rds:{self.region_name}:{self.account_id}:snapshot:{snapshot}"
            emit(self, "db-snapshot", snapshot, arn, "RDS-EVENT-0043", snapshot=snapshot)
        else:
            _instance_event(
                self, instance, "RDS-EVENT-0019", source=origin["source"], target=instance.db_instance_identifier
            )
        if not backups_on(instance):
            self._set_resource_status(instance, "available")
            return
        self._set_resource_status(instance, "backing-up")
        _instance_event(self, instance, "RDS-EVENT-0001")
        self.sandbox.after("backing_up", lambda _now: self._first_backup_taken(instance))

    def _first_backup_taken(self: SandboxRDSBackend, instance: DBInstance) -> None:
        if not _still(self, instance, "backing-up"):
            return
        self.take_automated_snapshot(instance)
        _instance_event(self, instance, "RDS-EVENT-0002")
        self._set_resource_status(instance, "available")

    def begin_cluster_restore(self: SandboxRDSBackend, cluster: DBCluster, restore_type: str) -> None:
        """`restore_type` is "snapshot", "full-copy" or "copy-on-write"."""
        self.drop_automated_snapshots(cluster, record=False)
        _forget_moto_events(self, cluster.db_cluster_identifier)
        cluster._status = "available"  # so that the transition to `creating` is recorded
        self._set_resource_status(cluster, "creating")
        failure = self.sandbox.faults.take_creation_failure("restore", cluster.db_cluster_identifier)
        self.sandbox.after("restoring", lambda _now: self._cluster_restored(cluster, restore_type, failure))

    def _cluster_restored(
        self: SandboxRDSBackend, cluster: DBCluster, restore_type: str, failure: CreationFailure | None
    ) -> None:
        if not _still(self, cluster, "creating"):
            return
        if failure is not None:
            default = "cloning-failed" if restore_type == "copy-on-write" else "failed"
            status = failure.status if failure.status in CLUSTER_RESTORE_FAILURES else default
            self._set_resource_status(cluster, status)
            _cluster_event(self, cluster, "RDS-EVENT-0354", message=failure.reason.rstrip("."))
            return
        self._set_resource_status(cluster, "available")
        self.take_automated_snapshot(cluster)
        _cluster_event(self, cluster, "RDS-EVENT-0170")

    def delete_db_instance(self: SandboxRDSBackend, db_instance_identifier: str, **kwargs: Any) -> DBInstance:
        """ "When a DB instance is in a failure state and has a status of failed, incompatible-restore, or
        incompatible-network, you can only delete it when you skip creation of the final snapshot" (DeleteDBInstance
        in the API reference); the sandbox applies it to restore-error too."""
        instance = self.databases.get(db_instance_identifier.lower())
        final = kwargs.get("final_db_snapshot_identifier") and not _flag(kwargs.get("skip_final_snapshot"))
        if instance is not None and final and instance.status in (*INSTANCE_RESTORE_FAILURES, "incompatible-network"):
            raise errors.invalid_instance_state(
                f"DB instance {db_instance_identifier} is {instance.status}: it can be deleted only with "
                "SkipFinalSnapshot, without a final snapshot."
            )
        return super().delete_db_instance(db_instance_identifier, **kwargs)  # type: ignore[misc]

    def check_member_creation(self: SandboxRDSBackend, cluster_id: str) -> None:
        """CreateDBInstance with DBClusterIdentifier: the cluster must be available."""
        cluster = self.clusters.get(cluster_id.lower())
        if cluster is None:
            raise errors.cluster_not_found(cluster_id)
        if current_status(cluster) != "available":
            raise errors.invalid_cluster_state(
                f"DB cluster {cluster_id} is {current_status(cluster)}; DB instances can be created in it only "
                "once it is available."
            )

    def begin_member_creation(self: SandboxRDSBackend, instance_id: str) -> None:
        instance = self.databases.get(instance_id.lower())
        if instance is None:
            return
        _forget_moto_events(self, instance.db_instance_identifier)
        self._set_resource_status(instance, "creating")

        def created(_now: float) -> None:
            if _still(self, instance, "creating"):
                self._set_resource_status(instance, "available")
                _instance_event(self, instance, "RDS-EVENT-0005")

        self.sandbox.after("instance_creating", created)


def install() -> None:
    """CreateDBInstance into a cluster through the API: checked and `creating` over time (the fleet's members, made
    directly in the backend, start available)."""
    original = RDSResponse.create_db_instance
    if getattr(original, "sandbox_patched", False):
        return

    def create_db_instance(self: RDSResponse) -> Any:
        backend = self.backend
        cluster_id = self.params.get("DBClusterIdentifier")
        tracked = cluster_id and hasattr(backend, "begin_member_creation")
        if tracked:
            backend.check_member_creation(str(cluster_id))  # type: ignore[attr-defined]
        result = original(self)
        if tracked:
            backend.begin_member_creation(str(self.params["DBInstanceIdentifier"]))  # type: ignore[attr-defined]
        return result

    create_db_instance.sandbox_patched = True  # type: ignore[attr-defined]
    RDSResponse.create_db_instance = create_db_instance  # type: ignore[method-assign]
