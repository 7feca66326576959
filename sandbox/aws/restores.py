"""The four restore actions as Amazon RDS checks them and what the new database takes from its source.

moto copies every attribute of the source (its parameter group, its replica links, its status) and is available at
once; AWS documents otherwise (API reference of each action; RDS User Guide "Restoring from a DB snapshot" and
"Restoring a DB instance to a specified time"; Aurora User Guide "Overview of backing up and restoring an Aurora DB
cluster"):
- A restored DB instance takes the source's engine, engine version, class (unless DBInstanceClass), port, storage,
  master user, DB name, option group and backup retention ("Default: Uses existing setting"); not its parameter
  group (the engine's default unless DBParameterGroupName), security groups (the VPC's default unless
  VpcSecurityGroupIds), subnet group (unless DBSubnetGroupName), Multi-AZ or deletion protection. Tags: those asked
  for; restored from a snapshot without Tags, the source instance's (CopyTagsToSnapshot in the API reference).
- A restored DB cluster takes the source's engine, version, port, master user, database name and encryption; the
  engine's default cluster parameter group unless DBClusterParameterGroupName, the default security group unless
  VpcSecurityGroupIds, backup retention 1 day unless BackupRetentionPeriod ("the default backup retention period is
  one day regardless of how the DB cluster is created"), the Tags asked for, and no DB instances: "This operation only
  restores the DB cluster, not the DB instances for that DB cluster."
- Point in time: RestoreTime (RestoreToTime) or UseLatestRestorableTime, not both; within the restorable window
  (sandbox/aws/automated_backups.py); the source must have automated backups (PointInTimeRestoreNotEnabled).
The new database then goes through its states over time: sandbox/aws/restore_progress.py.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from moto.ec2.models import ec2_backends
from moto.rds.exceptions import DBInstanceAlreadyExists
from moto.rds.models import DBCluster, DBInstance

from sandbox.aws import errors
from sandbox.aws.automated_backups import backups_on, earliest_restorable_time, is_cluster_member
from sandbox.aws.automated_backups import latest_restorable_time as latest_time
from sandbox.aws.engine_versions import parameter_group_family

if TYPE_CHECKING:
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

# Restore parameters that replace what the new instance would otherwise take (snake_case, as moto parses them).
INSTANCE_OVERRIDES = (
    "db_instance_class",
    "engine",
    "port",
    "allocated_storage",
    "max_allocated_storage",
    "storage_type",
    "iops",
    "storage_throughput",
    "availability_zone",
    "multi_az",
    "publicly_accessible",
    "auto_minor_version_upgrade",
    "license_model",
    "db_name",
    "option_group_name",
    "db_parameter_group_name",
    "db_subnet_group_name",
    "vpc_security_group_ids",
    "copy_tags_to_snapshot",
    "deletion_protection",
    "enable_iam_database_authentication",
    "enable_cloudwatch_logs_exports",
    "backup_retention_period",
    "preferred_backup_window",
    "ca_certificate_identifier",
    "tags",
)
CLUSTER_OVERRIDES = (
    "engine_version",
    "port",
    "database_name",
    "db_subnet_group_name",
    "vpc_security_group_ids",
    "availability_zones",
    "backup_retention_period",
    "preferred_backup_window",
    "deletion_protection",
    "copy_tags_to_snapshot",
    "enable_iam_database_authentication",
    "enable_cloudwatch_logs_exports",
    "kms_key_id",
    "tags",
)
AURORA_DEFAULT_RETENTION_DAYS = 1


def _password(source: DBInstance | DBCluster) -> str | None:
    return getattr(source, "_master_user_password", None)


def _instance_props(source: DBInstance, engine_version: str, storage: int) -> dict[str, Any]:
    return {
        "db_instance_class": source.db_instance_class,
        "engine": source.engine,
        "engine_version": engine_version,
        "port": source.port,
        "allocated_storage": storage,
        "storage_type": source.storage_type,
        "iops": source.iops,
        "master_username": source.master_username,
        "master_user_password": _password(source),
        "db_name": source.db_name,
        "option_group_name": source.option_group_name if source.option_group_supplied else None,
        "backup_retention_period": source.backup_retention_period,
        "preferred_backup_window": source.preferred_backup_window,
        "preferred_maintenance_window": source.preferred_maintenance_window,
        "auto_minor_version_upgrade": source.auto_minor_version_upgrade,
        "license_model": source.license_model,
        "storage_encrypted": source.storage_encrypted,
        "kms_key_id": source.kms_key_id,
        "ca_certificate_identifier": source.ca_certificate_identifier,
        "character_set_name": source.character_set_name,
    }


def _cluster_props(source: DBCluster, engine_version: str) -> dict[str, Any]:
    return {
        "engine": source.engine,
        "engine_version": engine_version,
        "engine_mode": source.engine_mode,
        "port": source.port,
        "master_username": source.master_username,
        "master_user_password": _password(source),
        "database_name": source.database_name,
        "storage_encrypted": source.storage_encrypted,
        "kms_key_id": source.kms_key_id,
        "availability_zones": list(source.availability_zones or []),
        "preferred_backup_window": source.preferred_backup_window,
        "preferred_maintenance_window": source.preferred_maintenance_window,
        "backup_retention_period": AURORA_DEFAULT_RETENTION_DAYS,
        "deletion_protection": False,
        "copy_tags_to_snapshot": False,
    }


def _with_overrides(props: dict[str, Any], params: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {**props, **{name: params[name] for name in names if params.get(name) is not None}}


def _naive_utc(value: Any) -> dt.datetime:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def restore_point(
    what: str, resource: DBInstance | DBCluster, restore_time: Any, use_latest: Any, time_name: str
) -> dt.datetime:
    """The moment a point-in-time restore asks for, checked against `resource`'s restorable window."""
    latest, earliest = latest_time(resource), earliest_restorable_time(resource)
    if restore_time is not None and use_latest:
        raise errors.invalid_parameter_combination(f"Cannot specify both {time_name} and UseLatestRestorableTime")
    if restore_time is None and not use_latest:
        raise errors.invalid_parameter_combination(f"Specify {time_name} or UseLatestRestorableTime.")
    if latest is None or earliest is None:
        message = f"{what} has no restorable time: it is {resource_status(resource)} or its backups are off."
        if isinstance(resource, DBCluster):
            raise errors.invalid_cluster_state(message)
        raise errors.invalid_instance_state(message)
    if use_latest:
        return latest
    moment = _naive_utc(restore_time)
    if not earliest <= moment <= latest:
        raise errors.fault(
            "InvalidRestoreFault",
            f"The {time_name} {moment.isoformat()}Z is outside the restorable window of {what}: "
            f"{earliest.isoformat()}Z to {latest.isoformat()}Z.",
        )
    return moment


