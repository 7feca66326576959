"""DB and DB cluster parameter groups with the apply status AWS reports, which moto always shows as in-sync.

- DescribeDBInstances `DBParameterGroups[].ParameterApplyStatus` and DescribeDBClusters
  `DBClusterMembers[].DBClusterParameterGroupStatus` come from the sandbox: `in-sync` until a static parameter of the
  group is modified with ApplyMethod `pending-reboot` (every database using the group then says `pending-reboot`),
  and `in-sync` again after RebootDBInstance. The control surface sets a status directly.
- Blue/green deployments require blue to be in sync with its parameter group (RDS User Guide, "Creating a
  blue/green deployment", PostgreSQL with logical replication; Aurora: "the writer instance be in sync with the DB
  cluster parameter group, otherwise creation fails").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.rds.models import DBCluster, DBInstance

if TYPE_CHECKING:
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

IN_SYNC = "in-sync"
APPLY_STATUSES = ("in-sync", "pending-reboot", "applying", "failed-to-apply", "pending-database-upgrade")
INSTANCE_STATUS = "sandbox_parameter_apply_status"
MEMBER_STATUS = "sandbox_cluster_parameter_status"


def apply_status(instance: DBInstance) -> str:
    return getattr(instance, INSTANCE_STATUS, IN_SYNC)


def cluster_group_status(member: DBInstance) -> str:
    return getattr(member, MEMBER_STATUS, IN_SYNC)


def reset_statuses(instance: DBInstance) -> None:
    """A new database (a replica is a shallow copy of its primary in moto) starts in sync."""
    setattr(instance, INSTANCE_STATUS, IN_SYNC)
    setattr(instance, MEMBER_STATUS, IN_SYNC)


def instance_parameter_groups(instance: DBInstance) -> list[dict[str, str]]:
    """DBParameterGroups of DescribeDBInstances, with the sandbox's apply status."""
    return [
        {"DBParameterGroupName": group.name, "ParameterApplyStatus": apply_status(instance)}
        for group in instance.db_parameter_groups()
    ]


def cluster_members(cluster: DBCluster) -> list[dict[str, Any]]:
    """DBClusterMembers of DescribeDBClusters, with each member's cluster parameter group status."""
    return [
        {
            "DBInstanceIdentifier": member.db_instance_identifier,
            "IsClusterWriter": member.is_cluster_writer,
            "DBClusterParameterGroupStatus": cluster_group_status(member),
            "PromotionTier": member.promotion_tier,
        }
        for member in cluster.members
    ]


def parameter(name: str, value: str, description: str = "", data_type: str = "string") -> dict[str, Any]:
    """A user-set static parameter as DescribeDBParameters shows it."""
    return {
        "ParameterName": name,
        "ParameterValue": value,
        "Description": description or name,
        "Source": "user",
        "ApplyType": "static",
        "DataType": data_type,
        "IsModifiable": True,
        "ApplyMethod": "pending-reboot",
    }


