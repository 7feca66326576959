"""The AWS calls of a rehearsal: restore a disposable clone of a DB instance, delete it, and find what a rehearsal
tagged. A mixin of `bot.aws.gateway.AwsGateway` (the only code that calls AWS), following its contract (AwsError on
failure, None for not-found).

Shapes (RDS API reference): RestoreDBInstanceToPointInTime takes SourceDBInstanceIdentifier,
TargetDBInstanceIdentifier, UseLatestRestorableTime, DBInstanceClass, DBSubnetGroupName, VpcSecurityGroupIds,
DBParameterGroupName and Tags; a restored instance takes the engine's default parameter group, the VPC's default
security group and no subnet group unless asked, so the clone names blue's. DeleteDBInstance with
SkipFinalSnapshot=True and DeleteAutomatedBackups=True leaves nothing behind. CreateDBProxy takes DBProxyName,
EngineFamily, Auth, RoleArn, VpcSubnetIds, VpcSecurityGroupIds, RequireTLS, IdleClientTimeout and Tags.
DescribeDBInstances and DescribeDBClusters return each resource's TagList; DescribeDBProxies does not (DBProxy has
no tags), so a proxy's are read with ListTagsForResource on its DBProxyArn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot import errors
from bot.aws.environment_tags import ENVIRONMENT_TAG, environment_of
from bot.aws.models import Deployment
from bot.aws.responses import parse_deployment

if TYPE_CHECKING:
    from bot.aws.gateway import Mutation

REHEARSAL_TAG = "bluegreen-bot:rehearsal"
# Blue in the default VPC's subnet group: a restore not naming one gets it too, so it is not named.
DEFAULT_SUBNET_GROUP = "default"
# CreateDBProxy parameters a rehearsal proxy takes from a production proxy (RDS API reference, DBProxy).
PROXY_COPIED = ("EngineFamily", "RoleArn", "VpcSubnetIds", "VpcSecurityGroupIds", "RequireTLS", "IdleClientTimeout")
PROXY_AUTH_FIELDS = ("AuthScheme", "SecretArn", "IAMAuth", "Description", "ClientPasswordAuthType")


@dataclass(frozen=True, slots=True)
class InstanceShape:
    """What a clone copies from blue."""

    instance_class: str
    subnet_group: str | None
    security_groups: tuple[str, ...]
    parameter_group: str | None
    environment: str | None = None  # blue's `bluegreen-bot:environment` tag, which the clone carries too


@dataclass(frozen=True, slots=True)
class ClusterShape:
    """What an Aurora clone copies from blue: the cluster's groups, and each member's class and parameter group
    (writer first)."""

    engine: str
    subnet_group: str | None
    security_groups: tuple[str, ...]
    cluster_parameter_group: str | None
    members: tuple[InstanceShape, ...]
    environment: str | None = None


@dataclass(frozen=True, slots=True)
class TaggedResource:
    """An instance, cluster or proxy tagged `bluegreen-bot:rehearsal=<run_id>`, as listed."""

    kind: str  # "instance", "cluster" or "proxy"
    identifier: str
    arn: str
    run_id: str
    status: str
    cluster: str | None = None  # an instance's Aurora cluster
    members: tuple[str, ...] = ()  # a cluster's instances


class RehearsalClones:
    _call: Callable[..., Awaitable[dict[str, Any]]]
    _mutate: Callable[..., Awaitable[Any]]
    _pages: Callable[..., AsyncIterator[dict[str, Any]]]

    async def instance_shape(self, identifier: str) -> InstanceShape | None:
        try:
            response = await self._call("DescribeDBInstances", identifier, DBInstanceIdentifier=identifier)
        except errors.NotFound:
            return None
        found = response.get("DBInstances", [])
        if not found:
            return None
        data = found[0]
        groups = data.get("DBParameterGroups") or []
        return InstanceShape(
            instance_class=data["DBInstanceClass"],
            subnet_group=(data.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
            security_groups=tuple(g["VpcSecurityGroupId"] for g in data.get("VpcSecurityGroups") or []),
            parameter_group=groups[0]["DBParameterGroupName"] if groups else None,
            environment=environment_of(data.get("TagList")).get(ENVIRONMENT_TAG),
        )

    async def cluster_shape(self, identifier: str) -> ClusterShape | None:
        try:
            response = await self._call("DescribeDBClusters", identifier, DBClusterIdentifier=identifier)
        except errors.NotFound:
            return None
        found = response.get("DBClusters", [])
        if not found:
            return None
        data = found[0]
        ordered = sorted(data.get("DBClusterMembers") or [], key=lambda m: not m.get("IsClusterWriter"))
        members = [await self.instance_shape(m["DBInstanceIdentifier"]) for m in ordered]
        return ClusterShape(
            engine=data["Engine"],
            subnet_group=data.get("DBSubnetGroup"),
            security_groups=tuple(g["VpcSecurityGroupId"] for g in data.get("VpcSecurityGroups") or []),
            cluster_parameter_group=data.get("DBClusterParameterGroup"),
            members=tuple(m for m in members if m is not None),
            environment=environment_of(data.get("TagList")).get(ENVIRONMENT_TAG),
        )

    async def restore_cluster_clone(self, source: str, clone: str, shape: ClusterShape, *, run_id: str) -> Mutation:
        params: dict[str, Any] = {
            "SourceDBClusterIdentifier": source,
            "DBClusterIdentifier": clone,
            "UseLatestRestorableTime": True,
            "Tags": clone_tags(run_id, shape.environment),
        }
        if shape.subnet_group and shape.subnet_group != DEFAULT_SUBNET_GROUP:
            params["DBSubnetGroupName"] = shape.subnet_group
        if shape.security_groups:
            params["VpcSecurityGroupIds"] = list(shape.security_groups)
        if shape.cluster_parameter_group:
            params["DBClusterParameterGroupName"] = shape.cluster_parameter_group
        return await self._mutate("RestoreDBClusterToPointInTime", clone, **params)

    async def create_member_clone(
        self, cluster: str, name: str, engine: str, shape: InstanceShape, *, run_id: str
    ) -> Mutation:
        """A restored cluster has no instances ("This operation only restores the DB cluster"): one per blue member."""
        params: dict[str, Any] = {
            "DBInstanceIdentifier": name,
            "DBClusterIdentifier": cluster,
            "Engine": engine,
            "DBInstanceClass": shape.instance_class,
            "Tags": clone_tags(run_id, shape.environment or await self._environment_of_cluster(cluster)),
        }
        if shape.parameter_group:
            params["DBParameterGroupName"] = shape.parameter_group
        return await self._mutate("CreateDBInstance", name, **params)

    async def _environment_of_cluster(self, identifier: str) -> str | None:
        try:
            response = await self._call("DescribeDBClusters", identifier, DBClusterIdentifier=identifier)
        except errors.NotFound:
            return None
        found = response.get("DBClusters", [])
        return environment_of(found[0].get("TagList")).get(ENVIRONMENT_TAG) if found else None

    async def delete_cluster_clone(self, clone: str) -> Mutation:
        """After its members are deleting: AWS refuses a cluster whose instances are not being deleted."""
        return await self._mutate("DeleteDBCluster", clone, DBClusterIdentifier=clone, SkipFinalSnapshot=True)

    async def restore_instance_clone(self, source: str, clone: str, shape: InstanceShape, *, run_id: str) -> Mutation:
        params: dict[str, Any] = {
            "SourceDBInstanceIdentifier": source,
            "TargetDBInstanceIdentifier": clone,
            "UseLatestRestorableTime": True,
            "DBInstanceClass": shape.instance_class,
            "Tags": clone_tags(run_id, shape.environment),
        }
        if shape.subnet_group and shape.subnet_group != DEFAULT_SUBNET_GROUP:
            params["DBSubnetGroupName"] = shape.subnet_group
        if shape.security_groups:
            params["VpcSecurityGroupIds"] = list(shape.security_groups)
        if shape.parameter_group:
            params["DBParameterGroupName"] = shape.parameter_group
        return await self._mutate("RestoreDBInstanceToPointInTime", clone, **params)

    async def delete_instance_clone(self, clone: str) -> Mutation:
        return await self._mutate(
            "DeleteDBInstance", clone, DBInstanceIdentifier=clone, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
        )

    async def event_messages(self, source_type: str, identifier: str) -> list[str]:
        """What AWS's events say about the instance or cluster (why a restore failed), oldest first; empty if AWS
        will not say."""
        try:
            response = await self._call(
                "DescribeEvents", identifier, SourceType=source_type, SourceIdentifier=identifier, Duration=1440
            )
        except errors.AwsError:
            return []
        return [str(e.get("Message", "")) for e in response.get("Events", [])]

    async def proxy_settings(self, name: str) -> dict[str, Any] | None:
        """What a rehearsal proxy copies from a production proxy, as CreateDBProxy parameters; None if it is gone."""
        try:
            response = await self._call("DescribeDBProxies", name, DBProxyName=name)
        except errors.NotFound:
            return None
        found = response.get("DBProxies", [])
        if not found:
            return None
        data = found[0]
        auth = [{k: v for k, v in a.items() if k in PROXY_AUTH_FIELDS} for a in data.get("Auth") or []]
        settings = {key: data[key] for key in PROXY_COPIED if key in data}
        return settings | {"Auth": auth}

    async def create_proxy_clone(
        self, name: str, settings: dict[str, Any], *, run_id: str, environment: str | None = None
    ) -> Mutation:
        return await self._mutate(
            "CreateDBProxy", name, DBProxyName=name, Tags=clone_tags(run_id, environment), **settings
        )

    async def delete_proxy_clone(self, name: str) -> Mutation:
        return await self._mutate("DeleteDBProxy", name, DBProxyName=name)

    async def rehearsal_leftovers(self, run_id: str) -> list[str]:
        """Identifiers of instances still tagged for this rehearsal (whatever their status)."""
        left: list[str] = []
        async for data in self._pages("DescribeDBInstances", "DBInstances"):
            tags = {t["Key"]: t["Value"] for t in data.get("TagList") or []}
            if tags.get(REHEARSAL_TAG) == run_id:
                left.append(data["DBInstanceIdentifier"])
        return left

    async def rehearsal_cluster_leftovers(self, run_id: str) -> list[str]:
        """Identifiers of Aurora clusters still tagged for this rehearsal."""
        left: list[str] = []
        async for data in self._pages("DescribeDBClusters", "DBClusters"):
            tags = {t["Key"]: t["Value"] for t in data.get("TagList") or []}
            if tags.get(REHEARSAL_TAG) == run_id:
                left.append(data["DBClusterIdentifier"])
        return left

    # ----- the sweep (`cleanup --rehearsals`): whatever any rehearsal left, found by its tag ----------------------

    async def tagged_rehearsal_resources(self) -> list[TaggedResource]:
        """Every instance, Aurora cluster and proxy tagged `bluegreen-bot:rehearsal` (any run). Instances and
        clusters carry their tags in the describe; proxies do not (DBProxy has no TagList), so each proxy's tags are
        read with ListTagsForResource on its ARN."""
        found: list[TaggedResource] = []
        async for data in self._pages("DescribeDBClusters", "DBClusters"):
            run_id = _rehearsal_of(data.get("TagList"))
            if run_id is not None:
                members = tuple(m["DBInstanceIdentifier"] for m in data.get("DBClusterMembers") or [])
                found.append(
                    TaggedResource(
                        "cluster", data["DBClusterIdentifier"], data["DBClusterArn"], run_id, data.get("Status", ""),
                        members=members,
                    )
                )  # fmt: skip
        async for data in self._pages("DescribeDBInstances", "DBInstances"):
            run_id = _rehearsal_of(data.get("TagList"))
            if run_id is not None:
                found.append(
                    TaggedResource(
                        "instance", data["DBInstanceIdentifier"], data["DBInstanceArn"], run_id,
                        data.get("DBInstanceStatus", ""), cluster=data.get("DBClusterIdentifier"),
                    )
                )  # fmt: skip
        async for data in self._pages("DescribeDBProxies", "DBProxies"):
            run_id = await self.rehearsal_tag(data["DBProxyArn"])
            if run_id is not None:
                found.append(
                    TaggedResource("proxy", data["DBProxyName"], data["DBProxyArn"], run_id, data.get("Status", ""))
                )
        return found

    async def rehearsal_tag(self, arn: str) -> str | None:
        """The run id in the resource's `bluegreen-bot:rehearsal` tag, read now (ListTagsForResource); None if it
        has no such tag or no longer exists."""
        try:
            response = await self._call("ListTagsForResource", arn.rsplit(":", 1)[-1], ResourceName=arn)
        except errors.NotFound:
            return None
        return _rehearsal_of(response.get("TagList"))

    async def proxy_arn(self, name: str) -> str | None:
        """The ARN of the proxy with that name now (a proxy deleted and created again has a new one), or None."""
        try:
            response = await self._call("DescribeDBProxies", name, DBProxyName=name)
        except errors.NotFound:
            return None
        found = response.get("DBProxies", [])
        return found[0]["DBProxyArn"] if found else None

    async def deployments_touching(self, arns: set[str]) -> list[Deployment]:
        """Blue/green deployments whose source or target is one of these databases (by ARN)."""
        return [
            deployment
            async for item in self._pages("DescribeBlueGreenDeployments", "BlueGreenDeployments")
            if (deployment := parse_deployment(item)).source_arn in arns or deployment.target_arn in arns
        ]


def clone_tags(run_id: str, environment: str | None) -> list[dict[str, str]]:
    """What a rehearsal creates is tagged with its run, and with the environment of the database it copies (the IAM
    policy lets the bot act only on its environment's resources)."""
    tags = [{"Key": REHEARSAL_TAG, "Value": run_id}]
    return tags + ([{"Key": ENVIRONMENT_TAG, "Value": environment}] if environment is not None else [])


def _rehearsal_of(tags: list[dict[str, Any]] | None) -> str | None:
    return next((str(t.get("Value", "")) for t in tags or [] if t.get("Key") == REHEARSAL_TAG), None)
