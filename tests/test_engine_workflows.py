"""The lifecycle workflows against the sandbox AWS over HTTP: strategies, instances and Aurora, several proxies,
compensation, locks, upgrade, cleanup, rollback and cancel."""

from __future__ import annotations

import pytest

from bot.errors import BadRequest
from bot.workflow.events import Notice, RunFinished
from sandbox.waiting import async_wait_until
from tests.engine_fixtures import (
    REQUESTER,
    calls,
    pending_request,
    request,
    run_to_end,
    targets,
)


def available_ids(rds, proxy: str) -> set[str]:
    return {t["RdsResourceId"] for t in targets(rds, proxy) if t["TargetHealth"]["State"] == "AVAILABLE"}


def green_of(rds, deployment_source: str) -> dict:
    found = rds.describe_blue_green_deployments(Filters=[{"Name": "source", "Values": [deployment_source]}])
    return found["BlueGreenDeployments"][0]


async def test_auto_falls_back_to_the_workaround_when_aws_refuses_the_proxy(engine, sandbox, rds, sink):
    final = await run_to_end(engine, request("create", "orders-pg", engine_version="16.4"))

    assert final.status == "succeeded", final.error
    assert final.strategy == "workaround"
    assert any("falling back" in n.text for n in sink.of(Notice))
    order = [e["action"] for e in sandbox.control.timeline() if e["kind"] == "call" and e["action"] in {
        "CreateBlueGreenDeployment", "DeregisterDBProxyTargets", "RegisterDBProxyTargets"}]  # fmt: skip
    assert order == [
        "CreateBlueGreenDeployment",  # refused: the source is a proxy target
        "DeregisterDBProxyTargets",
        "CreateBlueGreenDeployment",
        "RegisterDBProxyTargets",
    ]
    deployment = green_of(rds, final_arn := rds.describe_db_instances(DBInstanceIdentifier="orders-pg")[
        "DBInstances"][0]["DBInstanceArn"])  # fmt: skip
    assert deployment["Status"] == "AVAILABLE" and deployment["Source"] == final_arn
    assert available_ids(rds, "orders-proxy") == {"orders-pg"}
    window = final.summary["windows"]["orders-proxy"]
    assert 0 < window["overhead_seconds"] <= window["seconds"]


async def test_native_strategy_keeps_the_proxy_attached_through_create_and_switchover(engine, sandbox, rds):
    sandbox.control.config(proxy_mode="native")

    created = await run_to_end(engine, request("create", "orders-pg", engine_version="16.4"))
    switched = await run_to_end(engine, request("switchover", "orders-pg"))

    assert created.status == "succeeded", created.error
    assert created.strategy == "native"
    assert switched.status == "succeeded", switched.error
    assert switched.strategy == "native"
    assert calls(sandbox, "DeregisterDBProxyTargets") == []
    assert calls(sandbox, "RegisterDBProxyTargets") == []
    primary = rds.describe_db_instances(DBInstanceIdentifier="orders-pg")["DBInstances"][0]
    assert primary["EngineVersion"] == "16.4"
    assert available_ids(rds, "orders-proxy") == {"orders-pg"}


async def test_explicit_native_mode_fails_cleanly_where_aws_refuses_it(engine, sandbox, rds):
    final = await run_to_end(engine, request("create", "orders-pg", mode="native"))

    assert final.status == "failed"
    assert "workaround" in (final.error or "")
    assert calls(sandbox, "DeregisterDBProxyTargets") == []
    assert available_ids(rds, "orders-proxy") == {"orders-pg"}