class ParameterGroupsMixin:
    """Overrides of moto's parameter group and reboot methods; mixed into SandboxRDSBackend."""

    def create_parameter_group_with(
        self: SandboxRDSBackend, name: str, family: str, parameters: list[dict[str, Any]], *, cluster: bool = False
    ) -> None:
        description = f"{name} ({family})"
        if cluster:
            self.create_db_cluster_parameter_group(name, family, description, [])
            super().modify_db_cluster_parameter_group(name, parameters)  # type: ignore[misc]
        else:
            self.create_db_parameter_group(
                {"db_parameter_group_name": name, "db_parameter_group_family": family, "description": description}
            )
            super().modify_db_parameter_group(name, parameters)  # type: ignore[misc]

    def ensure_default_cluster_parameter_group(self: SandboxRDSBackend, family: str) -> str:
        name = f"default.{family}"
        if name not in self.db_cluster_parameter_groups:
            self.create_db_cluster_parameter_group(name, family, f"Default cluster parameter group for {family}", [])
        return name

    def parameter_value(self: SandboxRDSBackend, group: str | None, name: str, *, cluster: bool = False) -> str | None:
        """The value a (cluster) parameter group sets, None for the engine default (or no such group)."""
        groups: Any = self.db_cluster_parameter_groups if cluster else self.db_parameter_groups
        found = groups.get(group) if group else None
        value = found.parameters.get(name, {}).get("ParameterValue") if found is not None else None
        return None if value is None else str(value)

    def modify_db_parameter_group(
        self: SandboxRDSBackend, db_parameter_group_name: str, db_parameter_group_parameters: Any
    ) -> Any:
        parameters = list(db_parameter_group_parameters)
        group = super().modify_db_parameter_group(db_parameter_group_name, parameters)  # type: ignore[misc]
        if _needs_reboot(parameters):
            for instance in self.databases.values():
                if instance.db_parameter_group_name == db_parameter_group_name:
                    self.set_instance_apply_status(instance, "pending-reboot")
        return group

    def modify_db_cluster_parameter_group(
        self: SandboxRDSBackend, db_cluster_parameter_group_name: str, db_cluster_parameter_group_parameters: Any
    ) -> Any:
        parameters = list(db_cluster_parameter_group_parameters)
        group = super().modify_db_cluster_parameter_group(  # type: ignore[misc]
            db_cluster_parameter_group_name, parameters
        )
        if _needs_reboot(parameters):
            for cluster in self.clusters.values():
                if cluster.parameter_group == db_cluster_parameter_group_name:
                    for member in cluster.members:
                        self.set_member_group_status(member, "pending-reboot")
        return group

    def reboot_db_instance(self: SandboxRDSBackend, db_instance_identifier: str) -> DBInstance:
        instance = super().reboot_db_instance(db_instance_identifier)  # type: ignore[misc]
        self.sandbox.transition(f"db:{db_instance_identifier}", "rebooted")
        self.set_instance_apply_status(instance, IN_SYNC)
        self.set_member_group_status(instance, IN_SYNC)
        return instance

    def set_instance_apply_status(self: SandboxRDSBackend, instance: DBInstance, status: str) -> None:
        if apply_status(instance) != status:
            setattr(instance, INSTANCE_STATUS, status)
            self.sandbox.transition(f"db:{instance.db_instance_identifier}/parameter-group", status)

    def set_member_group_status(self: SandboxRDSBackend, member: DBInstance, status: str) -> None:
        if getattr(member, "db_cluster_identifier", None) and cluster_group_status(member) != status:
            setattr(member, MEMBER_STATUS, status)
            self.sandbox.transition(f"db:{member.db_instance_identifier}/cluster-parameter-group", status)

    def set_parameter_apply_status(self: SandboxRDSBackend, identifier: str, status: str) -> dict[str, Any]:
        """An instance: its DB parameter group's apply status (and, for an Aurora member, its cluster parameter
        group status). A cluster: every member's cluster parameter group status, as DescribeDBClusters reports it."""
        if status not in APPLY_STATUSES:
            raise ValueError(f"status must be one of {APPLY_STATUSES}")
        if identifier in self.databases:
            instance = self.databases[identifier]
            self.set_instance_apply_status(instance, status)
            self.set_member_group_status(instance, status)
            return {"instance": identifier, "groups": instance_parameter_groups(instance)}
        cluster = self.clusters.get(identifier)
        if cluster is None:
            raise ValueError(f"no DB instance or cluster named {identifier!r}")
        for member in cluster.members:
            self.set_member_group_status(member, status)
        return {"cluster": identifier, "members": cluster_members(cluster)}


def _needs_reboot(parameters: list[dict[str, Any]]) -> bool:
    return any(str(p.get("ApplyMethod", "")).lower() == "pending-reboot" for p in parameters)
