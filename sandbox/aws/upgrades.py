"""Engine upgrades through ModifyDBInstance / ModifyDBCluster: the major-version rule and `upgrading` over time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.rds.models import DBCluster, DBInstance

from sandbox.aws import errors
from sandbox.aws.blue_green import current_status, set_status, timeline_name

if TYPE_CHECKING:
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

MAJOR_UPGRADE_FLAG_MESSAGE = "The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version."


def major_version(engine: str, version: str) -> str:
    """PostgreSQL 10+ majors are the first component (15.7 -> 15); MySQL/MariaDB use two (8.0.36 -> 8.0)."""
    parts = version.split(".")
    if "postgres" in engine and parts[0].isdigit() and int(parts[0]) >= 10:
        return parts[0]
    return ".".join(parts[:2])


def is_major_upgrade(engine: str, current: str, requested: str) -> bool:
    return major_version(engine, current) != major_version(engine, requested)


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


class UpgradesMixin:
    """Overrides of moto's modify methods; mixed into SandboxRDSBackend."""

    def modify_db_instance(
        self: SandboxRDSBackend, db_instance_identifier: str, db_kwargs: dict[str, Any]
    ) -> DBInstance:
        instance = self.databases.get(db_instance_identifier)
        if instance is None:
            raise errors.instance_not_found(db_instance_identifier)
        if self.switchover_in_progress_for(instance):
            raise errors.invalid_instance_state(
                f"Database instance {db_instance_identifier} can't be modified while a blue/green "
                "switchover is in progress."
            )
        requested = db_kwargs.pop("engine_version", None)
        if requested is not None and requested != instance.engine_version:
            if getattr(instance, "cluster", None) is not None:
                raise errors.invalid_parameter_combination(
                    f"The specified DB instance {db_instance_identifier} is a member of a DB cluster. Modify the "
                    "DB engine version for the DB cluster using the ModifyDbCluster API."
                )
            self._check_upgrade(instance, requested, db_kwargs.get("allow_major_version_upgrade"))
        else:
            requested = None
        modified = super().modify_db_instance(db_instance_identifier, db_kwargs)  # type: ignore[misc]
        if requested is not None:
            self._start_upgrade(instance, requested, [instance])
        return modified

    def modify_db_cluster(self: SandboxRDSBackend, kwargs: dict[str, Any]) -> DBCluster:
        cluster_id = kwargs["db_cluster_identifier"]
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            raise errors.cluster_not_found(cluster_id)
        if self.switchover_in_progress_for(cluster):
            raise errors.invalid_cluster_state(
                f"DB cluster {cluster_id} can't be modified while a blue/green switchover is in progress."
            )
        requested = kwargs.pop("engine_version", None)
        if requested is not None and requested != cluster.engine_version:
            self._check_upgrade(cluster, requested, kwargs.get("allow_major_version_upgrade"))
        else:
            requested = None
        members = list(cluster.members)
        status_before = cluster._status
        super().modify_db_cluster(kwargs)  # type: ignore[misc]
        cluster._status = status_before  # moto marks the cluster available whatever it was doing
        for member in members:  # moto renames the cluster but leaves its members behind
            member.db_cluster_identifier = cluster.db_cluster_identifier
        if requested is not None:
            self._start_upgrade(cluster, requested, [cluster, *members])
        return cluster

    def _check_upgrade(
        self: SandboxRDSBackend, resource: DBInstance | DBCluster, requested: str, allow_major: Any
    ) -> None:
        if current_status(resource) != "available":
            message = f"{timeline_name(resource)} is {current_status(resource)}; it must be available to upgrade."
            if isinstance(resource, DBCluster):
                raise errors.invalid_cluster_state(message)
            raise errors.invalid_instance_state(message)
        self.check_upgrade_path(str(resource.engine), str(resource.engine_version), requested)
        if is_major_upgrade(str(resource.engine), str(resource.engine_version), requested) and not _flag(allow_major):
            raise errors.invalid_parameter_combination(MAJOR_UPGRADE_FLAG_MESSAGE)

    def _start_upgrade(
        self: SandboxRDSBackend,
        target: DBInstance | DBCluster,
        version: str,
        affected: list[DBInstance | DBCluster],
    ) -> None:
        for resource in affected:
            set_status(resource, "upgrading")
            self.sandbox.transition(timeline_name(resource), "upgrading")

        def finish(now: float) -> None:
            target.engine_version = version
            for resource in affected:
                if current_status(resource) == "upgrading":
                    set_status(resource, "available")
                    self.sandbox.transition(timeline_name(resource), "available", now)

        self.sandbox.after("upgrading", finish)
