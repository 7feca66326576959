"""Prerequisites of `create`, checked before anything is recorded or changed: a failed one stops `create` (the CLI
exits 2, Slack refuses ephemerally) and no proxy is ever detached for a deployment AWS would refuse.

AWS, "Creating a blue/green deployment" (RDS and Aurora User Guides, section "Preparing for a blue/green
deployment"): automated backups on (MySQL, MariaDB, PostgreSQL); for PostgreSQL logical replication a custom (cluster)
parameter group with `rds.logical_replication` on, and the database in sync with it ("otherwise creation fails");
Aurora MySQL: `binlog_format` on in the cluster parameter group, the writer in sync. Page "PostgreSQL replication
methods for blue/green deployments": logical replication for a major version upgrade (and always on Aurora
PostgreSQL), and no major upgrade from RDS for PostgreSQL 15.3, 14.8, 13.11, 12.15, 11.20 or lower. Valid targets:
DescribeDBEngineVersions' ValidUpgradeTarget. RDS Proxy with blue/green: blue must already be a proxy target, and
Aurora Global Database is not supported.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.aws.database_reads import DatabaseReads, DatabaseSetup, ParameterGroupInfo, Unread
from bot.aws.models import NATIVE_PROXY_ENGINES, Database, Deployment, Registration, major_version
from bot.aws.responses import version_key
from bot.gates.model import FAIL, PASS, UNKNOWN, GateResult
from bot.gates.replica_lag import replication_method

UPGRADE, BACKUPS, IN_SYNC, REPLICATION = (
    "upgrade target",
    "automated backups",
    "parameter groups in sync",
    ("replication settings"),
)
TARGET_GROUP, NO_OTHER, PROXY_TARGET, GLOBAL = (
    "target parameter group",
    "no other deployment",
    "proxy target",
    ("not in a global database"),
)
ENDED = {"SWITCHOVER_COMPLETED", "DELETING"}
# The last RDS for PostgreSQL version of each major from which AWS does NOT support a major upgrade by blue/green.
NO_MAJOR_UPGRADE_UP_TO = {"15": "15.3", "14": "14.8", "13": "13.11", "12": "12.15", "11": "11.20"}


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """What the gates need from the request: the database, the versions and groups asked for, the strategy."""

    database: Database
    engine_version: str | None
    parameter_group: str | None
    strategy: str | None  # "native" | "workaround" | "direct"
    mode: str
    registrations: tuple[Registration, ...]
    deployments: tuple[Deployment, ...]

    @property
    def replication(self) -> str:
        return replication_method(self.database.engine, self.database.engine_version, self.engine_version)


def _unknown(name: str, read: Unread) -> GateResult:
    return GateResult(
        name,
        UNKNOWN,
        f"AWS did not answer ({read.reason})",
        fix="Check the bot's IAM policy (iam-policy.json) and retry `plan`.",
    )


def _modify(database: Database) -> str:
    return (
        "modify-db-cluster --db-cluster-identifier"
        if database.kind == "cluster"
        else ("modify-db-instance --db-instance-identifier")
    )


def judge_upgrade_target(request: CreateRequest, targets: dict[str, bool] | Unread | None) -> GateResult:
    database, target = request.database, request.engine_version
    current = f"{database.engine} {database.engine_version}"
    if not target:
        return GateResult(UPGRADE, PASS, f"no engine version change: green runs {current}")
    if isinstance(targets, Unread):
        return _unknown(UPGRADE, targets)
    if targets is None:
        return GateResult(UPGRADE, UNKNOWN, f"AWS does not list {current} in DescribeDBEngineVersions")
    if target not in targets:
        listed = sorted(targets, key=version_key)
        newest = listed[-1] if listed else None
        return GateResult(
            UPGRADE,
            FAIL,
            f"{target} is not a valid upgrade target of {current}"
            + (f" (valid: {', '.join(listed)})" if listed else " (AWS lists none)"),
            fix=f"`plan {database.identifier} --engine-version {newest}`" if newest else None,
        )
    kind = "major" if targets[target] else "minor"
    if kind == "major" and database.engine == "postgres":
        ceiling = NO_MAJOR_UPGRADE_UP_TO.get(major_version(database.engine, database.engine_version))
        if ceiling and version_key(database.engine_version) <= version_key(ceiling):
            return GateResult(
                UPGRADE,
                FAIL,
                f"AWS does not support a major upgrade by blue/green from {current} ({ceiling} or lower)",
                fix=f"Upgrade {database.identifier} to a newer {major_version(database.engine, ceiling)}"
                " minor version first, then create the deployment.",
            )
    return GateResult(UPGRADE, PASS, f"{target} is a valid {kind} upgrade target of {current}")


def judge_backups(database: Database, setup: DatabaseSetup | Unread | None) -> GateResult:
    if isinstance(setup, Unread):
        return _unknown(BACKUPS, setup)
    if setup is None:
        return GateResult(BACKUPS, UNKNOWN, f"{database.identifier} not found")
    if setup.backup_retention > 0:
        return GateResult(BACKUPS, PASS, f"retention {setup.backup_retention} day(s)")
    return GateResult(
        BACKUPS,
        FAIL,
        f"automated backups are off on {database.identifier} (retention 0)",
        fix=f"`aws rds {_modify(database)} {database.identifier} --backup-retention-period 7 --apply-immediately`",
    )


def judge_in_sync(database: Database, setup: DatabaseSetup | Unread | None) -> GateResult:
    if isinstance(setup, Unread):
        return _unknown(IN_SYNC, setup)
    if setup is None or not setup.parameter_groups:
        return GateResult(IN_SYNC, UNKNOWN, f"AWS lists no parameter group for {database.identifier}")
    behind = [g for g in setup.parameter_groups if not g.in_sync]
    if not behind:
        return GateResult(IN_SYNC, PASS, ", ".join(sorted({g.name for g in setup.parameter_groups})) + ": in-sync")
    listed = "; ".join(f"{g.name} is {g.apply_status} on {g.holder}" for g in behind)
    holders = sorted({g.holder for g in behind})
    reboot = " && ".join(f"aws rds reboot-db-instance --db-instance-identifier {h}" for h in holders)
    return GateResult(
        IN_SYNC, FAIL, listed, fix=f"Reboot to apply the parameters (AWS refuses the creation otherwise): `{reboot}`"
    )


def _replication_parameter(request: CreateRequest) -> tuple[str, str] | None:
    """(parameter, what it must be) the replication needs in blue's (cluster) parameter group, if any."""
    engine = request.database.engine
    if engine in {"postgres", "aurora-postgresql"} and request.replication == "logical":
        return "rds.logical_replication", "1"
    if engine == "aurora-mysql":
        return "binlog_format", "on (ROW recommended)"
    return None


