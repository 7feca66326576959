"""Reads the safety gates need: engine versions and their valid upgrade targets, parameter groups and their apply
status, parameters, replica lag from CloudWatch, pending maintenance, Aurora global cluster membership.

A mixin of `bot.aws.gateway.AwsGateway` (the only code that calls AWS): methods here use its `_call` and `_pages`.
Unlike the rest of the gateway these reads never raise for AWS: a gate whose read failed says "unknown", so each
method returns `Unread` (with AWS's reason) instead of raising, and None where AWS says the thing does not exist.

Shapes (botocore's RDS and CloudWatch models): DBInstance has BackupRetentionPeriod, DBParameterGroups[]
{DBParameterGroupName, ParameterApplyStatus}, DBInstanceStatus and PercentProgress; DBCluster has
BackupRetentionPeriod, DBClusterParameterGroup, GlobalClusterIdentifier and DBClusterMembers[]
{DBInstanceIdentifier, IsClusterWriter, DBClusterParameterGroupStatus}; DBEngineVersion has DBParameterGroupFamily
and ValidUpgradeTarget[] {EngineVersion, IsMajorVersionUpgrade}; DescribePendingMaintenanceActions takes
ResourceIdentifier (an ARN) and lists PendingMaintenanceActionDetails[] {Action, Description, ...}.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bot import errors
from bot.aws.cloudwatch import latest_metric_params, latest_values
from bot.aws.models import Database

T = TypeVar("T")
IN_SYNC = "in-sync"
# Not in bot.aws.faults' NOT_FOUND_CODES: a parameter group that does not exist is an answer, not a failure.
MISSING_GROUP_CODES = {
    "DBParameterGroupNotFound",
    "DBClusterParameterGroupNotFound",
    "DBParameterGroupNotFoundFault",
    "DBClusterParameterGroupNotFoundFault",
}


@dataclass(frozen=True, slots=True)
class Unread:
    """AWS did not answer a read (refused, throttled, unreachable): the gate that needed it says unknown."""

    reason: str


@dataclass(frozen=True, slots=True)
class ParameterGroupStatus:
    """One parameter group attached to a database, and whether the database runs with its current values."""

    name: str
    apply_status: str  # in-sync | pending-reboot | applying | ...
    holder: str  # the instance (or, for a cluster parameter group, the member instance) that reports it
    cluster_group: bool = False

    @property
    def in_sync(self) -> bool:
        return self.apply_status == IN_SYNC


@dataclass(frozen=True, slots=True)
class DatabaseSetup:
    """What the prerequisites check on blue: backups, parameter groups, Aurora global database membership."""

    identifier: str
    backup_retention: int
    parameter_groups: tuple[ParameterGroupStatus, ...]
    cluster_parameter_group: str | None = None  # Aurora
    global_cluster: str | None = None  # Aurora Global Database identifier


@dataclass(frozen=True, slots=True)
class ParameterGroupInfo:
    name: str
    family: str
    cluster_group: bool


@dataclass(frozen=True, slots=True)
class InstanceState:
    identifier: str
    status: str
    percent_progress: int | None = None  # storage-optimization / storage-initialization progress


@dataclass(frozen=True, slots=True)
class MaintenanceAction:
    resource_arn: str
    action: str
    description: str | None = None


def _unread(exc: errors.AwsError) -> Unread:
    return Unread(f"{exc.action}: {exc.code}" + (" (not permitted)" if isinstance(exc, errors.AccessDenied) else ""))


class DatabaseReads:
    _call: Callable[..., Awaitable[dict[str, Any]]]
    _mutate: Callable[..., Awaitable[Any]]
    _pages: Callable[..., AsyncIterator[dict[str, Any]]]

    async def _read(self, read: Callable[[], Awaitable[T]], *, missing: T | None = None) -> T | Unread | None:
        """`read()`, with NotFound as `missing` and any other AWS failure as Unread."""
        try:
            return await read()
        except errors.NotFound:
            return missing
        except errors.AwsError as exc:
            return missing if exc.code in MISSING_GROUP_CODES else _unread(exc)

    async def database_setup(self, database: Database) -> DatabaseSetup | Unread | None:
        """Blue's backup retention, parameter groups with their apply status and, for Aurora, the cluster parameter
        group as each member reports it (the writer's own DB parameter groups too) and the global cluster."""
        if database.kind == "cluster":
            return await self._read(lambda: self._cluster_setup(database.identifier))
        return await self._read(lambda: self._instance_setup(database.identifier))

    async def _raw_instance(self, identifier: str) -> dict[str, Any] | None:
        response = await self._call("DescribeDBInstances", identifier, DBInstanceIdentifier=identifier)
        items = response.get("DBInstances", [])
        return items[0] if items else None

    async def _instance_setup(self, identifier: str) -> DatabaseSetup | None:
        data = await self._raw_instance(identifier)
        if data is None:
            return None
        groups = tuple(
            ParameterGroupStatus(g["DBParameterGroupName"], g.get("ParameterApplyStatus", ""), identifier)
            for g in data.get("DBParameterGroups", [])
        )
        return DatabaseSetup(identifier, int(data.get("BackupRetentionPeriod") or 0), groups)

    async def _cluster_setup(self, identifier: str) -> DatabaseSetup | None:
        response = await self._call("DescribeDBClusters", identifier, DBClusterIdentifier=identifier)
        items = response.get("DBClusters", [])
        if not items:
            return None
        data = items[0]
        group = data.get("DBClusterParameterGroup")
        members = data.get("DBClusterMembers", [])
        groups = [
            ParameterGroupStatus(
                group or "?", m.get("DBClusterParameterGroupStatus", ""), m["DBInstanceIdentifier"], cluster_group=True
            )
            for m in members
        ]
        writer = next((m["DBInstanceIdentifier"] for m in members if m.get("IsClusterWriter")), None)
        if writer:
            writer_setup = await self._instance_setup(writer)
            if writer_setup:
                groups += writer_setup.parameter_groups
        return DatabaseSetup(
            identifier,
            int(data.get("BackupRetentionPeriod") or 0),
            tuple(groups),
            cluster_parameter_group=group,
            global_cluster=data.get("GlobalClusterIdentifier") or None,
        )

    async def _engine_versions(self, engine: str, version: str) -> list[dict[str, Any]]:
        response = await self._call(
            "DescribeDBEngineVersions", f"{engine} {version}", Engine=engine, EngineVersion=version
        )
        return response.get("DBEngineVersions", [])

    async def valid_upgrade_targets(self, engine: str, version: str) -> dict[str, bool] | Unread | None:
        """The versions AWS lists as valid upgrade targets of `engine` `version`, each with IsMajorVersionUpgrade;
        None when AWS does not know that version."""

        async def read() -> dict[str, bool] | None:
            versions = await self._engine_versions(engine, version)
            if not versions:
                return None
            return {
                target["EngineVersion"]: bool(target.get("IsMajorVersionUpgrade"))
                for item in versions
                for target in item.get("ValidUpgradeTarget", [])
            }

        return await self._read(read)

    async def parameter_group_family(self, engine: str, version: str) -> str | Unread | None:
        """The parameter group family of an engine version (postgres16, aurora-postgresql15, mysql8.0, ...)."""

        async def read() -> str | None:
            versions = await self._engine_versions(engine, version)
            return versions[0].get("DBParameterGroupFamily") if versions else None

        return await self._read(read)

    async def parameter_group(self, name: str, *, cluster_group: bool) -> ParameterGroupInfo | Unread | None:
        """A DB parameter group (or, with `cluster_group`, a DB cluster parameter group) and its family."""

        async def read() -> ParameterGroupInfo | None:
            if cluster_group:
                response = await self._call("DescribeDBClusterParameterGroups", name, DBClusterParameterGroupName=name)
                items = response.get("DBClusterParameterGroups", [])
            else:
                response = await self._call("DescribeDBParameterGroups", name, DBParameterGroupName=name)
                items = response.get("DBParameterGroups", [])
            if not items:
                return None
            return ParameterGroupInfo(name, items[0].get("DBParameterGroupFamily", ""), cluster_group)

        return await self._read(read)

    async def parameter_value(self, group: str, parameter: str, *, cluster_group: bool) -> str | Unread | None:
        """A parameter's value in a (cluster) parameter group, every page read; None when it has no value (the
        engine default applies) or the group does not exist."""
        action, key = (
            ("DescribeDBClusterParameters", "DBClusterParameterGroupName")
            if cluster_group
            else ("DescribeDBParameters", "DBParameterGroupName")
        )

        async def read() -> str | None:
            # AWS documents Filters as unsupported here: every page is read and the parameter picked out.
            async for item in self._pages(action, "Parameters", group, **{key: group}):
                if item.get("ParameterName") == parameter:
                    return item.get("ParameterValue")
            return None

        return await self._read(read)

    async def instance_states(self, identifiers: Sequence[str]) -> list[InstanceState] | Unread:
        """Status and PercentProgress of each instance, in order (a missing one reads as status "missing")."""

        async def one(identifier: str) -> InstanceState:
            data = await self._raw_instance(identifier)
            if data is None:
                return InstanceState(identifier, "missing")
            progress = data.get("PercentProgress")
            return InstanceState(
                identifier,
                data.get("DBInstanceStatus", ""),
                int(progress) if isinstance(progress, str | int) and str(progress).isdigit() else None,
            )

        async def read() -> list[InstanceState]:
            return list(await asyncio.gather(*(one(i) for i in identifiers)))

        found = await self._read(read, missing=[])
        assert found is not None
        return found

    async def latest_metric(
        self, metric: str, identifiers: Sequence[str], *, minutes: int = 5
    ) -> dict[str, float | None] | Unread:
        """The latest datapoint (Maximum over 60 s) of an AWS/RDS metric per DB instance, None where CloudWatch has
        no datapoint in the last `minutes`."""
        series = [(metric, "DBInstanceIdentifier", identifier) for identifier in identifiers]

        async def read() -> dict[str, float | None]:
            response = await self._call(
                "GetMetricData", metric, service="cloudwatch", **latest_metric_params(series, minutes=minutes)
            )
            return dict(zip(identifiers, latest_values(response, len(series)), strict=True))

        found = await self._read(read, missing={})
        assert found is not None
        return found

    async def pending_maintenance(self, arns: Sequence[str]) -> list[MaintenanceAction] | Unread:
        """Pending maintenance actions of each resource (instance or cluster ARN)."""

        async def one(arn: str) -> list[MaintenanceAction]:
            found = []
            async for item in self._pages(
                "DescribePendingMaintenanceActions", "PendingMaintenanceActions", arn, ResourceIdentifier=arn
            ):
                for detail in item.get("PendingMaintenanceActionDetails", []):
                    found.append(
                        MaintenanceAction(
                            item.get("ResourceIdentifier", arn), detail.get("Action", "?"), detail.get("Description")
                        )
                    )
            return found

        async def read() -> list[MaintenanceAction]:
            per_resource = await asyncio.gather(*(one(arn) for arn in arns))
            return [action for actions in per_resource for action in actions]

        found = await self._read(read, missing=[])
        assert found is not None
        return found

    async def global_cluster_of(self, database: Database) -> str | Unread | None:
        """The Aurora Global Database the cluster belongs to, or None (always None for a DB instance)."""
        if database.kind != "cluster":
            return None

        async def read() -> str | None:
            async for item in self._pages("DescribeGlobalClusters", "GlobalClusters", database.identifier):
                if any(m.get("DBClusterArn") == database.arn for m in item.get("GlobalClusterMembers", [])):
                    return item.get("GlobalClusterIdentifier")
            return None

        return await self._read(read)
