"""The only code that calls AWS. aiobotocore, the standard credential chain and region, AWS_ENDPOINT_URL honoured,
botocore's adaptive retry mode for throttling. Reads return typed models (None for not-found); mutations return a
`Mutation` with the request id and the equivalent `aws rds` command, for the audit log and the thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

from bot import errors
from bot.aws.commands import aws_command, target_params
from bot.aws.models import (
    Database,
    Deployment,
    DeploymentTask,
    Proxy,
    ProxyTarget,
    Registration,
    SwitchoverMember,
)

RETRY_CONFIG = AioConfig(
    # Few attempts here: inside a detached window the steps retry on their own 0.2-0.5 s rhythm rather than
    # botocore's exponential backoff (up to 20 s a wait).
    retries={"mode": "adaptive", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=30,
)

NOT_FOUND_CODES = {
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "DBClusterNotFoundFault",
    "DBProxyNotFoundFault",
    "DBProxyTargetGroupNotFoundFault",
    "BlueGreenDeploymentNotFoundFault",
}
INVALID_STATE_CODES = {
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBClusterStateFault",
    "InvalidDBProxyStateFault",
    "InvalidBlueGreenDeploymentStateFault",
}
ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorized"}


@dataclass(frozen=True, slots=True)
class Mutation:
    action: str
    params: dict[str, Any]
    command: str
    request_id: str | None
    response: dict[str, Any]


def translate(exc: ClientError, action: str, resource: str | None) -> errors.AwsError:
    """Turn a botocore ClientError into a domain error that names the resource and the fix."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message", "")) or code
    meta = exc.response.get("ResponseMetadata", {})
    kwargs = {
        "code": code,
        "action": action,
        "resource": resource,
        "request_id": meta.get("RequestId"),
        "http_status": meta.get("HTTPStatusCode"),
    }
    where = f" ({resource})" if resource else ""
    text = f"{action}{where}: {code}: {message}"
    if action == "CreateBlueGreenDeployment" and "proxy" in message.lower():
        return errors.ProxyNotSupported(text, fix="Use the workaround strategy (--mode workaround).", **kwargs)
    if code in NOT_FOUND_CODES:
        return errors.NotFound(text, fix="Check the identifier and the AWS region/account.", **kwargs)
    if code == "DBProxyTargetAlreadyRegisteredFault":
        return errors.AlreadyRegistered(text, **kwargs)
    if code == "DBProxyTargetNotFoundFault":
        return errors.NotRegistered(text, **kwargs)
    if code in INVALID_STATE_CODES:
        return errors.InvalidState(text, fix="Wait for the resource to become available, then retry.", **kwargs)
    if code in ACCESS_CODES:
        return errors.AccessDenied(
            text, fix=f"Grant rds:{action} to the bot's IAM role (see iam-policy.json).", **kwargs
        )
    return errors.AwsError(text, **kwargs)