def replication_group(request: CreateRequest, setup: DatabaseSetup | Unread | None) -> str | None:
    """The parameter group whose value the replication gate reads: the cluster group (Aurora) or the DB group."""
    if isinstance(setup, Unread) or setup is None:
        return None
    if request.database.kind == "cluster":
        return setup.cluster_parameter_group
    return next((g.name for g in setup.parameter_groups), None)


def judge_replication(request: CreateRequest, group: str | None, value: str | Unread | None) -> GateResult:
    needed = _replication_parameter(request)
    if needed is None:
        how = (
            "physical replication (same major version)"
            if request.replication == "physical"
            else ("binlog replication (needs automated backups)")
        )
        return GateResult(REPLICATION, PASS, f"{how}: no replication parameter to set")
    parameter, wanted = needed
    if isinstance(value, Unread):
        return _unknown(REPLICATION, value)
    if group is None:
        return GateResult(REPLICATION, UNKNOWN, f"no parameter group found to read {parameter} from")
    on = value not in {None, "", "0", "OFF", "off"} if parameter == "binlog_format" else value == "1"
    reason = f"{parameter} = {value if value is not None else 'default'} in {group} ({request.replication} replication)"
    if on:
        return GateResult(REPLICATION, PASS, reason)
    cluster = request.database.kind == "cluster"
    modify = (
        "modify-db-cluster-parameter-group --db-cluster-parameter-group-name"
        if cluster
        else ("modify-db-parameter-group --db-parameter-group-name")
    )
    value_text = "1" if parameter.startswith("rds.") else "ROW"
    fix = (
        f"`aws rds {modify} {group} --parameters ParameterName={parameter},ParameterValue={value_text},"
        "ApplyMethod=pending-reboot`, then reboot" + (" the writer" if cluster else f" {request.database.identifier}")
    )
    if group.startswith("default."):
        fix = f"Default groups cannot be changed: associate a custom parameter group with {parameter} = {value_text}."
    return GateResult(REPLICATION, FAIL, f"{reason}: must be {wanted}", fix=fix)


def judge_target_group(
    request: CreateRequest, info: ParameterGroupInfo | Unread | None, family: str | Unread | None
) -> GateResult:
    name = request.parameter_group
    if not name:
        return GateResult(TARGET_GROUP, PASS, "none requested: green gets blue's parameter groups")
    kind = "DB cluster parameter group" if request.database.kind == "cluster" else "DB parameter group"
    if isinstance(info, Unread):
        return _unknown(TARGET_GROUP, info)
    if info is None:
        return GateResult(
            TARGET_GROUP,
            FAIL,
            f"{kind} {name} does not exist",
            fix=f"Create it (family {family if isinstance(family, str) else '?'}) or name another.",
        )
    if isinstance(family, Unread) or family is None:
        return GateResult(TARGET_GROUP, UNKNOWN, f"{kind} {name} ({info.family}) exists; green's family unknown")
    if info.family != family:
        return GateResult(
            TARGET_GROUP,
            FAIL,
            f"{kind} {name} is family {info.family}, green needs {family}",
            fix=f"Name a {kind} of family {family}.",
        )
    return GateResult(TARGET_GROUP, PASS, f"{kind} {name} exists, family {family}")


