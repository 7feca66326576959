"""The only code that calls AWS. aiobotocore, the standard credential chain and region, AWS_ENDPOINT_URL honoured,
botocore's adaptive retry mode for throttling. Reads return typed models (None for not-found); mutations return a
`Mutation` with the request id and the equivalent `aws rds` command, for the audit log and the thread.

Every call that reaches AWS raises `bot.errors.AwsError` on failure: the subclass `bot.aws.faults.translate` picks
(NotFound, InvalidState, AccessDenied, ...), or a plain AwsError with http_status 599 for a lost connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

from bot import errors
from bot.aws import mutation_guard
from bot.aws.commands import aws_command
from bot.aws.credentials import RoleCredentials, assumed_role_credentials, use_credentials
from bot.aws.database_reads import DatabaseReads
from bot.aws.deployment_events import DeploymentEvents
from bot.aws.environment_tags import EnvironmentTags
from bot.aws.faults import translate
from bot.aws.models import Database, Deployment
from bot.aws.rds_proxies import RdsProxies
from bot.aws.rehearsal_clones import RehearsalClones
from bot.aws.rehearsal_sizing import RehearsalSizing
from bot.aws.responses import (
    parse_cluster,
    parse_deployment,
    parse_instance,
    version_key,
)
from bot.aws.sessions import new_session
from bot.aws.settings_changes import SettingsChanges

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRY_CONFIG = AioConfig(
    # Few attempts here: inside a detached window the steps retry on their own 0.2-0.5 s rhythm rather than
    # botocore's exponential backoff (up to 20 s a wait).
    retries={"mode": "adaptive", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=30,
)


def _log_fields(action: str, request_id: str | None) -> dict[str, str | None]:
    return {"action": action, "aws_request_id": request_id}  # JSON log lines carry them (bot/logs.py)


@dataclass(frozen=True, slots=True)
class Mutation:
    action: str
    params: dict[str, Any]
    command: str
    request_id: str | None
    response: dict[str, Any]


class AwsGateway(
    DatabaseReads, DeploymentEvents, SettingsChanges, RdsProxies, RehearsalClones, RehearsalSizing, EnvironmentTags
):
    """One per AWS account/region. Use as an async context manager, or call `close()`.

    Failures raise `bot.errors.AwsError` (see the module docstring) unless a method says otherwise. With `role_arn`
    every client signs with one set of assumed-role credentials that refresh themselves before they expire
    (`bot/aws/credentials.py`); a failed AssumeRole raises AwsError with action "AssumeRole" from the call that
    needed it.
    """

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
        self._session: AioSession | None = None
        self._credentials: Any = None  # the role's credentials, shared by every client; None without role_arn
        # Told of every call: (action, the error or None, seconds). Metrics and readiness use it; it must not raise.
        self.observer: Callable[[str, BaseException | None, float], None] | None = None
        self._start_discovery()

    async def __aenter__(self) -> AwsGateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every AWS client the gateway opened, and stop a credential refresh in flight."""
        await self._stack.aclose()
        self._clients.clear()
        if isinstance(self._credentials, RoleCredentials):
            await self._credentials.aclose()
        self._session = self._credentials = None

    async def _client(self, service: str) -> Any:
        if service in self._clients:
            return self._clients[service]
        async with self._lock:
            if service not in self._clients:
                session = await self._session_for_clients()
                kwargs: dict[str, Any] = {"config": RETRY_CONFIG}
                if self._region:
                    kwargs["region_name"] = self._region
                if self._endpoint_url:
                    kwargs["endpoint_url"] = self._endpoint_url
                self._clients[service] = await self._stack.enter_async_context(session.create_client(service, **kwargs))
        return self._clients[service]

    async def _session_for_clients(self) -> AioSession:
        """One session for every client, so that with `role_arn` they all share one refreshable credentials object
        (one AssumeRole per grant, not per client). Callers hold `self._lock`."""
        if self._session is None:
            session = new_session()
            if self._role_arn:
                self._credentials = await self._assumed_role_credentials()
                use_credentials(session, self._credentials)
            self._session = session
        return self._session

    async def _assumed_role_credentials(self) -> Any:
        """Credentials for `role_arn` that assume the role on first use and again before each grant expires; STS is
        reached in the gateway's region, at its endpoint URL if it has one."""
        assert self._role_arn is not None
        return await assumed_role_credentials(self._role_arn, region=self._region, endpoint_url=self._endpoint_url)

    async def _call(self, action: str, resource: str | None = None, service: str = "rds", **params: Any) -> dict:
        await self._take_describe_token(action, service)
        client = await self._client(service)
        method = getattr(client, xform_name(action))
        started = time.monotonic()
        error: BaseException | None = None  # what the observer is told
        try:
            response = await method(**params)
        except ClientError as exc:
            raise (error := translate(exc, action, resource)) from exc
        except BotoCoreError as exc:  # connection errors after botocore's own retries
            raise (
                error := errors.AwsError(
                    f"{action}: {exc}", code=type(exc).__name__, action=action, resource=resource, http_status=599
                )
            ) from exc
        except BaseException as exc:  # cancelled (the caller gave up) or a bug: not a success either
            error = exc
            raise
        finally:
            if self.observer is not None:
                self.observer(action, error, time.monotonic() - started)
            if isinstance(error, errors.AwsError):
                log.debug("aws %s failed: %s", action, error.code, extra=_log_fields(action, error.request_id))
        log.debug("aws %s ok", action, extra=_log_fields(action, response.get("ResponseMetadata", {}).get("RequestId")))
        return response

    async def _describe(
        self, action: str, key: str, parse: Callable[[dict], T], resource: str, **params: Any
    ) -> T | None:
        """The one resource a describe call names, parsed; None when AWS says it does not exist (or lists none)."""
        try:
            response = await self._call(action, resource, **params)
        except errors.NotFound:
            return None
        items = response.get(key, [])
        return parse(items[0]) if items else None

    async def _mutate(
        self, action: str, resource: str | None, *, guard_names: set[str] | None = None, **params: Any
    ) -> Mutation:
        """One mutation. `guard_names`: what the call changes, for the rehearsal guard, when its parameters name it
        by an id the guard cannot attribute (a proxy's target group)."""
        mutation_guard.check(action, params, guard_names)  # a rehearsal's step: only what the rehearsal created
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
        """The DB instance with that identifier, or None if there is none."""
        return await self._describe(
            "DescribeDBInstances", "DBInstances", parse_instance, identifier, DBInstanceIdentifier=identifier
        )

    async def cluster(self, identifier: str) -> Database | None:
        """The Aurora cluster with that identifier, or None if there is none."""
        return await self._describe(
            "DescribeDBClusters", "DBClusters", parse_cluster, identifier, DBClusterIdentifier=identifier
        )

    async def database(self, identifier: str, kind: str | None = None) -> Database | None:
        """An Aurora cluster or a DB instance with that identifier (clusters first), or None if neither exists. With
        `kind` ("cluster" or "instance") known, one call instead of two."""
        if kind == "instance":
            return await self.instance(identifier)
        if kind == "cluster":
            return await self.cluster(identifier)
        return await self.cluster(identifier) or await self.instance(identifier)

    async def database_by_arn(self, arn: str) -> Database | None:
        """The cluster (`:cluster:` ARN) or instance the ARN names, or None if it no longer exists."""
        identifier = arn.rsplit(":", 1)[-1]
        return await self.cluster(identifier) if ":cluster:" in arn else await self.instance(identifier)

    async def databases(self) -> list[Database]:
        """Every Aurora cluster, then every DB instance that is not a cluster member (all pages)."""
        clusters = [parse_cluster(c) async for c in self._pages("DescribeDBClusters", "DBClusters")]
        instances = [parse_instance(i) async for i in self._pages("DescribeDBInstances", "DBInstances")]
        return clusters + [i for i in instances if i.cluster is None]

    async def upgrade_targets(self, database: Database) -> list[str]:
        """Engine versions AWS lists as valid upgrade targets for the database's current version, oldest first.
        Never raises for AWS: an empty list when the call fails."""
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
        return sorted(targets, key=version_key)

    async def modify_engine_version(self, database: Database, version: str, *, allow_major: bool) -> Mutation:
        """Ask AWS to move the cluster or instance to `version`, applied immediately (the upgrade runs async)."""
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
        """Start deleting the instance or the Aurora cluster, with a final snapshot named `final_snapshot`: one
        call. AWS refuses a cluster (InvalidState) while any member instance is not `deleting`: delete the members
        first with `delete_cluster_member`."""
        if database.kind == "cluster":
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

    async def delete_cluster_member(self, identifier: str) -> Mutation:
        """Start deleting one member instance of an Aurora cluster, without a snapshot (AWS refuses a final
        snapshot for a cluster member; the cluster's final snapshot holds the data). InvalidState if it is already
        being deleted, NotFound if it is gone."""
        return await self._mutate(
            "DeleteDBInstance", identifier, DBInstanceIdentifier=identifier, SkipFinalSnapshot=True
        )

    # ----- Blue/Green Deployments -----------------------------------------------------------------------------

    async def deployment(self, identifier: str) -> Deployment | None:
        """The blue/green deployment with that identifier, or None if there is none."""
        return await self._describe(
            "DescribeBlueGreenDeployments",
            "BlueGreenDeployments",
            parse_deployment,
            identifier,
            BlueGreenDeploymentIdentifier=identifier,
        )

    async def deployments_for(self, database: Database, *, role: str = "source") -> list[Deployment]:
        """Deployments whose blue (role "source") or, after a switchover, whose green (role "target") is this
        database. Newest first."""
        found = [
            parse_deployment(item)
            async for item in self._pages(
                "DescribeBlueGreenDeployments",
                "BlueGreenDeployments",
                database.identifier,
                Filters=[{"Name": role, "Values": [database.arn]}],
            )
        ]
        return list(reversed(found))

    async def deployment_named(self, name: str) -> Deployment | None:
        """The deployment with that BlueGreenDeploymentName (the bot's own, per run), or None."""
        found = [
            parse_deployment(item)
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
        """Create a blue/green deployment of `source`, tagged, with the source's environment tag too (the IAM policy
        lets the bot switch over and delete only deployments of its environment). ProxyNotSupported when AWS
        refuses it because the source is an RDS Proxy target."""
        tags = {**tags, **await self.environment_tags(source.arn)}
        params: dict[str, Any] = {"BlueGreenDeploymentName": name, "Source": source.arn}
        if engine_version:
            params["TargetEngineVersion"] = engine_version
        if parameter_group:
            key = "TargetDBClusterParameterGroupName" if source.kind == "cluster" else "TargetDBParameterGroupName"
            params[key] = parameter_group
        params["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        return await self._mutate("CreateBlueGreenDeployment", source.identifier, **params)

    async def switchover(self, deployment_id: str, switchover_timeout: int) -> Mutation:
        """Start the switchover (AWS finishes it asynchronously); InvalidState if the deployment is not AVAILABLE."""
        return await self._mutate(
            "SwitchoverBlueGreenDeployment",
            deployment_id,
            BlueGreenDeploymentIdentifier=deployment_id,
            SwitchoverTimeout=switchover_timeout,
        )

    async def delete_deployment(self, deployment_id: str, *, delete_target: bool) -> Mutation:
        """Start deleting the deployment and, with `delete_target`, its green resources."""
        return await self._mutate(
            "DeleteBlueGreenDeployment",
            deployment_id,
            BlueGreenDeploymentIdentifier=deployment_id,
            DeleteTarget=delete_target,
        )