def resource_status(resource: DBInstance | DBCluster) -> str:
    return resource._status if isinstance(resource, DBCluster) else resource.status


class RestoresMixin:
    """Overrides of moto's restore methods; mixed into SandboxRDSBackend."""

    def restore_db_instance_from_db_snapshot(
        self: SandboxRDSBackend, from_snapshot_id: str | None, overrides: dict[str, Any]
    ) -> DBInstance:
        if not from_snapshot_id:
            raise errors.invalid_parameter_combination(
                "Specify DBSnapshotIdentifier (restoring a Multi-AZ DB cluster snapshot to an instance is not "
                "modelled by the sandbox)."
            )
        snapshot = self.get_db_snapshot(from_snapshot_id)
        if snapshot.status != "available":
            raise errors.fault("InvalidDBSnapshotState", f"Snapshot {from_snapshot_id} is {snapshot.status}.")
        target = str(overrides["db_instance_identifier"])
        self._refuse_existing_instance(target)
        source = snapshot.database
        props = _instance_props(source, snapshot.engine_version, snapshot.allocated_storage)
        props["tags"] = list(source.tags)  # replaced by Tags when the request has some
        props = _with_overrides(props, overrides, INSTANCE_OVERRIDES)
        self._check_instance_props(props, source, snapshot.allocated_storage)
        instance = self.create_db_instance({**props, "db_instance_identifier": target})
        self.begin_instance_restore(instance, "snapshot", snapshot=snapshot.db_snapshot_identifier)
        return instance

    def restore_db_instance_to_point_in_time(
        self: SandboxRDSBackend, source_db_identifier: str | None, target_db_identifier: str, overrides: dict[str, Any]
    ) -> DBInstance:
        source = self._pitr_source(source_db_identifier, overrides.get("source_dbi_resource_id"))
        if is_cluster_member(source):
            raise errors.invalid_parameter_combination(
                f"{source.db_instance_identifier} is a member of an Aurora DB cluster. RestoreDBInstanceToPointInTime "
                "doesn't apply to Aurora; use RestoreDBClusterToPointInTime."
            )
        if not backups_on(source):
            raise errors.fault(
                "PointInTimeRestoreNotEnabled",
                f"DB instance {source.db_instance_identifier} has BackupRetentionPeriod 0: point-in-time restore "
                "is not enabled.",
            )
        moment = restore_point(
            f"DB instance {source.db_instance_identifier}",
            source,
            overrides.get("restore_time"),
            overrides.get("use_latest_restorable_time"),
            "RestoreTime",
        )
        self._refuse_existing_instance(target_db_identifier)
        props = _instance_props(source, str(source.engine_version), int(source.allocated_storage))
        props = _with_overrides(props, overrides, INSTANCE_OVERRIDES)
        self._check_instance_props(props, source, int(source.allocated_storage))
        instance = self.create_db_instance({**props, "db_instance_identifier": target_db_identifier})
        instance.sandbox_restored_to = moment
        self.begin_instance_restore(instance, "point-in-time", source=source.db_instance_identifier)
        return instance

    def restore_db_cluster_from_snapshot(
        self: SandboxRDSBackend, from_snapshot_id: str, overrides: dict[str, Any]
    ) -> DBCluster:
        snapshot = self.get_db_cluster_snapshot(from_snapshot_id)
        if snapshot.status != "available":
            raise errors.fault(
                "InvalidDBClusterSnapshotStateFault", f"DB cluster snapshot {from_snapshot_id} is {snapshot.status}."
            )
        engine = str(overrides.get("engine") or snapshot.engine)
        if engine != snapshot.engine:
            raise errors.invalid_parameter_combination(
                f"The engine {engine} isn't compatible with the engine {snapshot.engine} of snapshot "
                f"{from_snapshot_id}."
            )
        props = _cluster_props(snapshot.cluster, str(snapshot.engine_version))
        cluster = self._restore_cluster(props, overrides)
        self.begin_cluster_restore(cluster, "snapshot")
        return cluster

    def restore_db_cluster_to_point_in_time(self: SandboxRDSBackend, **params: Any) -> DBCluster:
        source = self._cluster_pitr_source(
            params.get("source_db_cluster_identifier"), params.get("source_db_cluster_resource_id")
        )
        restore_type = str(params.get("restore_type") or "full-copy")
        if restore_type not in ("full-copy", "copy-on-write"):
            raise errors.invalid_parameter_value(f"RestoreType must be full-copy or copy-on-write, not {restore_type}.")
        if restore_type == "copy-on-write" and params.get("restore_to_time") is not None:
            raise errors.invalid_parameter_combination(
                "RestoreToTime cannot be specified when RestoreType is copy-on-write"
            )
        moment = restore_point(
            f"DB cluster {source.db_cluster_identifier}",
            source,
            params.get("restore_to_time"),
            params.get("use_latest_restorable_time"),
            "RestoreToTime",
        )
        props = _cluster_props(source, str(source.engine_version))
        props["db_subnet_group_name"] = source.db_subnet_group_name  # "the same configuration as the original"
        cluster = self._restore_cluster(props, params)
        cluster.sandbox_restored_to = moment
        self.begin_cluster_restore(cluster, restore_type)
        return cluster

    # ------------------------------------------------------------------------------------------------- helpers

    def _refuse_existing_instance(self: SandboxRDSBackend, identifier: str) -> None:
        if identifier.lower() in self.databases:
            raise DBInstanceAlreadyExists()

    def _pitr_source(self: SandboxRDSBackend, identifier: str | None, resource_id: str | None) -> DBInstance:
        if identifier:
            source = self.databases.get(identifier.lower())
        else:
            source = next((db for db in self.databases.values() if db.dbi_resource_id == resource_id), None)
        if source is None:
            raise errors.instance_not_found(identifier or str(resource_id))
        return source

    def _cluster_pitr_source(self: SandboxRDSBackend, identifier: str | None, resource_id: str | None) -> DBCluster:
        if identifier:
            source = self.clusters.get(identifier.lower())
        else:
            source = next((c for c in self.clusters.values() if c.db_cluster_resource_id == resource_id), None)
        if source is None:
            raise errors.cluster_not_found(identifier or str(resource_id))
        return source

    def _check_instance_props(self: SandboxRDSBackend, props: dict[str, Any], source: DBInstance, storage: int) -> None:
        engine = str(props["engine"])
        if engine != source.engine and (source.engine, engine) != ("mysql", "mariadb"):
            raise errors.invalid_parameter_combination(
                f"The engine {engine} isn't compatible with the engine {source.engine} of the source."
            )
        if int(props["allocated_storage"]) < storage:
            raise errors.invalid_parameter_value(
                "The allocated storage size can't be less than the source snapshot or backup size."
            )

    def _restore_cluster(self: SandboxRDSBackend, props: dict[str, Any], params: dict[str, Any]) -> DBCluster:
        identifier = str(params["db_cluster_identifier"])
        if identifier.lower() in self.clusters:
            raise errors.fault("DBClusterAlreadyExistsFault", f"DB cluster {identifier} already exists.")
        props = _with_overrides(props, params, CLUSTER_OVERRIDES)
        group = params.get("db_cluster_parameter_group_name")
        if group and group not in self.db_cluster_parameter_groups:
            raise errors.fault("DBClusterParameterGroupNotFound", f"DBClusterParameterGroup {group} not found.")
        if not group:
            group = self.ensure_default_cluster_parameter_group(
                parameter_group_family(str(props["engine"]), str(props["engine_version"]))
            )
        subnet_group = params.get("db_subnet_group_name")
        if subnet_group and subnet_group not in self.subnet_groups:
            raise errors.fault("DBSubnetGroupNotFoundFault", f"DBSubnetGroup {subnet_group} not found.")
        if not props.get("vpc_security_group_ids"):
            props["vpc_security_group_ids"] = self._default_security_groups()
        return self.create_db_cluster(
            {**props, "db_cluster_identifier": identifier, "db_cluster_parameter_group_name": group}
        )

    def _default_security_groups(self: SandboxRDSBackend) -> list[str]:
        ec2 = ec2_backends[self.account_id][self.region_name]
        group = ec2.get_default_security_group(ec2.default_vpc.id)
        return [group.id] if group is not None else []
