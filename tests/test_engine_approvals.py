"""The two-person rule, through the engine: who may approve, expiry, the plan fingerprint, exactly one winner."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import load_settings
from bot.errors import ApprovalRefused
from bot.workflow.engine import Engine
from sandbox.waiting import async_wait_until, wait_until
from storage import open_store
from tests.engine_fixtures import (
    APPROVER,
    OUTSIDER,
    REQUESTER,
    calls,
    engine_env,
    pending_request,
    request,
    run_to_end,
    sandbox_gateways,
)


@pytest.fixture
async def awaiting_approval(engine, sandbox):
    """A workaround deployment, and a switchover run waiting at its approval gate."""
    created = await run_to_end(engine, request("create", "orders-pg", mode="workaround"))
    assert created.status == "succeeded", created.error
    run = await engine.start(request("switchover", "orders-pg"))
    pending = await pending_request(engine.store, run.id)
    return run, pending


async def test_the_requester_cannot_approve_their_own_run(engine, sandbox, awaiting_approval):
    run, pending = awaiting_approval
    with pytest.raises(ApprovalRefused, match="second person"):
        await engine.approve(pending.id, REQUESTER)
    assert engine.store.approvals.get(pending.id).status == "pending"
    assert calls(sandbox, "SwitchoverBlueGreenDeployment", ok_only=False) == []
    await engine.cancel(run.id, REQUESTER)


async def test_someone_outside_the_approvers_cannot_approve(engine, sandbox, awaiting_approval):
    run, pending = awaiting_approval
    with pytest.raises(ApprovalRefused, match="not an approver"):
        await engine.approve(pending.id, OUTSIDER)
    assert engine.store.approvals.get(pending.id).status == "pending"
    assert calls(sandbox, "SwitchoverBlueGreenDeployment", ok_only=False) == []
    refusals = engine.store.audit.list(run_id=run.id, action="approval:refused:approved")
    assert refusals and refusals[0].actor == OUTSIDER
    await engine.cancel(run.id, REQUESTER)


async def test_an_expired_request_cannot_be_approved_and_ends_the_run(sandbox, tmp_path):
    settings = load_settings(engine_env(tmp_path / "bg.db", BLUEGREEN_APPROVAL_TTL="1"))
    store = open_store(settings.db_path)
    engine = Engine(store=store, settings=settings, gateways=sandbox_gateways(sandbox))
    try:
        await run_to_end(engine, request("create", "orders-pg", mode="workaround"))
        run = await engine.start(request("switchover", "orders-pg"))
        pending = await pending_request(store, run.id)

        final = await engine.wait(run.id, 10)
        with pytest.raises(ApprovalRefused, match="expired"):
            await engine.approve(pending.id, APPROVER)
    finally:
        await engine.aclose()

    assert final.status == "expired"
    assert store.approvals.get(pending.id).status == "expired"
    assert calls(sandbox, "SwitchoverBlueGreenDeployment", ok_only=False) == []


async def test_a_click_for_a_changed_plan_is_refused(engine, sandbox, awaiting_approval):
    run, pending = awaiting_approval
    with pytest.raises(ApprovalRefused, match="plan changed"):
        await engine.approve(pending.id, APPROVER, fingerprint="0" * 16)
    assert engine.store.approvals.get(pending.id).status == "pending"
    await engine.cancel(run.id, REQUESTER)


async def test_aws_changing_after_approval_requires_a_new_approval(engine, sandbox, rds, awaiting_approval):
    run, pending = awaiting_approval
    deployment = engine.store.runs.get(run.id).meta["deployment_id"]
    green = rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=deployment)["BlueGreenDeployments"][0]
    green_id = green["Target"].rsplit(":", 1)[-1]
    # Someone upgrades green after the request went out: the approved plan no longer describes AWS.
    rds.modify_db_instance(
        DBInstanceIdentifier=green_id, EngineVersion="16.4", AllowMajorVersionUpgrade=True, ApplyImmediately=True
    )
    wait_until(
        lambda: rds.describe_db_instances(DBInstanceIdentifier=green_id)["DBInstances"][0]["EngineVersion"] == "16.4",
        timeout=5,
        what="green upgraded",
    )
    await engine.approve(pending.id, APPROVER)

    def newer_request():
        latest = engine.store.approvals.latest(run.id)
        return latest if latest and latest.id != pending.id and latest.status == "pending" else None

    fresh = await async_wait_until(newer_request, 15, interval=0.05, what="a new approval request")
    assert fresh.fingerprint != pending.fingerprint
    assert calls(sandbox, "SwitchoverBlueGreenDeployment", ok_only=False) == []
    await engine.approve(fresh.id, APPROVER)
    final = await engine.wait(run.id, 30)
    assert final.status == "succeeded", final.error
    assert len(calls(sandbox, "SwitchoverBlueGreenDeployment")) == 1


async def test_two_concurrent_approvals_start_one_switchover(engine, sandbox, awaiting_approval):
    run, pending = awaiting_approval
    results = await asyncio.gather(
        engine.approve(pending.id, APPROVER), engine.approve(pending.id, "U0CAROL"), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, ApprovalRefused)]
    assert len(winners) == 1 and len(losers) == 1
    final = await engine.wait(run.id, 30)
    assert final.status == "succeeded", final.error
    assert len(calls(sandbox, "SwitchoverBlueGreenDeployment")) == 1


async def test_rejection_ends_the_run_cleanly(engine, sandbox, awaiting_approval):
    run, pending = awaiting_approval
    await engine.reject(pending.id, APPROVER)
    final = await engine.wait(run.id, 10)
    assert final.status == "rejected"
    assert calls(sandbox, "SwitchoverBlueGreenDeployment", ok_only=False) == []
    assert engine.store.locks.holder("db:orders-pg") is None
