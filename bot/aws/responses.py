"""Reading AWS's answers: describe-call payloads become the typed models of `bot.aws.models`, and the pure questions
the bot asks of proxy target entries (is this the database's registration, which entries carry its health).

No I/O here: `bot.aws.gateway` makes the calls and hands the payloads over.
"""

from __future__ import annotations

from bot.aws.models import Database, Deployment, DeploymentTask, Proxy, ProxyTarget, SwitchoverMember


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


def version_key(version: str) -> tuple:
    """Sort key for engine versions: numeric parts compare as numbers (16.10 after 16.9)."""
    return tuple(int(part) if part.isdigit() else part for part in version.replace("-", ".").split("."))


def parse_instance(data: dict) -> Database:
    """One entry of DescribeDBInstances' `DBInstances`."""
    return Database(
        identifier=data["DBInstanceIdentifier"],
        kind="instance",
        arn=data["DBInstanceArn"],
        engine=data.get("Engine", ""),
        engine_version=data.get("EngineVersion", ""),
        status=data.get("DBInstanceStatus", ""),
        cluster=data.get("DBClusterIdentifier"),
    )


def parse_cluster(data: dict) -> Database:
    """One entry of DescribeDBClusters' `DBClusters`; members are listed writer first."""
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


def parse_proxy(data: dict) -> Proxy:
    """One entry of DescribeDBProxies' `DBProxies`."""
    return Proxy(data["DBProxyName"], data.get("EngineFamily", ""), data.get("Endpoint"), data.get("Status", ""))


def parse_target(proxy: str, target_group: str, data: dict) -> ProxyTarget:
    """One entry of DescribeDBProxyTargets' `Targets`; no TargetHealth reads as UNAVAILABLE."""
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


def parse_deployment(data: dict) -> Deployment:
    """One entry of DescribeBlueGreenDeployments' `BlueGreenDeployments`, tags included."""
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
