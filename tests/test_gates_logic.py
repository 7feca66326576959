"""The gates' pure decisions: which lag metric AWS documents per engine and replication method, and the verdicts
the sandbox cannot easily reach (a major upgrade from an unsupported PostgreSQL minor, ReplicaLag -1, no answer)."""

from __future__ import annotations

import pytest

from bot.aws.database_reads import Unread
from bot.aws.models import Database, Deployment, SwitchoverMember
from bot.gates.model import FAIL, PASS, UNKNOWN
from bot.gates.prerequisites import CreateRequest, judge_upgrade_target
from bot.gates.readiness import judge_members
from bot.gates.replica_lag import WAL_BYTES_PER_SECOND, judge_lag, lag_source, publishers


@pytest.mark.parametrize(
    ("engine", "blue", "green", "metric", "side", "replication"),
    [
        ("postgres", "15.7", "16.4", "OldestReplicationSlotLag", "blue", "logical"),
        ("postgres", "15.7", "15.8", "ReplicaLag", "green", "physical"),
        ("postgres", "15.7", None, "ReplicaLag", "green", "physical"),
        ("mysql", "8.0.36", "8.4.3", "ReplicaLag", "green", "binlog"),
        ("mariadb", "10.11.8", None, "ReplicaLag", "green", "binlog"),
        ("aurora-postgresql", "15.4", "15.4", "OldestReplicationSlotLag", "blue", "logical"),
        ("aurora-mysql", "8.0.mysql_aurora.3.05.2", None, "AuroraBinlogReplicaLag", "green", "binlog"),
    ],
)
def test_the_lag_metric_follows_the_engine_and_the_replication_method(
    engine: str, blue: str, green: str | None, metric: str, side: str, replication: str
) -> None:
    source = lag_source(engine, blue, green)
    assert (source.metric, source.side, source.replication) == (metric, side, replication)


def _db(identifier: str, kind: str = "instance", **extra: object) -> Database:
    arn_kind = "cluster" if kind == "cluster" else "db"
    return Database(identifier, kind, f"arn:aws:rds:us-east-1:123456789012:{arn_kind}:{identifier}",  # type: ignore[arg-type]
                    "aurora-postgresql" if kind == "cluster" else "postgres", "15.4", "available", **extra)  # fmt: skip


def test_blue_side_metrics_are_read_on_blues_writer_and_green_side_on_every_green_instance() -> None:
    blue = _db("ledger-aurora", "cluster", members=("ledger-aurora-1", "ledger-aurora-2"), writer="ledger-aurora-1")
    green = _db("ledger-aurora-green-abc", "cluster", members=("g-1", "g-2"), writer="g-1")
    assert publishers(lag_source("aurora-postgresql", "15.4", None), blue, green) == ["ledger-aurora-1"]
    assert publishers(lag_source("aurora-mysql", "8.0", None), blue, green) == ["g-1", "g-2"]


def test_a_logical_lag_in_bytes_is_held_against_max_replica_lag_seconds_of_wal() -> None:
    source = lag_source("postgres", "15.7", "16.4")
    under = judge_lag(source, {"orders-pg": 29 * WAL_BYTES_PER_SECOND}, 30)
    over = judge_lag(source, {"orders-pg": 31 * WAL_BYTES_PER_SECOND}, 30)
    assert under.status == PASS and "29.0 MiB of WAL" in under.reason and "max_replica_lag 30 s" in under.reason
    assert over.status == FAIL and over.pending and "31.0 MiB" in over.reason and "max_replica_lag" in (over.fix or "")


def test_replica_lag_minus_one_means_replication_stopped_not_a_lag_to_wait_for() -> None:
    result = judge_lag(lag_source("mysql", "8.0.36", None), {"billing-mysql-green-x": -1.0}, 30)
    assert result.status == FAIL and not result.pending
    assert "replication is not running" in result.reason and "rollback" in (result.fix or "")


def test_no_datapoint_or_no_answer_is_unknown_never_a_pass() -> None:
    source = lag_source("mysql", "8.0.36", None)
    silent = judge_lag(source, {"g": None}, 30)
    refused = judge_lag(source, Unread("GetMetricData: AccessDenied (not permitted)"), 30)
    assert (silent.status, refused.status) == (UNKNOWN, UNKNOWN)
    assert "no datapoint" in silent.reason and "AccessDenied" in refused.reason
    assert "cloudwatch:GetMetricData" in (refused.fix or "")


def test_aws_refuses_a_major_upgrade_by_blue_green_from_an_old_postgresql_minor() -> None:
    database = Database("old-pg", "instance", "arn:aws:rds:us-east-1:1:db:old-pg", "postgres", "15.3", "available")
    request = CreateRequest(database, "16.4", None, "direct", "auto", (), ())
    result = judge_upgrade_target(request, {"16.4": True, "15.7": False})
    assert result.status == FAIL and "15.3 or lower" in result.reason
    assert "newer 15 minor version first" in (result.fix or "")
    newer = CreateRequest(database, "15.7", None, "direct", "auto", (), ())
    assert judge_upgrade_target(newer, {"16.4": True, "15.7": False}).status == PASS


def test_a_member_not_available_fails_the_members_gate() -> None:
    # The sandbox moves every member with its deployment; AWS reports members one by one (MISSING_TARGET, ...).
    members = (
        SwitchoverMember("arn:aws:rds:us-east-1:1:db:orders-pg", "arn:aws:rds:us-east-1:1:db:orders-pg-green-a",
                         "AVAILABLE"),
        SwitchoverMember("arn:aws:rds:us-east-1:1:db:orders-replica", "arn:aws:rds:us-east-1:1:db:orders-replica-g",
                         "MISSING_TARGET"),
    )  # fmt: skip
    deployment = Deployment("bgd-1", "bg", "arn:src", "arn:tgt", "AVAILABLE", members=members)
    result = judge_members(deployment)
    assert result.status == FAIL and not result.pending
    assert result.reason == "not AVAILABLE: orders-replica-g MISSING_TARGET"
    assert judge_members(Deployment("bgd-1", "bg", "arn:src", "arn:tgt", "AVAILABLE", members=members[:1])).passed