async def test_workaround_switchover_behind_two_proxies(engine, sandbox, rds):
    created = await run_to_end(engine, request("create", "billing-mysql", mode="workaround", engine_version="8.4.3"))
    switched = await run_to_end(engine, request("switchover", "billing-mysql"))

    assert created.status == "succeeded", created.error
    assert switched.status == "succeeded", switched.error
    for proxy in ("billing-proxy", "billing-reporting-proxy"):
        assert available_ids(rds, proxy) == {"billing-mysql"}
        assert switched.summary["windows"][proxy]["seconds"] > 0
    assert len(calls(sandbox, "SwitchoverBlueGreenDeployment")) == 1
    new_primary = rds.describe_db_instances(DBInstanceIdentifier="billing-mysql")["DBInstances"][0]
    assert new_primary["EngineVersion"] == "8.4.3"
    old = rds.describe_db_instances(DBInstanceIdentifier="billing-mysql-old1")["DBInstances"][0]
    assert old["EngineVersion"] == "8.0.36"
    # Each proxy was deregistered before the switchover and registered after it completed.
    timeline = [e for e in sandbox.control.timeline() if e["kind"] == "call" and e.get("code") is None]
    switch_at = next(e["seq"] for e in timeline if e["action"] == "SwitchoverBlueGreenDeployment")
    deregs = [e for e in timeline if e["action"] == "DeregisterDBProxyTargets" and e["seq"] > created_last(timeline)]
    regs = [e for e in timeline if e["action"] == "RegisterDBProxyTargets" and e["seq"] > switch_at]
    assert len(deregs) == 2 and all(e["seq"] < switch_at for e in deregs)
    assert len(regs) == 2


def created_last(timeline: list[dict]) -> int:
    return max(e["seq"] for e in timeline if e["action"] == "CreateBlueGreenDeployment")


async def test_aurora_cluster_workaround_lifecycle(engine, sandbox, rds):
    created = await run_to_end(engine, request("create", "ledger-aurora", mode="workaround", engine_version="16.4"))
    switched = await run_to_end(engine, request("switchover", "ledger-aurora"))

    assert created.status == "succeeded", created.error
    assert switched.status == "succeeded", switched.error
    cluster = rds.describe_db_clusters(DBClusterIdentifier="ledger-aurora")["DBClusters"][0]
    assert cluster["EngineVersion"] == "16.4"
    entries = targets(rds, "ledger-proxy")
    tracked = [t for t in entries if t["Type"] == "TRACKED_CLUSTER"]
    members = [t for t in entries if t["Type"] == "RDS_INSTANCE"]
    assert [t["RdsResourceId"] for t in tracked] == ["ledger-aurora"]
    assert members and all(t["TargetHealth"]["State"] == "AVAILABLE" for t in members)
    assert rds.describe_db_clusters(DBClusterIdentifier="ledger-aurora-old1")["DBClusters"]


async def test_switchover_failure_is_compensated_at_once(engine, sandbox, rds, sink):
    await run_to_end(engine, request("create", "orders-pg", mode="workaround"))
    sandbox.control.fail_next_switchover("replica lag too high on green")

    final = await run_to_end(engine, request("switchover", "orders-pg"))

    assert final.status == "failed"
    assert "replica lag" in (final.error or "")
    assert available_ids(rds, "orders-proxy") == {"orders-pg"}
    blue = rds.describe_db_instances(DBInstanceIdentifier="orders-pg")["DBInstances"][0]
    assert blue["EngineVersion"] == "15.7"  # nothing was renamed
    compensation = [s for s in engine.store.steps.list(final.id) if s.title.startswith("Compensate")]
    assert len(compensation) == 1 and compensation[0].status == "done"
    assert any("again now" in n.text for n in sink.of(Notice))
    assert final.summary["windows"]["orders-proxy"]["seconds"] > 0


async def test_switchover_timeout_is_compensated(engine, sandbox, rds):
    await run_to_end(engine, request("create", "orders-pg", mode="workaround"))
    # The simulated switchover (60 s) outlasts the timeout (30 s); speed 100 makes that 0.3 s of real time.
    sandbox.control.config(speed=100, durations={"switchover": 60})

    final = await run_to_end(engine, request("switchover", "orders-pg", switchover_timeout=30))

    assert final.status == "failed"
    assert "timed out" in (final.error or "").lower()
    assert available_ids(rds, "orders-proxy") == {"orders-pg"}
    assert len(calls(sandbox, "SwitchoverBlueGreenDeployment")) == 1


