"""What CreateBlueGreenDeployment refuses, checked before anything is created.

From the RDS and Aurora User Guides, "Creating a blue/green deployment" ("Preparing ..."), "PostgreSQL replication
methods for blue/green deployments", and the API reference's error list (SourceDatabaseNotSupportedFault,
SourceClusterNotSupportedFault, DBParameterGroupNotFoundFault, DBClusterParameterGroupNotFoundFault):
- automated backups on (RDS instances);
- TargetEngineVersion a valid upgrade target of blue's version ("Cannot find upgrade path from X to Y.");
- RDS for PostgreSQL major upgrades only from 11.21+, 12.16+, 13.12+, 14.9+, 15.4+, 16.1+;
- logical replication (RDS for PostgreSQL major upgrades, Aurora PostgreSQL): `rds.logical_replication` = 1 in
  blue's (cluster) parameter group, and blue (Aurora: the writer) in sync with it; Aurora MySQL: `binlog_format`
  turned on in the cluster parameter group, the writer in sync;
- a target parameter group must exist and belong to the target version's family;
- one source, one active deployment;
- an Aurora source has a writer instance (inferred: green copies it; AWS documents no message).
The exact messages of these refusals are not documented; the codes are the API's.

Without a target parameter group, a major upgrade gives green the default group of the new family (blue's custom
group belongs to the old one); a minor upgrade keeps blue's group ("Specify a different DB parameter group").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.rds.models import DBCluster, DBInstance

from sandbox.aws import errors
from sandbox.aws.engine_versions import parameter_group_family
from sandbox.aws.parameter_groups import IN_SYNC, apply_status, cluster_group_status
from sandbox.aws.proxy_targets import identifier_of
from sandbox.aws.replication import replication_method
from sandbox.aws.upgrades import is_major_upgrade

if TYPE_CHECKING:
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

# RDS for PostgreSQL: the lowest minor of each major from which a blue/green major upgrade is supported.
LOGICAL_MAJOR_UPGRADE_FROM = {"11": 21, "12": 16, "13": 12, "14": 9, "15": 4, "16": 1}
CLOSED_STATES = ("SWITCHOVER_COMPLETED", "DELETING")


def _unsupported(source: DBInstance | DBCluster, message: str) -> errors.RDSClientError:
    code = "SourceClusterNotSupportedFault" if isinstance(source, DBCluster) else "SourceDatabaseNotSupportedFault"
    return errors.fault(code, message)


class CreateChecksMixin:
    """CreateBlueGreenDeployment's refusals; mixed into SandboxRDSBackend."""

    def check_create_prerequisites(
        self: SandboxRDSBackend, source: DBInstance | DBCluster, kwargs: dict[str, Any]
    ) -> None:
        """Refuse as AWS does, or fill in green's parameter groups (kwargs is CreateBlueGreenDeployment's)."""
        engine, current = str(source.engine), str(source.engine_version)
        target = kwargs.get("target_engine_version") or None
        self._refuse_second_deployment(source)
        if isinstance(source, DBCluster) and not any(m.is_cluster_writer for m in source.members):
            # Inferred, not documented: green copies the writer, so a cluster without one has nothing to copy.
            raise errors.invalid_cluster_state(
                f"DB cluster {source.db_cluster_identifier} has no writer instance: add one before creating a"
                " blue/green deployment."
            )
        if target is not None:
            self.check_upgrade_path(engine, current, target)
        major = target is not None and is_major_upgrade(engine, current, target)
        if engine == "postgres" and major:
            major_of, _, minor = current.partition(".")
            lowest = LOGICAL_MAJOR_UPGRADE_FROM.get(major_of)
            if lowest is None or not minor.isdigit() or int(minor) < lowest:
                raise _unsupported(
                    source, f"Blue/green deployments don't support major version upgrades from {engine} {current}."
                )
        if isinstance(source, DBInstance) and int(source.backup_retention_period or 0) == 0:
            raise _unsupported(
                source,
                f"Automated backups aren't enabled for DB instance {identifier_of(source)}. Turn on automated backups "
                "(BackupRetentionPeriod greater than 0) before you create a blue/green deployment.",
            )
        family = parameter_group_family(engine, target or current)
        self._check_target_groups(source, kwargs, family)
        self._check_replication_settings(source, replication_method(source, target))
        if major:
            self._default_green_groups(source, kwargs, family)

    def _refuse_second_deployment(self: SandboxRDSBackend, source: DBInstance | DBCluster) -> None:
        for deployment in self.deployments():
            if deployment.status not in CLOSED_STATES and deployment.involves(source):
                message = (
                    f"{identifier_of(source)} is already part of blue/green deployment "
                    f"{deployment.blue_green_deployment_identifier}."
                )
                if isinstance(source, DBCluster):
                    raise errors.invalid_cluster_state(message)
                raise errors.invalid_instance_state(message)

    def _check_target_groups(
        self: SandboxRDSBackend, source: DBInstance | DBCluster, kwargs: dict[str, Any], family: str
    ) -> None:
        name = kwargs.get("target_db_parameter_group_name")
        if name:
            group = self.db_parameter_groups.get(name)
            found = group.family if group is not None else (family if name == f"default.{family}" else None)
            if found is None:
                raise errors.fault("DBParameterGroupNotFound", f"DB Parameter Group {name} not found.")
            _check_family(name, found, family, "instance")
        cluster_name = kwargs.get("target_db_cluster_parameter_group_name")
        if cluster_name:
            cluster_group = self.db_cluster_parameter_groups.get(cluster_name)
            if cluster_group is None:
                raise errors.fault(
                    "DBClusterParameterGroupNotFound", f"DBClusterParameterGroup not found: {cluster_name}"
                )
            _check_family(cluster_name, cluster_group.db_parameter_group_family, family, "cluster")

    def _check_replication_settings(self: SandboxRDSBackend, source: DBInstance | DBCluster, method: str) -> None:
        engine = str(source.engine)
        if isinstance(source, DBCluster):
            writer = next((m for m in source.members if m.is_cluster_writer), None)
            group = source.parameter_group
            if (
                engine == "aurora-postgresql"
                and self.parameter_value(group, "rds.logical_replication", cluster=True) != "1"
            ):
                raise _unsupported(
                    source,
                    f"Logical replication isn't turned on for DB cluster {identifier_of(source)}: set "
                    f"rds.logical_replication to 1 in its DB cluster parameter group {group}, reboot the writer, "
                    "then create the blue/green deployment.",
                )
            if engine == "aurora-mysql" and str(self.parameter_value(group, "binlog_format", cluster=True)).upper() in (
                "NONE",
                "OFF",
            ):
                raise _unsupported(
                    source,
                    f"Binary logging isn't turned on for DB cluster {identifier_of(source)}: set binlog_format in its "
                    f"DB cluster parameter group {group}, reboot the writer, then create the blue/green deployment.",
                )
            if writer is not None and cluster_group_status(writer) != IN_SYNC:
                raise _unsupported(
                    source,
                    f"The writer instance {writer.db_instance_identifier} isn't in sync with the DB cluster parameter "
                    f"group {group} ({cluster_group_status(writer)}). Reboot it first.",
                )
            return
        if method != "logical":
            return
        group = source.db_parameter_group_name
        if self.parameter_value(group, "rds.logical_replication") != "1":
            raise _unsupported(
                source,
                f"Logical replication isn't turned on for DB instance {identifier_of(source)}: a major version "
                "upgrade uses logical replication, which needs rds.logical_replication set to 1 in a custom DB "
                "parameter group (then a reboot).",
            )
        if apply_status(source) != IN_SYNC:
            raise _unsupported(
                source,
                f"DB instance {identifier_of(source)} isn't in sync with its DB parameter group {group} "
                f"({apply_status(source)}). Reboot it first.",
            )

    def _default_green_groups(
        self: SandboxRDSBackend, source: DBInstance | DBCluster, kwargs: dict[str, Any], family: str
    ) -> None:
        if isinstance(source, DBCluster):
            if not kwargs.get("target_db_cluster_parameter_group_name"):
                kwargs["target_db_cluster_parameter_group_name"] = self.ensure_default_cluster_parameter_group(family)
        elif not kwargs.get("target_db_parameter_group_name"):
            kwargs["target_db_parameter_group_name"] = f"default.{family}"


def _check_family(name: str, found: str, wanted: str, noun: str) -> None:
    if found != wanted:
        raise errors.invalid_parameter_combination(
            f"The parameter group {name} with DBParameterGroupFamily {found} can't be used for this {noun}. Use a "
            f"parameter group with DBParameterGroupFamily {wanted}."
        )
