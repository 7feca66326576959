"""Settings the drift report compares and the drift fixes change: deletion protection, tags, associated IAM roles,
parameter group, backup retention, enhanced monitoring, Performance Insights, CA certificate, resource id.

A mixin of `bot.aws.gateway.AwsGateway` (the only code that calls AWS): methods here use its `_call`,
`_describe`, `_mutate` and `_pages`, and follow its contract (AwsError on failure, None for not-found).

Shapes (botocore's RDS model): DBInstance has DeletionProtection, AssociatedRoles[] {RoleArn, FeatureName, Status},
DBParameterGroups[] {DBParameterGroupName}, BackupRetentionPeriod, MonitoringInterval, MonitoringRoleArn,
PerformanceInsightsEnabled, PerformanceInsightsRetentionPeriod, PerformanceInsightsKMSKeyId,
CACertificateIdentifier and DbiResourceId. DBCluster has DeletionProtection, AssociatedRoles[], DBClusterParameterGroup,
BackupRetentionPeriod and DbClusterResourceId; an Aurora cluster's enhanced monitoring, Performance Insights and CA
certificate are set per instance, so they are read from its writer. Tags come from ListTagsForResource.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot import errors
from bot.aws.models import DatabaseKind, identifier_from_arn

if TYPE_CHECKING:
    from bot.aws.gateway import Mutation

# Tag keys AWS reserves: they cannot be added or removed with AddTagsToResource, so never compared or copied.
RESERVED_TAG_PREFIX = "aws:"


@dataclass(frozen=True, slots=True)
class AssociatedRole:
    """An IAM role associated with a DB instance or cluster, for one feature (s3Import, Lambda, ...)."""

    arn: str
    feature: str | None = None


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """What the drift report compares between old blue and the new primary."""

    identifier: str
    kind: DatabaseKind
    arn: str
    engine: str
    engine_version: str
    resource_id: str | None  # DbiResourceId (instance) or DbClusterResourceId (Aurora)
    deletion_protection: bool
    tags: dict[str, str] = field(default_factory=dict)
    roles: tuple[AssociatedRole, ...] = ()
    parameter_group: str | None = None  # the DB parameter group, or the DB cluster parameter group for Aurora
    backup_retention: int | None = None
    # Instance-level settings (an Aurora cluster's: its writer's, named in `instance`; None when it has no writer).
    instance: str | None = None
    monitoring_interval: int | None = None  # seconds; 0 is off
    monitoring_role: str | None = None
    performance_insights: bool | None = None
    performance_insights_retention: int | None = None  # days
    performance_insights_kms_key: str | None = None
    ca_certificate: str | None = None


def _roles(data: dict[str, Any]) -> tuple[AssociatedRole, ...]:
    return tuple(
        AssociatedRole(role["RoleArn"], role.get("FeatureName") or None)
        for role in data.get("AssociatedRoles", [])
        if role.get("RoleArn")
    )


def _instance_level(data: dict[str, Any] | None) -> dict[str, Any]:
    if data is None:
        return {}
    return {
        "instance": data["DBInstanceIdentifier"],
        "monitoring_interval": int(data.get("MonitoringInterval") or 0),
        "monitoring_role": data.get("MonitoringRoleArn") or None,
        "performance_insights": bool(data.get("PerformanceInsightsEnabled")),
        "performance_insights_retention": data.get("PerformanceInsightsRetentionPeriod"),
        "performance_insights_kms_key": data.get("PerformanceInsightsKMSKeyId") or None,
        "ca_certificate": data.get("CACertificateIdentifier") or None,
    }


def instance_settings(data: dict[str, Any], tags: Mapping[str, str]) -> DatabaseSettings:
    """One entry of DescribeDBInstances' `DBInstances`, with the instance's tags."""
    groups = [g["DBParameterGroupName"] for g in data.get("DBParameterGroups", []) if g.get("DBParameterGroupName")]
    return DatabaseSettings(
        identifier=data["DBInstanceIdentifier"],
        kind="instance",
        arn=data["DBInstanceArn"],
        engine=data.get("Engine", ""),
        engine_version=data.get("EngineVersion", ""),
        resource_id=data.get("DbiResourceId"),
        deletion_protection=bool(data.get("DeletionProtection")),
        tags=dict(tags),
        roles=_roles(data),
        parameter_group=groups[0] if groups else None,
        backup_retention=data.get("BackupRetentionPeriod"),
        **_instance_level(data),
    )


def cluster_settings(data: dict[str, Any], tags: Mapping[str, str], writer: dict[str, Any] | None) -> DatabaseSettings:
    """One entry of DescribeDBClusters' `DBClusters`, with its tags and its writer's DescribeDBInstances entry."""
    return DatabaseSettings(
        identifier=data["DBClusterIdentifier"],
        kind="cluster",
        arn=data["DBClusterArn"],
        engine=data.get("Engine", ""),
        engine_version=data.get("EngineVersion", ""),
        resource_id=data.get("DbClusterResourceId"),
        deletion_protection=bool(data.get("DeletionProtection")),
        tags=dict(tags),
        roles=_roles(data),
        parameter_group=data.get("DBClusterParameterGroup") or None,
        backup_retention=data.get("BackupRetentionPeriod"),
        **_instance_level(writer),
    )


def deletion_protection_params(identifier: str, kind: DatabaseKind, enabled: bool) -> tuple[str, dict[str, Any]]:
    """The ModifyDBInstance / ModifyDBCluster call that turns deletion protection on or off (applied at once)."""
    if kind == "cluster":
        return "ModifyDBCluster", {"DBClusterIdentifier": identifier, "DeletionProtection": enabled}
    return "ModifyDBInstance", {"DBInstanceIdentifier": identifier, "DeletionProtection": enabled}


def add_tags_params(arn: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """The AddTagsToResource parameters for these tags (a key already there takes the new value)."""
    return {"ResourceName": arn, "Tags": [{"Key": key, "Value": value} for key, value in sorted(tags.items())]}


class SettingsChanges:
    _call: Callable[..., Awaitable[dict[str, Any]]]
    _mutate: Callable[..., Awaitable[Any]]
    _pages: Callable[..., AsyncIterator[dict[str, Any]]]

    async def _first(self, action: str, key: str, resource: str, **params: Any) -> dict[str, Any] | None:
        try:
            response = await self._call(action, resource, **params)
        except errors.NotFound:
            return None
        items = response.get(key, [])
        return items[0] if items else None

    async def tags(self, arn: str) -> dict[str, str]:
        """The resource's tags (ListTagsForResource), AWS-reserved `aws:` keys left out; NotFound if it is gone."""
        response = await self._call("ListTagsForResource", identifier_from_arn(arn), ResourceName=arn)
        return {
            tag["Key"]: tag.get("Value", "")
            for tag in response.get("TagList", [])
            if not tag["Key"].startswith(RESERVED_TAG_PREFIX)
        }

    async def database_settings(self, arn: str) -> DatabaseSettings | None:
        """The settings the drift report compares, of the instance or cluster (`:cluster:` ARN) the ARN names; None
        if it no longer exists. An instance is one describe, a cluster two (the cluster, then its writer), plus
        ListTagsForResource."""
        identifier = identifier_from_arn(arn)
        if ":cluster:" in arn:
            data = await self._first("DescribeDBClusters", "DBClusters", identifier, DBClusterIdentifier=identifier)
            if data is None:
                return None
            writer_id = next(
                (m["DBInstanceIdentifier"] for m in data.get("DBClusterMembers", []) if m.get("IsClusterWriter")), None
            )
            writer = None
            if writer_id:
                writer = await self._first(
                    "DescribeDBInstances", "DBInstances", writer_id, DBInstanceIdentifier=writer_id
                )
            return cluster_settings(data, await self.tags(data["DBClusterArn"]), writer)
        data = await self._first("DescribeDBInstances", "DBInstances", identifier, DBInstanceIdentifier=identifier)
        if data is None:
            return None
        return instance_settings(data, await self.tags(data["DBInstanceArn"]))

    async def set_deletion_protection(self, database: DatabaseSettings, enabled: bool) -> Mutation:
        """Turn deletion protection on (or off) for the instance or cluster; AWS applies it at once."""
        action, params = deletion_protection_params(database.identifier, database.kind, enabled)
        return await self._mutate(action, database.identifier, **params)

    async def add_tags(self, arn: str, tags: Mapping[str, str]) -> Mutation:
        """Add these tags to the resource (a key it already has takes the new value)."""
        return await self._mutate("AddTagsToResource", identifier_from_arn(arn), **add_tags_params(arn, tags))
