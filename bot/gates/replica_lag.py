"""The replica-lag gate: which CloudWatch metric AWS documents for the engine and replication method, where it is
published, and whether its latest value is under the environment's `max_replica_lag`.

AWS, "Switching a blue/green deployment" (RDS User Guide, blue-green-deployments-switching), section "Monitoring
replica lag prior to switchover" ("make sure that replica lag is close to zero"):
- RDS for MySQL and MariaDB: `ReplicaLag` (seconds) in the green environment.
- RDS for PostgreSQL with physical replication: the read-replica monitoring page
  (USER_PostgreSQL.Replication.ReadReplicas.Monitor) -> `ReplicaLag` (seconds) on the replica, i.e. green.
- RDS for PostgreSQL with logical replication: `OldestReplicationSlotLag` (bytes of WAL) in the blue environment.
Which method (page "PostgreSQL replication methods for blue/green deployments"): logical for a major version
upgrade, physical for a minor upgrade or none. Aurora PostgreSQL always replicates logically (Aurora
"Limitations and considerations", Aurora PostgreSQL limitations), so `OldestReplicationSlotLag` on blue's writer
(inferred from the RDS rule: the Aurora page's own section could not be quoted). Aurora MySQL replicates by binlog:
`AuroraBinlogReplicaLag` (seconds) on green. Units: page "Amazon CloudWatch instance-level metrics for Amazon RDS".

AWS gives the logical lag in bytes only. The gate allows `max_replica_lag` seconds of WAL at `WAL_BYTES_PER_SECOND`
(30 MiB by default) and shows the bytes as read.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.aws.database_reads import Unread
from bot.aws.models import Database, major_version
from bot.gates.model import FAIL, PASS, UNKNOWN, GateResult

NAME = "replica lag"
WAL_BYTES_PER_SECOND = 1024 * 1024
SWITCHING_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html"


@dataclass(frozen=True, slots=True)
class LagSource:
    """Where the lag of one deployment is read."""

    metric: str
    unit: str  # "seconds" | "bytes"
    side: str  # "green" | "blue": whose instances publish it
    replication: str  # "physical" | "logical" (PostgreSQL) | "binlog" (MySQL, MariaDB)


def replication_method(engine: str, blue_version: str, green_version: str | None) -> str:
    """How AWS replicates blue to green for this engine and upgrade."""
    if engine == "aurora-postgresql":
        return "logical"
    if engine == "postgres":
        major_change = green_version is not None and major_version(engine, green_version) != major_version(
            engine, blue_version
        )
        return "logical" if major_change else "physical"
    return "binlog"  # RDS for MySQL and MariaDB, Aurora MySQL: green replicates blue's binary log


def lag_source(engine: str, blue_version: str, green_version: str | None) -> LagSource:
    method = replication_method(engine, blue_version, green_version)
    if method == "logical":
        return LagSource("OldestReplicationSlotLag", "bytes", "blue", method)
    if engine == "aurora-mysql":
        return LagSource("AuroraBinlogReplicaLag", "seconds", "green", method)
    return LagSource("ReplicaLag", "seconds", "green", method)


def publishers(source: LagSource, blue: Database, green: Database) -> list[str]:
    """The DB instances whose metric the gate reads: blue's primary (writer) or every green instance."""
    database = blue if source.side == "blue" else green
    if database.kind == "cluster":
        if source.side == "blue":
            return [database.writer] if database.writer else list(database.members[:1])
        return list(database.members)
    return [database.identifier]


def _shown(source: LagSource, value: float) -> str:
    if source.unit == "bytes":
        return f"{value / WAL_BYTES_PER_SECOND:.1f} MiB of WAL"
    return f"{value:.1f} s"


def judge_lag(source: LagSource, values: dict[str, float | None] | Unread, max_lag: float) -> GateResult:
    """Pass when every publisher's latest value is under the limit; a lag over it is a pending failure (it may
    catch up); no datapoint or no answer is unknown."""
    where = f"{source.metric} ({source.replication} replication, {source.side})"
    if isinstance(values, Unread):
        return GateResult(
            NAME,
            UNKNOWN,
            f"{where}: CloudWatch did not answer ({values.reason})",
            fix="Grant cloudwatch:GetMetricData to the bot (iam-policy.json) and check the region.",
        )
    missing = sorted(identifier for identifier, value in values.items() if value is None)
    if not values or missing:
        return GateResult(
            NAME,
            UNKNOWN,
            f"{where}: no datapoint in the last 5 minutes for {', '.join(missing) or '?'}",
            fix=f"Check the metric in CloudWatch ({SWITCHING_DOC}#blue-green-deployments-monitor-replica-lag).",
        )
    limit = max_lag * (WAL_BYTES_PER_SECOND if source.unit == "bytes" else 1)
    readings = {identifier: value for identifier, value in values.items() if value is not None}
    if source.metric != "OldestReplicationSlotLag" and any(value < 0 for value in readings.values()):
        stopped = ", ".join(sorted(i for i, v in readings.items() if v < 0))
        return GateResult(
            NAME,
            FAIL,
            f"{where} is -1 on {stopped}: replication is not running",
            fix="Check the deployment's replication in the RDS console; `rollback`, then `create` again.",
        )
    worst_id, worst = max(readings.items(), key=lambda item: item[1])
    limit_text = (
        f"{_shown(source, limit)} = max_replica_lag {max_lag:g} s" if source.unit == "bytes" else f"{max_lag:g} s"
    )
    shown = f"{where} on {worst_id}: {_shown(source, worst)} (max {limit_text})"
    if worst <= limit:
        return GateResult(NAME, PASS, shown)
    return GateResult(
        NAME,
        FAIL,
        shown,
        fix="Wait for green to catch up (long transactions or heavy writes on blue slow it down), or raise"
        " max_replica_lag for this environment.",
        pending=True,
    )
