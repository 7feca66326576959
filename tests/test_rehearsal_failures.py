"""A rehearsal that fails, against the sandbox AWS over HTTP: AWS's reason reaches the run's error and its report, the
teardown still deletes everything the rehearsal created (nothing tagged for it remains), and no production resource
is ever changed (the sandbox timeline shows every call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.aws.gateway import AwsGateway
from bot.config import Settings
from bot.planning.rehearsal import clone_name
from bot.workflow.rehearsal_sweep import sweep_rehearsals
from tests.engine_fixtures import request
from tests.rehearsal_fixtures import REHEARSAL_TAG, changed, mutations, rehearsal_settings

TAG = "bluegreen-bot:rehearsal"
UPGRADE_TASK = "DB_ENGINE_VERSION_UPGRADE"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return rehearsal_settings(tmp_path)


def only_the_rehearsals(sandbox: Any, clone: str, meta: dict[str, Any]) -> None:
    own = {meta.get("deployment_id"), meta.get("deployment_name")}
    for call in mutations(sandbox):
        assert all(n == clone or n.startswith(f"{clone}-") or n in own for n in changed(call)), call


def tagged_for(rds: Any, run_id: str) -> list[str]:
    """Everything still tagged for this rehearsal, and any deployment left (a rehearsal's deployment is its only)."""
    tag = {"Key": REHEARSAL_TAG, "Value": run_id}
    left = [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"] if tag in d["TagList"]]
    left += [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"] if tag in c["TagList"]]
    for proxy in rds.describe_db_proxies()["DBProxies"]:
        if tag in rds.list_tags_for_resource(ResourceName=proxy["DBProxyArn"])["TagList"]:
            left.append(proxy["DBProxyName"])
    left += [d["BlueGreenDeploymentIdentifier"] for d in rds.describe_blue_green_deployments()["BlueGreenDeployments"]]
    return left


def torn_down(engine: Any, run_id: str) -> bool:
    teardown = [s.status for s in engine.store.steps.list(run_id) if s.name == "teardown_rehearsal"]
    return bool(teardown) and teardown[-1] == "done"


async def test_an_aurora_upgrade_task_failing_names_the_task_and_aws_reason_and_deletes_the_clone_cluster(
    engine, sandbox, rds
):
    reason = "the extension pg_partman 4.5 is not supported by PostgreSQL 16"
    run = await engine.start(request("rehearse", "ledger-aurora", engine_version="16.4"))
    clone = clone_name("ledger-aurora", run.id)
    sandbox.control.fail_provisioning(clone, reason, task=UPGRADE_TASK)  # armed for the clone's deployment

    final = await engine.wait(run.id, 60)

    assert final.status == "failed", (final.status, final.error)
    assert UPGRADE_TASK in (final.error or "") and reason in (final.error or ""), final.error
    report = final.meta["rehearsal_report"]
    assert UPGRADE_TASK in report and reason in report, report
    assert torn_down(engine, run.id)
    actions = [e["action"] for e in mutations(sandbox)]
    assert "SwitchoverBlueGreenDeployment" not in actions
    assert {"DeleteBlueGreenDeployment", "DeleteDBCluster", "DeleteDBProxy"} <= set(actions), actions
    assert tagged_for(rds, run.id) == []
    only_the_rehearsals(sandbox, clone, final.meta)


async def test_a_clone_proxy_that_fails_to_create_fails_the_rehearsal_with_aws_reason_and_tears_down(
    engine, sandbox, rds
):
    sandbox.control.fail_next_proxy_creation("no free IP addresses in the proxy's subnets")

    run = await engine.start(request("rehearse", "orders-pg", engine_version="16.4"))
    final = await engine.wait(run.id, 60)

    clone = clone_name("orders-pg", run.id)
    assert final.status == "failed", (final.status, final.error)
    error = final.error or ""
    assert f"proxy {clone}" in error and "incompatible-network" in error, error
    assert "aren't enough IP addresses available in your subnets" in error, error  # AWS's RDS-EVENT-0243
    assert "incompatible-network" in final.meta["rehearsal_report"]
    assert torn_down(engine, run.id)
    assert [e["action"] for e in mutations(sandbox)] == [
        "RestoreDBInstanceToPointInTime", "CreateDBProxy", "DeleteDBProxy", "DeleteDBInstance"
    ]  # fmt: skip
    assert tagged_for(rds, run.id) == []
    only_the_rehearsals(sandbox, clone, final.meta)


async def test_a_switchover_failing_while_the_clone_proxy_is_detached_still_tears_everything_down(engine, sandbox, rds):
    """The workaround detaches the clone from its own proxy around the switchover; AWS rolls the switchover back.
    The teardown deletes everything; that proxy's window may stay open (the proxy is gone), production's is never
    touched."""
    reason = "long-running write transactions on the blue database"
    sandbox.control.fail_next_switchover(reason)
    production = rds.describe_db_proxy_targets(DBProxyName="orders-proxy")["Targets"]

    run = await engine.start(request("rehearse", "orders-pg", mode="workaround"))
    final = await engine.wait(run.id, 60)

    clone = clone_name("orders-pg", run.id)
    assert final.status == "failed", (final.status, final.error)
    assert reason in (final.error or ""), final.error
    steps = [(s.name, s.status) for s in engine.store.steps.list(run.id)]
    assert ("switchover", "failed") in steps and steps[-1] == ("teardown_rehearsal", "done"), steps
    after = steps[[name for name, _ in steps].index("switchover") + 1]
    assert after == ("reattach", "skipped"), steps  # the failure came inside the clone proxy's window
    assert tagged_for(rds, run.id) == []
    proxy_calls = [e for e in mutations(sandbox) if "ProxyTargets" in e["action"] or "DBProxy" in e["action"]]
    assert {e["params"]["DBProxyName"] for e in proxy_calls} == {clone}
    assert rds.describe_db_proxy_targets(DBProxyName="orders-proxy")["Targets"] == production
    only_the_rehearsals(sandbox, clone, final.meta)


async def test_a_teardown_that_fails_after_a_detached_window_ends_the_run_and_the_sweep_deletes_the_rest(
    engine, sandbox, rds
):
    """The switchover fails inside the clone proxy's window, then AWS refuses the teardown's deletion of the clone.
    The run ends (it does not try to give the deleted proxy its target back), naming both failures and the sweep;
    the sweep deletes what is left."""
    sandbox.control.fail_next_switchover("long-running write transactions on the blue database")
    sandbox.control.inject_fault("DeleteDBInstance", "InvalidDBInstanceState")

    run = await engine.start(request("rehearse", "orders-pg", mode="workaround"))
    final = await engine.wait(run.id, 30)

    clone = clone_name("orders-pg", run.id)
    assert final.status == "failed", (final.status, final.error)
    error = final.error or ""
    assert "long-running write transactions" in error and "InvalidDBInstanceState" in error, error
    assert "python -m bot cleanup --rehearsals" in error, error
    actions = [e["action"] for e in mutations(sandbox)]
    after_switchover = actions[actions.index("SwitchoverBlueGreenDeployment") :]
    assert "RegisterDBProxyTargets" not in after_switchover, after_switchover  # no target given to a deleted proxy
    assert tagged_for(rds, run.id) != []

    async with AwsGateway(region="us-east-1", endpoint_url=sandbox.endpoint) as gateway:
        swept = await sweep_rehearsals(gateway, engine.store, actor="U0ALICE")

    assert swept.ok, [o.line() for o in swept.outcomes]
    assert tagged_for(rds, run.id) == []
    only_the_rehearsals(sandbox, clone, final.meta)
