"""The prerequisites of `create` against the sandbox AWS: each gate made to fail the way AWS shows it, with its
message and fix; a refused `create` changes nothing (the sandbox timeline shows no mutation) and records no run; the
CLI exits 2 with the table; `plan` on the sample fleet shows every prerequisite passing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import bot.cli
from bot.gates.model import FAIL, PASS, GateResult, GatesFailed
from bot.workflow.engine import Engine
from sandbox.aws import Sandbox
from storage import open_store
from tests.bot_fixtures import aws_mutations
from tests.engine_fixtures import engine_env, request

GATES = (
    "upgrade target",
    "automated backups",
    "parameter groups in sync",
    "replication settings",
    "target parameter group",
    "no other deployment",
    "proxy target",
    "not in a global database",
)


def last_seq(sandbox: Sandbox) -> int:
    entries = sandbox.control.timeline()
    return entries[-1]["seq"] if entries else 0


async def refused(engine: Engine, sandbox: Sandbox, kind: str, database: str, **params: Any) -> dict[str, GateResult]:
    """`plan` (kind "plan") or `start` of a create refused by its prerequisites: no AWS change, no run. Returns the
    gates by name."""
    mark = last_seq(sandbox)
    with pytest.raises(GatesFailed) as raised:
        if kind == "plan":
            await engine.plan(request("create", database, **params))
        else:
            await engine.start(request("create", database, **params))
    assert aws_mutations(sandbox.control.timeline(since=mark)) == []
    assert engine.runs() == []
    results = {result.name: result for result in raised.value.results}
    assert list(results) == list(GATES)
    failures = [name for name, result in results.items() if result.status == FAIL]
    assert failures and failures[0] in raised.value.message, raised.value.message
    return results


def instance(rds: Any, identifier: str) -> dict[str, Any]:
    return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


@pytest.fixture
def cli_env(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db_path = tmp_path / "cli.db"
    for name, value in engine_env(db_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return db_path


def test_plan_on_the_sample_fleet_shows_every_prerequisite_passing(
    cli_env: Path, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = bot.cli.main(["plan", "orders-pg", "--engine-version", "16.4"])

    out = capsys.readouterr().out
    assert code == 0, out
    rows = out.split("  prerequisites:\n", 1)[1].splitlines()[: len(GATES)]
    assert [row.strip().split(":", 1)[0] for row in rows] == [f"ok   {name}" for name in GATES], out
    assert "16.4 is a valid major upgrade target of postgres 15.7" in out
    assert "rds.logical_replication = 1" in out  # 15.7 -> 16.4 replicates logically
    assert aws_mutations(sandbox.control.timeline()) == []


def test_a_refused_create_exits_2_with_the_table_and_changes_nothing(
    cli_env: Path, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = bot.cli.main(["create", "orders-pg", "--engine-version", "14.12"])

    err = capsys.readouterr().err
    assert code == 2, err
    assert "refused: create orders-pg refused: prerequisite upgrade target failed" in err
    assert "14.12 is not a valid upgrade target of postgres 15.7 (valid: 15.8, 16.3, 16.4, 16.6, 17.2)" in err
    assert "`plan orders-pg --engine-version 17.2`" in err
    assert "FAIL upgrade target" in err and "ok   automated backups" in err
    assert aws_mutations(sandbox.control.timeline()) == []
    store = open_store(str(cli_env))
    try:
        assert store.runs.list(limit=5) == []
    finally:
        store.close()


async def test_automated_backups_off(engine: Engine, sandbox: Sandbox, rds: Any) -> None:
    rds.modify_db_instance(DBInstanceIdentifier="billing-mysql", BackupRetentionPeriod=0, ApplyImmediately=True)

    gates = await refused(engine, sandbox, "start", "billing-mysql")

    backups = gates["automated backups"]
    assert backups.status == FAIL and "automated backups are off on billing-mysql" in backups.reason
    assert backups.fix == (
        "`aws rds modify-db-instance --db-instance-identifier billing-mysql --backup-retention-period 7"
        " --apply-immediately`"
    )


async def test_parameter_group_pending_reboot(engine: Engine, sandbox: Sandbox) -> None:
    sandbox.control.set_parameter_apply_status("orders-pg", "pending-reboot")

    gates = await refused(engine, sandbox, "plan", "orders-pg")

    in_sync = gates["parameter groups in sync"]
    assert in_sync.status == FAIL and "is pending-reboot on orders-pg" in in_sync.reason
    assert "`aws rds reboot-db-instance --db-instance-identifier orders-pg`" in (in_sync.fix or "")


async def test_logical_replication_off_where_the_upgrade_needs_it(engine: Engine, sandbox: Sandbox, rds: Any) -> None:
    group = instance(rds, "orders-pg")["DBParameterGroups"][0]["DBParameterGroupName"]
    rds.modify_db_parameter_group(
        DBParameterGroupName=group,
        Parameters=[{"ParameterName": "rds.logical_replication", "ParameterValue": "0", "ApplyMethod": "immediate"}],
    )

    gates = await refused(engine, sandbox, "plan", "orders-pg", engine_version="16.4")

    replication = gates["replication settings"]
    assert replication.status == FAIL
    assert replication.reason == f"rds.logical_replication = 0 in {group} (logical replication): must be 1"
    assert f"--db-parameter-group-name {group} --parameters ParameterName=rds.logical_replication,ParameterValue=1" in (
        replication.fix or ""
    )
    # A minor upgrade replicates physically: the same setting is not needed.
    plan = await engine.plan(request("create", "orders-pg", engine_version="15.8"))
    gates_of_minor = {result.name: result for result in plan.gates}
    assert gates_of_minor["replication settings"].status == PASS
    assert "physical replication" in gates_of_minor["replication settings"].reason


async def test_target_parameter_group_missing_or_of_another_family(engine: Engine, sandbox: Sandbox, rds: Any) -> None:
    missing = await refused(engine, sandbox, "plan", "orders-pg", engine_version="16.4", parameter_group="nope")
    assert missing["target parameter group"].reason == "DB parameter group nope does not exist"
    assert "family postgres16" in (missing["target parameter group"].fix or "")

    rds.create_db_parameter_group(
        DBParameterGroupName="legacy-pg15-params", DBParameterGroupFamily="postgres15", Description="the old major's"
    )
    wrong = await refused(
        engine, sandbox, "start", "orders-pg", engine_version="16.4", parameter_group="legacy-pg15-params"
    )
    assert wrong["target parameter group"].status == FAIL
    assert (
        wrong["target parameter group"].reason
        == "DB parameter group legacy-pg15-params is family postgres15, green needs postgres16"
    )


async def test_another_deployment_already_uses_the_source(engine: Engine, sandbox: Sandbox, rds: Any) -> None:
    sandbox.control.config(proxy_mode="native")  # so that AWS accepts a deployment of a proxy target
    made = rds.create_blue_green_deployment(
        BlueGreenDeploymentName="by-hand", Source=instance(rds, "orders-pg")["DBInstanceArn"]
    )["BlueGreenDeployment"]

    gates = await refused(engine, sandbox, "start", "orders-pg", engine_version="16.4")

    other = gates["no other deployment"]
    assert other.status == FAIL
    assert f"orders-pg already has blue/green deployment {made['BlueGreenDeploymentIdentifier']}" in other.reason
    assert other.fix == "Switch it over (`switchover orders-pg`) or remove it (`rollback orders-pg`)."


async def test_native_strategy_needs_blue_behind_a_proxy(engine: Engine, sandbox: Sandbox, rds: Any) -> None:
    rds.deregister_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])

    gates = await refused(engine, sandbox, "plan", "orders-pg", mode="native")

    proxy = gates["proxy target"]
    assert proxy.status == FAIL and "is not a target of any RDS Proxy" in proxy.reason
    assert proxy.fix == "Register it with its proxy first, or use --mode auto."


async def test_native_strategy_refused_for_an_aurora_global_database_member(
    engine: Engine, sandbox: Sandbox, rds: Any
) -> None:
    arn = rds.describe_db_clusters(DBClusterIdentifier="ledger-aurora")["DBClusters"][0]["DBClusterArn"]
    rds.create_global_cluster(GlobalClusterIdentifier="ledger-global", SourceDBClusterIdentifier=arn)

    gates = await refused(engine, sandbox, "plan", "ledger-aurora", mode="native")

    member = gates["not in a global database"]
    assert member.status == FAIL and "is in Aurora Global Database ledger-global" in member.reason
    assert member.fix == "Use --mode workaround."
    # The auto strategy takes the workaround there: nothing to refuse.
    plan = await engine.plan(request("create", "ledger-aurora"))
    assert plan.strategy == "workaround"
    assert {result.name: result.status for result in plan.gates}["not in a global database"] == PASS
