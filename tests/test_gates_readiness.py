"""Readiness against the sandbox AWS: each gate failing before the approval request with its message and fix; the
replica lag rising after the approval (the bot waits without detaching, then carries on, or fails after `lag_wait`
with the proxy never detached); no readiness call inside the detached window; the table in the approval request."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.config import load_settings
from bot.workflow.engine import Engine
from bot.workflow.events import ApprovalRequested, Notice
from sandbox.aws import Sandbox
from sandbox.waiting import async_wait_until
from storage import open_store
from tests.engine_fixtures import (
    APPROVER,
    RecordingSink,
    engine_env,
    pending_request,
    request,
    run_to_end,
    sandbox_gateways,
    targets,
)
from tests.gates_fixtures import green_of, lag_shows

# Calls that read readiness (or anything else about the database): none may fall inside the detached window.
READINESS_CALLS = {
    "DescribeBlueGreenDeployments",
    "GetMetricData",
    "DescribeDBInstances",
    "DescribeDBClusters",
    "DescribePendingMaintenanceActions",
    "DescribeDBEngineVersions",
    "DescribeDBParameters",
}


@contextlib.asynccontextmanager
async def engine_with(sandbox: Sandbox, tmp_path: Path, **settings: str) -> AsyncIterator[tuple[Engine, RecordingSink]]:
    """The real engine on the sandbox, with the environment settings given (BLUEGREEN_... names)."""
    loaded = load_settings(engine_env(tmp_path / "gates.db", **settings))
    store = open_store(loaded.db_path)
    sink = RecordingSink()
    engine = Engine(store=store, settings=loaded, sinks=[sink], gateways=sandbox_gateways(sandbox))
    try:
        yield engine, sink
    finally:
        await engine.aclose()
        store.close()


async def created(engine: Engine, database: str = "orders-pg", **params: Any) -> None:
    run = await run_to_end(engine, request("create", database, **params))
    assert run.status == "succeeded", run.error


async def refused_before_approval(engine: Engine, sandbox: Sandbox) -> Any:
    """A switchover whose preflight fails: no approval request, nothing detached. Returns the ended run."""
    mark = sandbox.control.timeline()[-1]["seq"]
    run = await run_to_end(engine, request("switchover", "orders-pg"), approver=None)
    assert run.status == "failed"
    assert engine.store.approvals.latest(run.id) is None
    assert calls_since(sandbox, mark, "DeregisterDBProxyTargets") == []
    return run


def calls_since(sandbox: Sandbox, mark: int, action: str) -> list[dict[str, Any]]:
    return [e for e in sandbox.control.timeline(since=mark) if e["kind"] == "call" and e["action"] == action]


def step_lines(engine: Engine, run_id: str, kind: str) -> str:
    return str(next(s.observed for s in engine.store.steps.list(run_id) if s.name == kind))


async def test_green_in_storage_optimisation_fails_the_preflight_with_its_progress(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    async with engine_with(sandbox, tmp_path) as (engine, _):
        await created(engine)
        sandbox.control.set_green_status("orders-pg", "storage-optimization", progress=34)

        run = await refused_before_approval(engine, sandbox)

    assert "green instances: " in run.error and "is storage-optimization (34%)" in run.error
    assert "Wait for the storage work to finish" in run.error


async def test_a_switchover_member_not_available_fails_the_preflight(sandbox: Sandbox, tmp_path: Path) -> None:
    async with engine_with(sandbox, tmp_path) as (engine, _):
        await created(engine)
        sandbox.control.set_member_status("orders-pg", "orders-pg", "MISSING_TARGET")

        run = await refused_before_approval(engine, sandbox)

    assert "switchover members: not AVAILABLE: " in run.error and "MISSING_TARGET" in run.error, run.error
    assert "Wait until every member is AVAILABLE" in run.error


async def test_pending_maintenance_on_green_fails_the_preflight(sandbox: Sandbox, tmp_path: Path, rds: Any) -> None:
    async with engine_with(sandbox, tmp_path) as (engine, _):
        await created(engine)
        green = green_of(rds, "orders-pg")
        sandbox.control.add_pending_maintenance(green, "system-update")

        run = await refused_before_approval(engine, sandbox)

    assert f"pending maintenance: pending on green: system-update on {green}" in run.error
    assert "aws rds apply-pending-maintenance-action --resource-identifier arn:aws:rds:" in run.error
    assert "--apply-action system-update --opt-in-type immediate" in run.error


async def test_a_deployment_that_breaks_while_the_bot_waits_out_the_lag_fails_before_anything_is_detached(
    sandbox: Sandbox, tmp_path: Path, rds: Any, aws_client: Any
) -> None:
    async with engine_with(sandbox, tmp_path, BLUEGREEN_MAX_REPLICA_LAG="5", BLUEGREEN_LAG_WAIT="60") as (
        engine,
        sink,
    ):
        await created(engine)
        run = await engine.start(request("switchover", "orders-pg"))
        asked = await pending_request(engine.store, run.id)
        await lag_shows(sandbox, aws_client("cloudwatch"), rds, 40)
        mark = sandbox.control.timeline()[-1]["seq"]
        await engine.approve(asked.id, APPROVER)
        await async_wait_until(
            lambda: any("Waiting for green to catch up" in n.text for n in sink.of(Notice)), 10, what="the lag notice"
        )
        sandbox.control.invalidate_configuration("orders-pg")

        final = await engine.wait(run.id, within=30)

    assert final.status == "failed"
    assert "not ready to switch over (before detaching the proxies): deployment: " in final.error
    assert "is INVALID_CONFIGURATION" in final.error
    assert "It can no longer switch over: `rollback`, then `create` again." in final.error
    assert calls_since(sandbox, mark, "DeregisterDBProxyTargets") == []
    assert [t["RdsResourceId"] for t in targets(rds, "orders-proxy")] == ["orders-pg"]


async def test_lag_rising_after_the_approval_fails_after_lag_wait_with_the_proxy_never_detached(
    sandbox: Sandbox, tmp_path: Path, rds: Any, aws_client: Any
) -> None:
    async with engine_with(sandbox, tmp_path, BLUEGREEN_MAX_REPLICA_LAG="5", BLUEGREEN_LAG_WAIT="1.5") as (
        engine,
        sink,
    ):
        await created(engine)
        run = await engine.start(request("switchover", "orders-pg"))
        asked = await pending_request(engine.store, run.id)
        await lag_shows(sandbox, aws_client("cloudwatch"), rds, 40)
        mark = sandbox.control.timeline()[-1]["seq"]
        await engine.approve(asked.id, APPROVER)

        final = await engine.wait(run.id, within=30)
        assert engine.store.approvals.latest(run.id).status == "approved"  # it stayed valid while the bot waited

    assert final.status == "failed"
    assert "replica lag: ReplicaLag (physical replication, green)" in final.error
    assert ": 40.0 s (max 5 s)" in final.error and "still over after waiting 1.5 s (lag_wait)" in final.error
    assert "Nothing was detached" in final.error
    waiting = [n.text for n in sink.of(Notice) if "Waiting for green to catch up" in n.text]
    assert waiting and "before detaching the proxies" in waiting[0] and "the approval stays valid" in waiting[0]
    assert calls_since(sandbox, mark, "DeregisterDBProxyTargets") == []
    assert calls_since(sandbox, mark, "SwitchoverBlueGreenDeployment") == []
    assert len(calls_since(sandbox, mark, "GetMetricData")) >= 2  # it re-checked while it waited
    assert [t["RdsResourceId"] for t in targets(rds, "orders-proxy")] == ["orders-pg"]


async def test_lag_rising_after_the_approval_is_waited_out_then_no_readiness_call_inside_the_window(
    sandbox: Sandbox, tmp_path: Path, rds: Any, aws_client: Any
) -> None:
    async with engine_with(sandbox, tmp_path, BLUEGREEN_MAX_REPLICA_LAG="5", BLUEGREEN_LAG_WAIT="60") as (
        engine,
        sink,
    ):
        await created(engine)
        await lag_shows(sandbox, aws_client("cloudwatch"), rds, 0.5)  # what the preflight reads
        run = await engine.start(request("switchover", "orders-pg"))
        asked = await pending_request(engine.store, run.id)
        (approval,) = [e for e in sink.of(ApprovalRequested) if e.request_id == asked.id]
        await lag_shows(sandbox, aws_client("cloudwatch"), rds, 40)
        approved = sandbox.control.timeline()[-1]["seq"]
        await engine.approve(asked.id, APPROVER)
        await async_wait_until(
            lambda: any("Waiting for green to catch up" in n.text for n in sink.of(Notice)), 10, what="the lag notice"
        )
        assert calls_since(sandbox, approved, "DeregisterDBProxyTargets") == []  # waiting, nothing detached
        fell = sandbox.control.timeline()[-1]["seq"]
        sandbox.control.set_replica_lag("orders-pg", 0.5)

        final = await engine.wait(run.id, within=90)

    assert final.status == "succeeded", final.error
    assert {gate["name"] for gate in approval.gates} >= {"deployment", "green instances", "replica lag"}
    assert all(gate["status"] == "pass" for gate in approval.gates)
    assert any("Replica lag back under 5 s" in n.text for n in sink.of(Notice))
    window = [e for e in sandbox.control.timeline(since=fell) if e["kind"] == "call" and e.get("code") is None]
    first_detach = next(i for i, e in enumerate(window) if e["action"] == "DeregisterDBProxyTargets")
    switch = next(i for i, e in enumerate(window) if e["action"] == "SwitchoverBlueGreenDeployment")
    inside = {e["action"] for e in window[first_detach:switch]}
    assert inside.isdisjoint(READINESS_CALLS), inside
    assert [t["RdsResourceId"] for t in targets(rds, "orders-proxy")] == ["orders-pg"]


async def test_native_strategy_checks_right_before_the_switchover_call(
    sandbox: Sandbox, tmp_path: Path, rds: Any, aws_client: Any
) -> None:
    sandbox.control.config(proxy_mode="native")
    async with engine_with(sandbox, tmp_path, BLUEGREEN_MAX_REPLICA_LAG="5", BLUEGREEN_LAG_WAIT="1") as (engine, _):
        await created(engine)
        run = await engine.start(request("switchover", "orders-pg"))
        asked = await pending_request(engine.store, run.id)
        await lag_shows(sandbox, aws_client("cloudwatch"), rds, 40)
        mark = sandbox.control.timeline()[-1]["seq"]
        await engine.approve(asked.id, APPROVER)

        final = await engine.wait(run.id, within=30)

    assert final.strategy == "native" and final.status == "failed"
    assert "not ready to switch over (before the switchover call): replica lag: " in final.error
    assert calls_since(sandbox, mark, "SwitchoverBlueGreenDeployment") == []
    assert calls_since(sandbox, mark, "GetMetricData")