class AwsGateway:
    """One per AWS account/region. Use as an async context manager, or call `close()`."""

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        role_arn: str | None = None,
    ) -> None:
        self._region = region
        self._endpoint_url = endpoint_url
        self._role_arn = role_arn
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> AwsGateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._stack.aclose()
        self._clients.clear()

    async def _client(self, service: str) -> Any:
        if service in self._clients:
            return self._clients[service]
        async with self._lock:
            if service not in self._clients:
                session = get_session()
                kwargs: dict[str, Any] = {"config": RETRY_CONFIG}
                if self._region:
                    kwargs["region_name"] = self._region
                if self._endpoint_url:
                    kwargs["endpoint_url"] = self._endpoint_url
                if self._role_arn:
                    kwargs.update(await self._assumed_role_credentials(session))
                self._clients[service] = await self._stack.enter_async_context(session.create_client(service, **kwargs))
        return self._clients[service]

    async def _assumed_role_credentials(self, session: Any) -> dict[str, str]:
        async with session.create_client("sts", region_name=self._region, config=RETRY_CONFIG) as sts:
            response = await sts.assume_role(RoleArn=self._role_arn, RoleSessionName="bluegreen-bot")
        creds = response["Credentials"]
        return {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }

    async def _call(self, action: str, resource: str | None = None, service: str = "rds", **params: Any) -> dict:
        client = await self._client(service)
        method = getattr(client, xform_name(action))
        try:
            return await method(**params)
        except ClientError as exc:
            raise translate(exc, action, resource) from exc
        except BotoCoreError as exc:  # connection errors after botocore's own retries
            raise errors.AwsError(
                f"{action}: {exc}", code=type(exc).__name__, action=action, resource=resource, http_status=599
            ) from exc

    async def _mutate(self, action: str, resource: str | None, **params: Any) -> Mutation:
        response = await self._call(action, resource, **params)
        return Mutation(
            action=action,
            params=params,
            command=aws_command(action, params),
            request_id=response.get("ResponseMetadata", {}).get("RequestId"),
            response=response,
        )

    async def _pages(self, action: str, key: str, resource: str | None = None, **params: Any) -> AsyncIterator[dict]:
        marker: str | None = None
        while True:
            page = await self._call(action, resource, **params, **({"Marker": marker} if marker else {}))
            for item in page.get(key, []):
                yield item
            marker = page.get("Marker")
            if not marker:
                return

    # ----- databases -------------------------------------------------------------------------------------------

    async def instance(self, identifier: str) -> Database | None:
        try:
            response = await self._call("DescribeDBInstances", identifier, DBInstanceIdentifier=identifier)
        except errors.NotFound:
            return None
        return _instance(response["DBInstances"][0])

    async def cluster(self, identifier: str) -> Database | None:
        try:
            response = await self._call("DescribeDBClusters", identifier, DBClusterIdentifier=identifier)
        except errors.NotFound:
            return None
        return _cluster(response["DBClusters"][0])

    async def database(self, identifier: str) -> Database | None:
        """An Aurora cluster or a DB instance with that identifier (clusters first)."""
        return await self.cluster(identifier) or await self.instance(identifier)

    async def database_by_arn(self, arn: str) -> Database | None:
        identifier = arn.rsplit(":", 1)[-1]
        return await self.cluster(identifier) if ":cluster:" in arn else await self.instance(identifier)

    async def databases(self) -> list[Database]:
        clusters = [_cluster(c) async for c in self._pages("DescribeDBClusters", "DBClusters")]
        instances = [_instance(i) async for i in self._pages("DescribeDBInstances", "DBInstances")]
        return clusters + [i for i in instances if i.cluster is None]

    async def upgrade_targets(self, database: Database) -> list[str]:
        """Engine versions AWS lists as valid upgrade targets for the database's current version."""
        try:
            response = await self._call(
                "DescribeDBEngineVersions",
                database.identifier,
                Engine=database.engine,
                EngineVersion=database.engine_version,
            )
        except errors.AwsError:
            return []
        targets = {
            target["EngineVersion"]
            for version in response.get("DBEngineVersions", [])
            for target in version.get("ValidUpgradeTarget", [])
        }
        return sorted(targets, key=_version_key)

    async def modify_engine_version(self, database: Database, version: str, *, allow_major: bool) -> Mutation:
        if database.kind == "cluster":
            return await self._mutate(
                "ModifyDBCluster",
                database.identifier,
                DBClusterIdentifier=database.identifier,
                EngineVersion=version,
                AllowMajorVersionUpgrade=allow_major,
                ApplyImmediately=True,
            )
        return await self._mutate(
            "ModifyDBInstance",
            database.identifier,
            DBInstanceIdentifier=database.identifier,
            EngineVersion=version,
            AllowMajorVersionUpgrade=allow_major,
            ApplyImmediately=True,
        )

    async def delete_database(self, database: Database, final_snapshot: str) -> Mutation:
        if database.kind == "cluster":
            for member in database.members:
                await self._mutate("DeleteDBInstance", member, DBInstanceIdentifier=member, SkipFinalSnapshot=True)
            return await self._mutate(
                "DeleteDBCluster",
                database.identifier,
                DBClusterIdentifier=database.identifier,
                FinalDBSnapshotIdentifier=final_snapshot,
            )
        return await self._mutate(
            "DeleteDBInstance",
            database.identifier,
            DBInstanceIdentifier=database.identifier,
            FinalDBSnapshotIdentifier=final_snapshot,
        )

    # ----- RDS Proxy ------------------------------------------------------------------------------------------

    async def proxies(self) -> list[Proxy]:
        return [
            Proxy(p["DBProxyName"], p.get("EngineFamily", ""), p.get("Endpoint"), p.get("Status", ""))
            async for p in self._pages("DescribeDBProxies", "DBProxies")
        ]

    async def target_groups(self, proxy: str) -> list[str]:
        return [
            group["TargetGroupName"]
            async for group in self._pages("DescribeDBProxyTargetGroups", "TargetGroups", proxy, DBProxyName=proxy)
        ]

    async def targets(self, proxy: str, target_group: str = "default") -> list[ProxyTarget]:
        return [
            _target(proxy, target_group, t)
            async for t in self._pages(
                "DescribeDBProxyTargets", "Targets", proxy, DBProxyName=proxy, TargetGroupName=target_group
            )
        ]

    async def registrations(self, database: Database) -> list[Registration]:
        """Every proxy target group the database is registered with (one database may sit behind several)."""

        async def of_proxy(proxy: Proxy) -> list[Registration]:
            found = []
            for group in await self.target_groups(proxy.name):
                if any(registered_as(database, t) for t in await self.targets(proxy.name, group)):
                    found.append(Registration(proxy.name, group))
            return found

        per_proxy = await asyncio.gather(*(of_proxy(p) for p in await self.proxies()))
        return [registration for found in per_proxy for registration in found]

    async def register(self, registration: Registration, database: Database) -> Mutation:
        return await self._mutate(
            "RegisterDBProxyTargets",
            f"{database.identifier} on {registration.label}",
            **target_params(registration, database.identifier, database.kind),
        )

    async def deregister(self, registration: Registration, database: Database) -> Mutation:
        return await self._mutate(
            "DeregisterDBProxyTargets",
            f"{database.identifier} on {registration.label}",
            **target_params(registration, database.identifier, database.kind),
        )

    async def proxy_metrics(self, proxy: str, *, minutes: int = 5) -> dict[str, float | None] | None:
        """Latest ClientConnections / DatabaseConnections / AvailabilityPercentage, or None when CloudWatch is out
        of reach or not permitted (the caller reports the check as unavailable)."""
        names = ("ClientConnections", "DatabaseConnections", "AvailabilityPercentage")
        end = dt.datetime.now(dt.UTC)
        queries = [
            {
                "Id": f"m{i}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/RDS",
                        "MetricName": name,
                        "Dimensions": [{"Name": "ProxyName", "Value": proxy}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
            for i, name in enumerate(names)
        ]
        try:
            response = await self._call(
                "GetMetricData",
                proxy,
                service="cloudwatch",
                MetricDataQueries=queries,
                StartTime=end - dt.timedelta(minutes=minutes),
                EndTime=end,
                ScanBy="TimestampDescending",
            )
        except errors.AwsError:
            return None
        values: dict[str, float | None] = dict.fromkeys(names)
        for result in response.get("MetricDataResults", []):
            index = int(result["Id"][1:])
            if result.get("Values"):
                values[names[index]] = float(result["Values"][0])
        return values

    # ----- Blue/Green Deployments -----------------------------------------------------------------------------

    async def deployment(self, identifier: str) -> Deployment | None:
        try:
            response = await self._call(
                "DescribeBlueGreenDeployments", identifier, BlueGreenDeploymentIdentifier=identifier
            )
        except errors.NotFound:
            return None
        items = response.get("BlueGreenDeployments", [])
        return _deployment(items[0]) if items else None

    async def deployments_for(self, database: Database, *, role: str = "source") -> list[Deployment]:
        """Deployments whose blue (role "source") or, after a switchover, whose green (role "target") is this
        database. Newest first."""
        found = [
            _deployment(item)
            async for item in self._pages(
                "DescribeBlueGreenDeployments",
                "BlueGreenDeployments",
                database.identifier,
                Filters=[{"Name": role, "Values": [database.arn]}],
            )
        ]
        return list(reversed(found))

    async def deployment_named(self, name: str) -> Deployment | None:
        found = [
            _deployment(item)
            async for item in self._pages(
                "DescribeBlueGreenDeployments",
                "BlueGreenDeployments",
                name,
                Filters=[{"Name": "blue-green-deployment-name", "Values": [name]}],
            )
        ]
        return found[0] if found else None

    async def create_deployment(
        self,
        *,
        name: str,
        source: Database,
        engine_version: str | None,
        parameter_group: str | None,
        tags: Mapping[str, str],
    ) -> Mutation:
        params: dict[str, Any] = {"BlueGreenDeploymentName": name, "Source": source.arn}
        if engine_version:
            params["TargetEngineVersion"] = engine_version
        if parameter_group:
            key = "TargetDBClusterParameterGroupName" if source.kind == "cluster" else "TargetDBParameterGroupName"
            params[key] = parameter_group
        params["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        return await self._mutate("CreateBlueGreenDeployment", source.identifier, **params)

    async def switchover(self, deployment_id: str, switchover_timeout: int) -> Mutation:
        return await self._mutate(
            "SwitchoverBlueGreenDeployment",
            deployment_id,
            BlueGreenDeploymentIdentifier=deployment_id,
            SwitchoverTimeout=switchover_timeout,
        )

    async def delete_deployment(self, deployment_id: str, *, delete_target: bool) -> Mutation:
        return await self._mutate(
            "DeleteBlueGreenDeployment",
            deployment_id,
            BlueGreenDeploymentIdentifier=deployment_id,
            DeleteTarget=delete_target,
        )


def registered_as(database: Database, target: ProxyTarget) -> bool:
    """Whether a proxy target entry is this database's registration (the instance, or the tracked cluster)."""
    if database.kind == "cluster":
        return target.type == "TRACKED_CLUSTER" and database.identifier in (
            target.rds_resource_id,
            target.tracked_cluster,
        )
    return target.type == "RDS_INSTANCE" and target.rds_resource_id == database.identifier


def health_of(database: Database, targets: list[ProxyTarget]) -> list[ProxyTarget]:
    """The entries that carry the database's health: the instance, or a cluster's member instances."""
    if database.kind == "cluster":
        members = [t for t in targets if t.type == "RDS_INSTANCE" and t.tracked_cluster == database.identifier]
        return members or [t for t in targets if registered_as(database, t)]
    return [t for t in targets if registered_as(database, t)]


def _version_key(version: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in version.replace("-", ".").split("."))


def _instance(data: dict) -> Database:
    return Database(
        identifier=data["DBInstanceIdentifier"],
        kind="instance",
        arn=data["DBInstanceArn"],
        engine=data.get("Engine", ""),
        engine_version=data.get("EngineVersion", ""),
        status=data.get("DBInstanceStatus", ""),
        cluster=data.get("DBClusterIdentifier"),
    )


def _cluster(data: dict) -> Database:
    members = sorted(data.get("DBClusterMembers", []), key=lambda m: not m.get("IsClusterWriter"))
    writer = next((m["DBInstanceIdentifier"] for m in members if m.get("IsClusterWriter")), None)
    return Database(
        identifier=data["DBClusterIdentifier"],
        kind="cluster",
        arn=data["DBClusterArn"],
        engine=data.get("Engine", ""),
        engine_version=data.get("EngineVersion", ""),
        status=data.get("Status", ""),
        members=tuple(m["DBInstanceIdentifier"] for m in members),
        writer=writer,
        global_cluster=data.get("GlobalClusterIdentifier") or None,
    )


def _target(proxy: str, target_group: str, data: dict) -> ProxyTarget:
    health = data.get("TargetHealth") or {}
    return ProxyTarget(
        proxy=proxy,
        target_group=target_group,
        rds_resource_id=data.get("RdsResourceId"),
        type=data.get("Type", ""),
        role=data.get("Role"),
        state=health.get("State", "UNAVAILABLE"),
        reason=health.get("Reason"),
        description=health.get("Description"),
        tracked_cluster=data.get("TrackedClusterId"),
        endpoint=data.get("Endpoint"),
        port=data.get("Port"),
    )


def _deployment(data: dict) -> Deployment:
    return Deployment(
        identifier=data["BlueGreenDeploymentIdentifier"],
        name=data.get("BlueGreenDeploymentName", ""),
        source_arn=data.get("Source", ""),
        target_arn=data.get("Target"),
        status=data.get("Status", ""),
        status_details=data.get("StatusDetails"),
        tasks=tuple(DeploymentTask(t["Name"], t["Status"]) for t in data.get("Tasks", [])),
        members=tuple(
            SwitchoverMember(m.get("SourceMember", ""), m.get("TargetMember", ""), m.get("Status", ""))
            for m in data.get("SwitchoverDetails", [])
        ),
        tags={t["Key"]: t["Value"] for t in data.get("TagList", [])},
    )
