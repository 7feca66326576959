"""Replication from blue to green: its method, the replica lag published to CloudWatch, degraded replication and
INVALID_CONFIGURATION, as AWS documents them.

Method (RDS User Guide, "PostgreSQL replication methods for blue/green deployments"; Aurora User Guide, "Creating a
blue/green deployment"): RDS for PostgreSQL uses logical replication when the deployment upgrades the major version
and physical replication otherwise; Aurora PostgreSQL always logical; MySQL, MariaDB and Aurora MySQL binlog.

Lag metric ("Switching a blue/green deployment", section "Monitoring replica lag prior to switchover"; Aurora's
"Verifying CloudWatch metrics before switchover"), namespace AWS/RDS, dimension DBInstanceIdentifier:
- binlog (RDS) and physical: `ReplicaLag` (Seconds) on every green instance;
- logical: `OldestReplicationSlotLag` (Bytes) on blue's primary / writer, "in the blue environment";
- Aurora MySQL: `AuroraBinlogReplicaLag` (Seconds) on every green instance.
Bytes are the lag in seconds times WAL_BYTES_PER_SECOND, the WAL rate the sandbox assumes.

Degraded replication ("Switching a blue/green deployment", "Unsupported PostgreSQL changes"; "Monitoring read
replication"): PostgreSQL only. AWS sets the replication state to `Replication degraded` and switchover is not
available; the deployment keeps its Status, StatusDetails says `Replication degraded: <reason>` and the green
primary's StatusInfos says `replication degraded` (StatusType `read replication`, Normal false).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.core.utils import utcnow
from moto.rds.models import DBCluster, DBInstance

from sandbox.aws.proxy_targets import identifier_of
from sandbox.aws.upgrades import is_major_upgrade

if TYPE_CHECKING:
    from sandbox.aws.blue_green import SandboxBlueGreenDeployment
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

NAMESPACE = "AWS/RDS"
DEFAULT_LAG = 0.5
WAL_BYTES_PER_SECOND = 1_048_576
LAG_HISTORY = 2.0  # seconds of a lag series kept in CloudWatch (see publish_replica_lag)
PUBLISHING_STATES = ("AVAILABLE", "SWITCHOVER_IN_PROGRESS", "SWITCHOVER_FAILED")
DEGRADABLE_STATES = ("PROVISIONING", "AVAILABLE", "SWITCHOVER_FAILED")
POSTGRES_ENGINES = ("postgres", "aurora-postgresql")
DEFAULT_DEGRADE_REASON = "a DDL change on blue, which logical replication does not replicate"
INVALID_DETAILS = (
    "Invalid configuration: a green database was promoted outside the blue/green deployment, so replication "
    "from blue stopped"
)


@dataclass
class Replication:
    method: str  # physical | logical | binlog
    engine: str
    lag: float | None = None  # seconds; None until the deployment is AVAILABLE (or a test sets it)
    degraded: str | None = None
    broken: bool = False  # INVALID_CONFIGURATION: green promoted, nothing replicates any more


# SwitchoverDetail.Status in the RDS API reference.
MEMBER_STATES = (
    "PROVISIONING",
    "AVAILABLE",
    "SWITCHOVER_IN_PROGRESS",
    "SWITCHOVER_COMPLETED",
    "INVALID_CONFIGURATION",
    "SWITCHOVER_FAILED",
    "MISSING_SOURCE",
    "MISSING_TARGET",
)


def replication_method(source: DBInstance | DBCluster, target_version: str | None) -> str:
    engine = str(source.engine)
    if engine == "aurora-postgresql":
        return "logical"
    if engine == "postgres":
        major = target_version is not None and is_major_upgrade(engine, str(source.engine_version), target_version)
        return "logical" if major else "physical"
    return "binlog"


def _replicating(status: str, message: str | None = None) -> list[dict[str, Any]]:
    info: dict[str, Any] = {"StatusType": "read replication", "Normal": status == "replicating", "Status": status}
    if message:
        info["Message"] = message
    return [info]


class ReplicationMixin:
    """Lag, degradation and invalid configuration of deployments; mixed into SandboxRDSBackend."""

    def active_deployment_for(self: SandboxRDSBackend, source: str) -> SandboxBlueGreenDeployment:
        """The deployment whose blue database (instance or cluster) is now named `source`, not yet switched over."""
        for deployment in self.deployments():
            if deployment.status in ("SWITCHOVER_COMPLETED", "DELETING"):
                continue
            if identifier_of(deployment.pairs[0].blue) == source:
                return deployment
        raise ValueError(
            f"no active blue/green deployment has {source!r} as its blue database; create one first "
            "(source is the BLUE identifier, e.g. orders-pg or ledger-aurora)"
        )

    def set_member_status(self: SandboxRDSBackend, source: str, member: str, status: str) -> dict[str, Any]:
        """One SwitchoverDetails member's status, as AWS lists it (e.g. MISSING_TARGET after a green member
        instance went away), until the deployment's next transition."""
        if status not in MEMBER_STATES:
            raise ValueError(f"status must be one of {', '.join(MEMBER_STATES)} (AWS's SwitchoverDetail Status)")
        deployment = self.active_deployment_for(source)
        pair = next((p for p in deployment.pairs if identifier_of(p.blue) == member), None)
        if pair is None:
            members = ", ".join(identifier_of(p.blue) for p in deployment.pairs)
            raise ValueError(f"{member!r} is not a blue member of the deployment of {source} ({members})")
        pair.status = status
        return {"deployment": deployment.blue_green_deployment_identifier, "member": member, "status": status}

    def start_replication(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment, target: str | None) -> None:
        source = deployment.pairs[0].blue
        deployment.replication = Replication(replication_method(source, target), str(source.engine))

    def on_deployment_available(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment) -> None:
        replication = deployment.replication
        if replication.lag is None:
            replication.lag = DEFAULT_LAG
        if replication.degraded is None and not replication.broken:
            self._green_primary(deployment).status_infos = _replicating("replicating")
        self.emit_deployment_event(deployment, "RDS-EVENT-0244")
        self.publish_replica_lag()

    def _green_primary(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment) -> DBInstance:
        green = deployment.pairs[0].green
        if isinstance(green, DBCluster):
            return next(m for m in green.members if m.is_cluster_writer)
        return green

    def lag_metrics(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment) -> list[dict[str, Any]]:
        """The datapoints AWS would publish now for the deployment's replica lag (empty when none is)."""
        replication = deployment.replication
        if replication.lag is None or replication.broken or deployment.status not in PUBLISHING_STATES:
            return []
        seconds = float(replication.lag)
        if replication.method == "logical":
            blue = deployment.pairs[0].blue
            writer = next(m for m in blue.members if m.is_cluster_writer) if isinstance(blue, DBCluster) else blue
            return [_datum("OldestReplicationSlotLag", "Bytes", writer, seconds * WAL_BYTES_PER_SECOND)]
        metric = "AuroraBinlogReplicaLag" if replication.engine == "aurora-mysql" else "ReplicaLag"
        greens = [pair.green for pair in deployment.pairs if isinstance(pair.green, DBInstance)]
        return [_datum(metric, "Seconds", green, seconds) for green in greens]

    def publish_replica_lag(self: SandboxRDSBackend) -> None:
        """One fresh datapoint per lag metric of every deployment still replicating (the ticker calls this).

        RDS publishes these at standard resolution, one datapoint a minute, and GetMetricData cannot ask for less
        than a 60 s period: a reader sees the minute's value. The sandbox compresses that minute: it keeps only the
        datapoints of the last LAG_HISTORY seconds of each series, so a 60 s Maximum is the lag as last set (moto
        leaves out a datapoint of the current second, hence the one before it is kept too)."""
        timestamp = utcnow()
        data = [
            {**d, "Timestamp": timestamp} for deployment in self.deployments() for d in self.lag_metrics(deployment)
        ]
        if data:
            cloudwatch = cloudwatch_backends[self.account_id][self.region_name]
            series = {(d["MetricName"], d["Dimensions"][0]["Value"]) for d in data}
            cloudwatch.metric_data = [
                m
                for m in cloudwatch.metric_data
                if m.namespace != NAMESPACE
                or (m.name, m.dimensions[0].value if m.dimensions else None) not in series
                or (timestamp - m.timestamp).total_seconds() <= LAG_HISTORY
            ]
            cloudwatch.put_metric_data(NAMESPACE, data)

    def set_replica_lag(self: SandboxRDSBackend, source: str, seconds: float) -> dict[str, Any]:
        lag = float(seconds)
        if lag < 0:
            raise ValueError("seconds must not be negative")
        deployment = self.active_deployment_for(source)
        deployment.replication.lag = lag
        self.sandbox.transition(f"{deployment.timeline_name}/replica-lag", f"{lag:g} s")
        self.publish_replica_lag()
        return {
            "deployment": deployment.blue_green_deployment_identifier,
            "method": deployment.replication.method,
            "seconds": lag,
            "published": [
                {"metric": d["MetricName"], "unit": d["Unit"], "dimensions": d["Dimensions"], "value": d["Value"]}
                for d in self.lag_metrics(deployment)
            ],
        }

    def lag_guardrail(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment, timeout: int) -> str | None:
        """AWS's replication-lag guardrail: green must be able to catch up within the switchover timeout."""
        lag = deployment.replication.lag or 0.0
        if lag > timeout:
            return f"the replica lag of green ({lag:g} s) is more than the switchover timeout ({timeout} s) allows"
        return None

    def degrade_replication(self: SandboxRDSBackend, source: str, reason: str) -> dict[str, Any]:
        deployment = self.active_deployment_for(source)
        replication = deployment.replication
        if replication.engine not in POSTGRES_ENGINES:
            raise ValueError(
                f"{source} runs {replication.engine}: AWS reports degraded replication only for PostgreSQL "
                "(DDL or large-object changes under logical replication); use postgres or aurora-postgresql"
            )
        if deployment.status not in DEGRADABLE_STATES:
            raise ValueError(
                f"the deployment is {deployment.status}; replication can degrade only while {DEGRADABLE_STATES}"
            )
        replication.degraded = reason
        deployment.status_details = f"Replication degraded: {reason}"
        self._green_primary(deployment).status_infos = _replicating("replication degraded", reason)
        self.sandbox.transition(f"{deployment.timeline_name}/replication", "REPLICATION_DEGRADED")
        deployment_id = deployment.blue_green_deployment_identifier
        self.emit_deployment_event(
            deployment,
            "RDS-EVENT-0409",
            message=(
                f"Replication degraded for blue/green deployment {deployment_id}: {reason}. Switchover isn't "
                "available for this blue/green deployment. Delete it with its green databases and create it again."
            ),
        )
        return {
            "deployment": deployment_id,
            "status": deployment.status,
            "status_details": deployment.status_details,
        }

    def invalidate_configuration(self: SandboxRDSBackend, source: str) -> dict[str, Any]:
        deployment = self.active_deployment_for(source)
        if deployment.status not in DEGRADABLE_STATES:
            raise ValueError(
                f"the deployment is {deployment.status}; it can become invalid only while {DEGRADABLE_STATES}"
            )
        deployment.replication.broken = True
        self._green_primary(deployment).status_infos = None
        self._set_deployment_status(deployment, "INVALID_CONFIGURATION", INVALID_DETAILS)
        return {
            "deployment": deployment.blue_green_deployment_identifier,
            "status": deployment.status,
            "status_details": deployment.status_details,
        }


def _datum(metric: str, unit: str, instance: DBInstance, value: float) -> dict[str, Any]:
    return {
        "MetricName": metric,
        "Unit": unit,
        "Value": value,
        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance.db_instance_identifier}],
    }
