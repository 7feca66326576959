"""`rehearse`: a disposable clone of blue, restored, then torn down, against the sandbox AWS over HTTP. The sandbox
timeline shows every mutation; none may name a production resource."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from bot.aws import mutation_guard
from bot.aws.gateway import AwsGateway
from bot.cli import build_parser
from bot.config import ConfigError, Settings, load_settings
from bot.errors import BadRequest
from bot.planning.rehearsal import clone_name
from bot.workflow.engine import Engine
from bot.workflow.events import Notice
from sandbox.waiting import async_wait_until
from tests.bot_fixtures import REPO
from tests.engine_fixtures import engine_env, request, sandbox_gateways
from tests.matrix_fixtures import bot_env
from tests.rehearsal_fixtures import changed, mutations, rehearsal_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return rehearsal_settings(tmp_path)


def test_rehearse_is_a_cli_run_command_with_the_create_options():
    args = build_parser().parse_args(["rehearse", "orders-pg", "--engine-version", "16.4", "--mode", "native"])

    assert (args.command, args.database, args.engine_version, args.mode) == ("rehearse", "orders-pg", "16.4", "native")


async def test_an_environment_without_rehearsals_refuses_and_says_how_to_allow_them(sandbox, tmp_path, store):
    plain = load_settings(engine_env(tmp_path / "other.db"))
    engine = Engine(store=store, settings=plain, gateways=sandbox_gateways(sandbox))
    try:
        with pytest.raises(BadRequest) as refused:
            await engine.start(request("rehearse", "orders-pg", engine_version="16.4"))
    finally:
        await engine.aclose()

    assert "does not allow rehearsals" in str(refused.value)
    assert "rehearsals = true" in (refused.value.fix or "")
    assert mutations(sandbox) == []


def ours(names: set[str], clone: str, deployment: tuple[str, str]) -> bool:
    """Every name is the clone's, one derived from it (`-old1`, green, a second proxy) or the run's deployment."""
    return all(n == clone or n.startswith(f"{clone}-") or n in deployment for n in names)


async def test_rehearse_orders_pg_runs_the_whole_cycle_on_a_clone_and_leaves_nothing_behind(engine, sandbox, rds, sink):
    run = await engine.start(request("rehearse", "orders-pg", engine_version="16.4"))
    clone = clone_name("orders-pg", run.id)
    locks = (engine.store.locks.holder("db:orders-pg"), engine.store.locks.holder("proxy:orders-proxy"))
    clone_lock = engine.store.locks.holder(f"db:{clone}")
    final = await engine.wait(run.id, 60)

    assert final.status == "succeeded", final.error
    assert locks == (None, None) and clone_lock == run.id  # the clone's lock, never production's
    # auto chose native, AWS refused it with a proxy attached, and the fallback kept the switchover and the teardown
    assert final.strategy == "workaround" and any("falling back" in n.text for n in sink.of(Notice))
    actions = [e["action"] for e in mutations(sandbox)]
    assert actions[:2] == ["RestoreDBInstanceToPointInTime", "CreateDBProxy"]
    assert {"CreateBlueGreenDeployment", "SwitchoverBlueGreenDeployment", "DeleteBlueGreenDeployment"} <= set(actions)
    assert actions.count("DeleteDBInstance") == 2 and "DeleteDBProxy" in actions
    deployment = (final.meta["deployment_id"], final.meta["deployment_name"])
    assert all(ours(changed(call), clone, deployment) for call in mutations(sandbox)), mutations(sandbox)
    assert mutations(sandbox)[0]["params"]["SourceDBInstanceIdentifier"] == "orders-pg"  # read, never changed
    restored = [c for s in engine.store.steps.list(run.id) for c in s.aws_calls if c["action"].startswith("Restore")]
    assert f"Key=bluegreen-bot:rehearsal,Value={run.id}" in restored[0]["command"]
    tag = {"Key": "bluegreen-bot:rehearsal", "Value": final.id}
    assert [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"] if tag in d["TagList"]] == []
    assert clone not in {p["DBProxyName"] for p in rds.describe_db_proxies()["DBProxies"]}
    assert rds.describe_blue_green_deployments()["BlueGreenDeployments"] == []
    blue = rds.describe_db_instances(DBInstanceIdentifier="orders-pg")["DBInstances"][0]
    assert blue["EngineVersion"] == "15.7" and blue["DBInstanceStatus"] == "available"
    report = final.meta["rehearsal_report"]
    for label in ("restore to available", "proxy available", "green AVAILABLE", "switchover", "without a target"):
        assert label in report, report
    assert any(report in n.text for n in sink.of(Notice))


async def test_a_failing_restore_reports_aws_reason_and_still_tears_the_clone_down(engine, sandbox, rds):
    reason = "the backup of orders-pg could not be read"
    sandbox.control.fail_next_restore(reason)

    run = await engine.start(request("rehearse", "orders-pg"))
    final = await engine.wait(run.id, 30)

    clone = clone_name("orders-pg", run.id)
    assert final.status == "failed"
    assert "restore-error" in (final.error or "") and reason in (final.error or "")
    steps = {s.name: s.status for s in engine.store.steps.list(run.id)}
    assert steps["wait_clone_available"] == "failed" and "done" in {
        s.status for s in engine.store.steps.list(run.id) if s.name == "teardown_rehearsal"
    }
    assert [e["action"] for e in mutations(sandbox)] == ["RestoreDBInstanceToPointInTime", "DeleteDBInstance"]
    assert [changed(call) for call in mutations(sandbox)] == [{clone}, {clone}]
    assert clone not in {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}


async def test_within_a_rehearsal_a_mutation_naming_production_is_refused_before_it_is_sent(sandbox):
    async with AwsGateway(region="us-east-1", endpoint_url=sandbox.endpoint) as gateway:
        blue = await gateway.instance("orders-pg")
        assert blue is not None
        with mutation_guard.only(frozenset({"orders-pg-rh-1a2b3c4d"})):
            with pytest.raises(mutation_guard.RehearsalOverreach, match="orders-pg"):
                await gateway.modify_engine_version(blue, "16.4", allow_major=True)
            with pytest.raises(mutation_guard.RehearsalOverreach, match="orders-pg"):
                await gateway.delete_cluster_member("orders-pg")

    assert mutations(sandbox) == []


async def test_a_failing_upgrade_task_reports_aws_reason_and_tears_everything_down(engine, sandbox, rds):
    reason = "the extension postgis 2.5 blocks the upgrade to 16.4"
    run = await engine.start(request("rehearse", "orders-pg", engine_version="16.4"))
    clone = clone_name("orders-pg", run.id)
    sandbox.control.fail_provisioning(clone, reason, task="DB_ENGINE_VERSION_UPGRADE")  # armed before it exists

    final = await engine.wait(run.id, 60)

    assert final.status == "failed"
    assert reason in (final.error or ""), final.error
    actions = [e["action"] for e in mutations(sandbox)]
    assert "SwitchoverBlueGreenDeployment" not in actions and "DeleteBlueGreenDeployment" in actions
    teardown = [s for s in engine.store.steps.list(run.id) if s.name == "teardown_rehearsal"]
    assert [s.status for s in teardown][-1] == "done"
    assert reason in final.meta["rehearsal_report"]
    tag = {"Key": "bluegreen-bot:rehearsal", "Value": run.id}
    assert [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"] if tag in d["TagList"]] == []
    assert not any(p["DBProxyName"].startswith(clone) for p in rds.describe_db_proxies()["DBProxies"])
    assert rds.describe_blue_green_deployments()["BlueGreenDeployments"] == []
    deployment = (final.meta["deployment_id"], final.meta["deployment_name"])
    assert all(ours(changed(call), clone, deployment) for call in mutations(sandbox))


async def test_rehearse_billing_mysql_copies_both_of_its_proxies(engine, sandbox, rds):
    final = await engine.wait((await engine.start(request("rehearse", "billing-mysql"))).id, 60)

    clone = clone_name("billing-mysql", final.id)
    assert final.status == "succeeded", final.error
    created = sorted(e["params"]["DBProxyName"] for e in mutations(sandbox) if e["action"] == "CreateDBProxy")
    assert created == [clone, f"{clone}-2"]
    assert sorted(e["params"]["DBProxyName"] for e in mutations(sandbox) if e["action"] == "DeleteDBProxy") == created
    deployment = (final.meta["deployment_id"], final.meta["deployment_name"])
    assert all(ours(changed(call), clone, deployment) for call in mutations(sandbox))
    assert not any(p["DBProxyName"].startswith(clone) for p in rds.describe_db_proxies()["DBProxies"])


async def test_a_cancelled_rehearsal_still_tears_down_what_it_created(engine, sandbox, rds):
    run = await engine.start(request("rehearse", "orders-pg", engine_version="16.4"))
    clone = clone_name("orders-pg", run.id)
    await async_wait_until(
        lambda: any(e["action"] == "CreateDBProxy" for e in mutations(sandbox)), 30, what="the rehearsal proxy created"
    )
    await engine.cancel(run.id, "U0ALICE")

    final = await engine.wait(run.id, 60)

    assert final.status == "cancelled", (final.status, final.error)
    assert [s.status for s in engine.store.steps.list(run.id) if s.name == "teardown_rehearsal"][-1] == "done"
    assert "DeleteDBProxy" in [e["action"] for e in mutations(sandbox)]
    assert not any(p["DBProxyName"].startswith(clone) for p in rds.describe_db_proxies()["DBProxies"])
    assert not any(d["DBInstanceIdentifier"].startswith(clone) for d in rds.describe_db_instances()["DBInstances"])


async def test_rehearse_ledger_aurora_restores_the_cluster_and_its_members_and_deletes_them(engine, sandbox, rds):
    final = await engine.wait((await engine.start(request("rehearse", "ledger-aurora"))).id, 60)

    clone = clone_name("ledger-aurora", final.id)
    assert final.status == "succeeded", final.error
    actions = [e["action"] for e in mutations(sandbox)]
    assert actions[0] == "RestoreDBClusterToPointInTime" and actions.count("CreateDBInstance") == 2
    assert "SwitchoverBlueGreenDeployment" in actions and "DeleteDBCluster" in actions
    deployment = (final.meta["deployment_id"], final.meta["deployment_name"])
    assert all(ours(changed(call), clone, deployment) for call in mutations(sandbox)), mutations(sandbox)
    assert not any(c["DBClusterIdentifier"].startswith(clone) for c in rds.describe_db_clusters()["DBClusters"])
    assert not any(d["DBInstanceIdentifier"].startswith(clone) for d in rds.describe_db_instances()["DBInstances"])
    assert not any(p["DBProxyName"].startswith(clone) for p in rds.describe_db_proxies()["DBProxies"])


async def test_python_m_bot_rehearse_runs_to_the_end_and_is_refused_where_rehearsals_are_off(sandbox, rds, tmp_path):
    command = [sys.executable, "-m", "bot", "rehearse", "orders-pg", "--engine-version", "16.4", "--yes"]

    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        env = bot_env(sandbox, str(tmp_path / "bluegreen.db"), **extra)
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)

    refused = await asyncio.to_thread(run)
    done = await asyncio.to_thread(run, BLUEGREEN_REHEARSALS="true")

    assert refused.returncode == 2 and "rehearsals = true" in refused.stderr, refused.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Rehearsal of orders-pg on a disposable clone" in done.stdout
    assert [e for e in mutations(sandbox) if e["action"] == "DeleteDBInstance"]
    assert not any("-rh-" in d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"])


def test_the_rehearsals_setting_is_a_strict_boolean_per_environment(tmp_path):
    def environment(value: str) -> Settings:
        config = tmp_path / "bluegreen.toml"
        config.write_text(f'[environments.lab]\noperators = ["U0ALICE"]\napprovers = ["U0BOB"]\nrehearsals = {value}\n')
        return load_settings({"BLUEGREEN_CONFIG": str(config), "BLUEGREEN_DB": str(tmp_path / "b.db")})

    assert environment("true").environment("lab").rehearsals is True
    assert load_settings(engine_env(tmp_path / "c.db")).environment(None).rehearsals is False
    with pytest.raises(ConfigError, match="rehearsals"):
        environment('"yes"')