async def test_a_second_run_on_the_same_database_is_refused_while_one_is_active(engine, sandbox):
    first = await engine.start(request("create", "orders-pg", mode="workaround"))
    with pytest.raises(BadRequest, match=first.id):
        await engine.start(request("create", "orders-pg", mode="workaround"))
    final = await engine.wait(first.id, 30)
    assert final.status == "succeeded"
    assert len(calls(sandbox, "CreateBlueGreenDeployment")) == 1


async def test_upgrade_green_then_switch_over(engine, sandbox, rds):
    await run_to_end(engine, request("create", "orders-pg", mode="workaround"))
    upgraded = await run_to_end(engine, request("upgrade", "orders-pg", engine_version="16.4"))

    assert upgraded.status == "succeeded", upgraded.error
    modify = calls(sandbox, "ModifyDBInstance")
    assert len(modify) == 1
    switched = await run_to_end(engine, request("switchover", "orders-pg", engine_version="16.4"))
    assert switched.status == "succeeded", switched.error
    assert rds.describe_db_instances(DBInstanceIdentifier="orders-pg")["DBInstances"][0]["EngineVersion"] == "16.4"


async def test_rollback_deletes_green_and_keeps_the_proxy_on_blue(engine, sandbox, rds):
    created = await run_to_end(engine, request("create", "orders-pg", mode="workaround"))
    green_arn = created.meta["green_arn"]
    final = await run_to_end(engine, request("rollback", "orders-pg"))

    assert final.status == "succeeded", final.error
    assert rds.describe_blue_green_deployments()["BlueGreenDeployments"] == []
    green_id = green_arn.rsplit(":", 1)[-1]
    assert green_id not in {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
    assert available_ids(rds, "orders-proxy") == {"orders-pg"}


async def test_cleanup_after_switchover_deletes_old_blue_behind_its_own_approval(engine, sandbox, rds):
    await run_to_end(engine, request("create", "orders-pg", mode="workaround"))
    await run_to_end(engine, request("switchover", "orders-pg"))
    final = await run_to_end(engine, request("cleanup", "orders-pg", delete_old=True))

    assert final.status == "succeeded", final.error
    deletes = calls(sandbox, "DeleteBlueGreenDeployment")
    assert len(deletes) == 1 and deletes[0]["params"].get("DeleteTarget") in (False, "false", None)
    names = {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
    assert "orders-pg" in names and "orders-pg-old1" not in names
    kinds = [a.kind for a in [engine.store.approvals.latest(final.id)] if a]
    assert kinds == ["delete_old"]


async def test_cancel_while_waiting_for_approval_changes_nothing(engine, sandbox, rds):
    await run_to_end(engine, request("create", "orders-pg", mode="workaround"))
    before = len(sandbox.control.timeline())
    run = await engine.start(request("switchover", "orders-pg"))
    await pending_request(engine.store, run.id)

    await engine.cancel(run.id, REQUESTER)
    final = await engine.wait(run.id, 10)

    assert final.status == "cancelled"
    mutations = [e for e in sandbox.control.timeline()[before:] if e["kind"] == "call" and not e["action"].startswith(
        ("Describe", "GetMetric", "List"))]  # fmt: skip
    assert mutations == []
    assert available_ids(rds, "orders-proxy") == {"orders-pg"}


async def test_run_finished_event_reports_each_proxy_window(engine, sandbox, sink):
    await run_to_end(engine, request("create", "orders-pg", mode="workaround"))
    switched = await run_to_end(engine, request("switchover", "orders-pg"))

    finished = [e for e in sink.of(RunFinished) if e.snapshot.run.id == switched.id]
    assert len(finished) == 1
    window = finished[0].windows["orders-proxy"]
    assert window["seconds"] >= window["aws_seconds"] > 0
    await async_wait_until(
        lambda: engine.store.audit.list(run_id=switched.id, action="run:succeeded"), 10, what="run:succeeded audited"
    )