def judge_no_other(request: CreateRequest) -> GateResult:
    database = request.database
    active = [d for d in request.deployments if d.status not in ENDED]
    if not active:
        return GateResult(NO_OTHER, PASS, f"no blue/green deployment uses {database.identifier}")
    first = active[0]
    return GateResult(
        NO_OTHER,
        FAIL,
        f"{database.identifier} already has blue/green deployment {first.identifier} ({first.status})",
        fix=f"Switch it over (`switchover {database.identifier}`) or remove it (`rollback {database.identifier}`).",
    )


def judge_proxy_target(request: CreateRequest) -> GateResult:
    labels = ", ".join(r.label for r in request.registrations)
    if request.mode == "native" and not request.registrations:
        return GateResult(
            PROXY_TARGET,
            FAIL,
            f"--mode native, but {request.database.identifier} is not a target of"
            " any RDS Proxy (AWS requires it before the deployment is created)",
            fix="Register it with its proxy first, or use --mode auto.",
        )
    if request.strategy != "native":
        return GateResult(PROXY_TARGET, PASS, f"{request.strategy or 'no'} strategy: " + (labels or "no proxy"))
    engine = request.database.engine
    if engine not in NATIVE_PROXY_ENGINES:
        return GateResult(
            PROXY_TARGET,
            FAIL,
            f"AWS does not support RDS Proxy with blue/green for engine {engine} (native strategy)",
            fix="Use --mode workaround.",
        )
    return GateResult(PROXY_TARGET, PASS, f"already a target of {labels} (native strategy)")


def judge_global(request: CreateRequest, global_cluster: str | Unread | None) -> GateResult:
    if request.database.kind != "cluster":
        return GateResult(GLOBAL, PASS, "a DB instance")
    if isinstance(global_cluster, Unread):
        if not request.database.global_cluster:
            return _unknown(GLOBAL, global_cluster)
        global_cluster = request.database.global_cluster  # DescribeDBClusters' GlobalClusterIdentifier
    global_cluster = global_cluster or request.database.global_cluster
    if global_cluster is None:
        return GateResult(GLOBAL, PASS, f"{request.database.identifier} is in no Aurora Global Database")
    if request.strategy != "native":
        return GateResult(GLOBAL, PASS, f"in Aurora Global Database {global_cluster} ({request.strategy} strategy)")
    return GateResult(
        GLOBAL,
        FAIL,
        f"{request.database.identifier} is in Aurora Global Database {global_cluster}:"
        " AWS does not support RDS Proxy with blue/green there",
        fix="Use --mode workaround.",
    )


async def evaluate_prerequisites(gateway: DatabaseReads, request: CreateRequest) -> list[GateResult]:
    """Every prerequisite of creating the deployment, in a fixed order. Read-only; never raises for AWS."""
    database = request.database
    cluster = database.kind == "cluster"
    wanted_group = request.parameter_group

    async def targets() -> dict[str, bool] | Unread | None:
        if not request.engine_version:
            return {}
        return await gateway.valid_upgrade_targets(database.engine, database.engine_version)

    async def target_group() -> tuple[ParameterGroupInfo | Unread | None, str | Unread | None]:
        if not wanted_group:
            return None, None
        green_version = request.engine_version or database.engine_version
        return await asyncio.gather(
            gateway.parameter_group(wanted_group, cluster_group=cluster),
            gateway.parameter_group_family(database.engine, green_version),
        )

    setup, upgrade_targets, (info, family), global_cluster = await asyncio.gather(
        gateway.database_setup(database), targets(), target_group(), gateway.global_cluster_of(database)
    )
    needed = _replication_parameter(request)
    group = replication_group(request, setup)
    value: str | Unread | None = setup if isinstance(setup, Unread) else None
    if needed and group:
        value = await gateway.parameter_value(group, needed[0], cluster_group=cluster)
    return [
        judge_upgrade_target(request, upgrade_targets),
        judge_backups(database, setup),
        judge_in_sync(database, setup),
        judge_replication(request, group, value),
        judge_target_group(request, info, family),
        judge_no_other(request),
        judge_proxy_target(request),
        judge_global(request, global_cluster),
    ]
