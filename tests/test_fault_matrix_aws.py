"""The AWS fault matrix: every mutating call and every polling call of the lifecycle fails with Throttling, HTTP 500,
HTTP 503 or a dropped connection (a few times, so botocore's adaptive retries absorb it), and each run still ends
right, makes each mutation once and leaves the proxy with its target AVAILABLE. Then faults that outlast the retries.

botocore sleeps rand(0, 1) * min(2 ** attempt, 20) s between attempts (up to a minute for the gateway's 8
attempts). The tests keep every attempt but scale those sleeps down 50 times, as the sandbox scales AWS's durations.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.retries.standard import ExponentialBackoff

from bot.config import load_settings
from bot.planning.requests import RunRequest
from bot.workflow.engine import Engine
from bot.workflow.events import DetachedAlert, Notice
from sandbox.waiting import async_wait_until
from storage import RunRecord, open_store
from tests.engine_fixtures import (
    APPROVER,
    RecordingSink,
    engine_env,
    pending_request,
    request,
    run_to_end,
    sandbox_gateways,
)
from tests.matrix_fixtures import (
    DATABASE,
    TARGET_VERSION,
    all_calls,
    assert_created,
    assert_proxy_serves,
    assert_switched,
    audited_mutations,
    expected_mutations,
    instance,
    last_seq,
    successful_calls,
)

PROXY = "orders-proxy"
FAULT_COUNT = 2  # botocore's adaptive mode makes up to 8 attempts per call
FAULTS = {  # id -> (sandbox fault code, HTTP status)
    "throttling": ("Throttling", None),
    "http-500": ("InternalFailure", 500),
    "http-503": ("ServiceUnavailable", 503),
    "dropped-connection": ("drop", None),
}


BACKOFF_SCALE = 1 / 50


@pytest.fixture(autouse=True)
def short_botocore_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    real_delay = ExponentialBackoff.delay_amount
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, ctx: real_delay(self, ctx) * BACKOFF_SCALE)


@dataclass(frozen=True)
class Scenario:
    """Which run meets the faults, after which clean runs, and whether they are injected once it is approved
    (so that they land in the disruptive part of a switchover rather than in its preflight)."""

    faulted: Callable[[], RunRequest]
    setup: tuple[Callable[[], RunRequest], ...] = ()
    after_approval: bool = False


def _create() -> RunRequest:
    return request("create", DATABASE, mode="workaround", engine_version=TARGET_VERSION)


def _create_same_version() -> RunRequest:
    return request("create", DATABASE, mode="workaround")


def _switchover() -> RunRequest:
    return request("switchover", DATABASE)


def _upgrade() -> RunRequest:
    return request("upgrade", DATABASE, engine_version=TARGET_VERSION)


def _rollback() -> RunRequest:
    return request("rollback", DATABASE)


SWITCHOVER = Scenario(_switchover, setup=(_create,), after_approval=True)
SCENARIOS = {
    "DeregisterDBProxyTargets": SWITCHOVER,
    "CreateBlueGreenDeployment": Scenario(_create),
    "RegisterDBProxyTargets": SWITCHOVER,
    "SwitchoverBlueGreenDeployment": SWITCHOVER,
    "ModifyDBInstance": Scenario(_upgrade, setup=(_create_same_version,)),
    "DeleteBlueGreenDeployment": Scenario(_rollback, setup=(_create,)),
    "DescribeBlueGreenDeployments": SWITCHOVER,
    "DescribeDBProxyTargets": SWITCHOVER,
    "DescribeDBInstances": SWITCHOVER,
}


async def run_with_faults(engine: Engine, sandbox, scenario: Scenario, inject: Callable[[], None]) -> RunRecord:
    req = scenario.faulted()
    run = await engine.start(req) if scenario.after_approval else None
    if run is None:
        inject()
        run = await engine.start(req)
    else:
        pending = await pending_request(engine.store, run.id)
        inject()
        await engine.approve(pending.id, APPROVER)
    return await engine.wait(run.id, 60)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("action", SCENARIOS)
async def test_a_few_faults_on_a_call_are_absorbed_and_nothing_is_done_twice(
    action, fault, engine, store, sandbox, rds
):
    scenario = SCENARIOS[action]
    for setup in scenario.setup:
        done = await run_to_end(engine, setup())
        assert done.status == "succeeded", done.error
    plan = await engine.plan(scenario.faulted())
    since = last_seq(sandbox)
    code, status = FAULTS[fault]

    final = await run_with_faults(
        engine, sandbox, scenario, lambda: sandbox.control.inject_fault(action, code, FAULT_COUNT, status)
    )

    assert final.status == "succeeded", final.error
    faulted = [c for c in all_calls(sandbox, action, since) if c.get("code") == code]
    assert len(faulted) == FAULT_COUNT, "the injected faults did not hit this run"
    expected = expected_mutations(plan)
    assert successful_calls(sandbox, since) == expected
    assert audited_mutations(store, final.id) == expected
    assert_proxy_serves(rds, PROXY, DATABASE)
    if final.kind == "create":
        assert_created(rds, final.meta["deployment_name"])
    elif final.kind == "switchover":
        (created,) = [r for r in store.runs.list(limit=5) if r.kind == "create"]
        assert_switched(rds, created.meta["deployment_name"])
    elif final.kind == "upgrade":
        green = final.meta["green_arn"].rsplit(":", 1)[-1]
        assert instance(rds, green)["EngineVersion"] == TARGET_VERSION
    elif final.kind == "rollback":
        assert rds.describe_blue_green_deployments()["BlueGreenDeployments"] == []


# ----- faults that outlast botocore's retries -------------------------------------------------------------------------

TARGET_TIMEOUT = 4.0


@pytest.fixture
async def patient_engine(sandbox, tmp_path: Path) -> AsyncIterator[tuple[Engine, RecordingSink]]:
    """An engine whose registration timeout (BLUEGREEN_TARGET_TIMEOUT) is short enough for a test."""
    settings = load_settings(engine_env(tmp_path / "patient.db", BLUEGREEN_TARGET_TIMEOUT=str(TARGET_TIMEOUT)))
    store = open_store(settings.db_path)
    sink = RecordingSink()
    engine = Engine(store=store, settings=settings, sinks=[sink], gateways=sandbox_gateways(sandbox))
    yield engine, sink
    await engine.aclose()
    store.close()


async def switchover_with_register_faults(engine: Engine, sandbox, count: int) -> tuple[RunRecord, int]:
    """Create, then switch over while the next `count` RegisterDBProxyTargets calls fail with HTTP 500."""
    created = await run_to_end(engine, _create())
    assert created.status == "succeeded", created.error
    since = last_seq(sandbox)
    final = await run_with_faults(
        engine,
        sandbox,
        SWITCHOVER,
        lambda: sandbox.control.inject_fault("RegisterDBProxyTargets", "InternalFailure", count),
    )
    return final, since


async def test_registration_faults_beyond_botocore_retries_are_retried_until_the_target_timeout(
    patient_engine, sandbox, rds
):
    engine, _ = patient_engine
    # 20 failures: more than botocore's 8 attempts per call, far fewer than fit in the engine's timeout.
    final, since = await switchover_with_register_faults(engine, sandbox, 20)

    assert final.status == "succeeded", final.error
    assert_proxy_serves(rds, PROXY, DATABASE)
    assert successful_calls(sandbox, since)["RegisterDBProxyTargets"] == 1


# Registration failing for good: compensation used to give up after COMPENSATION_PATIENCE (4) x the target
# timeout; it now keeps trying, with capped backoff, alerting every interval, until AWS accepts.
SHORT_TARGET_TIMEOUT = 1.0
OLD_BOUND = 4 * SHORT_TARGET_TIMEOUT  # when compensation used to end the run, "COMPENSATION FAILED"
ALERT_INTERVAL = 1.0
BACKOFF_CAP = 0.3


@pytest.fixture
async def compensating_engine(sandbox, tmp_path: Path) -> AsyncIterator[tuple[Engine, RecordingSink]]:
    """An engine whose registration timeout, compensation backoff cap and alert interval are scaled down."""
    env = engine_env(
        tmp_path / "compensating.db",
        BLUEGREEN_TARGET_TIMEOUT=str(SHORT_TARGET_TIMEOUT),
        BLUEGREEN_COMPENSATION_BACKOFF_CAP=str(BACKOFF_CAP),
        BLUEGREEN_DETACHED_ALERT_INTERVAL=str(ALERT_INTERVAL),
    )
    settings = load_settings(env)
    store = open_store(settings.db_path)
    sink = RecordingSink()
    engine = Engine(store=store, settings=settings, sinks=[sink], gateways=sandbox_gateways(sandbox))
    yield engine, sink
    await engine.aclose()
    store.close()


async def test_registration_failing_for_good_keeps_retrying_and_alerting_naming_the_proxy_and_the_command(
    compensating_engine, sandbox, rds
):
    engine, sink = compensating_engine
    store = engine.store
    created = await run_to_end(engine, _create())
    assert created.status == "succeeded", created.error
    since = last_seq(sandbox)
    run = await engine.start(_switchover())
    pending = await pending_request(store, run.id)
    sandbox.control.inject_fault("RegisterDBProxyTargets", "InternalFailure", 10_000)
    await engine.approve(pending.id, APPROVER)

    def compensating_for() -> float:
        current = store.runs.get(run.id)
        started = (current.meta.get("compensation") or {}).get("started_at")
        return time.time() - started if current.status == "compensating" and started else 0.0

    await async_wait_until(lambda: compensating_for() > 2 * OLD_BOUND, 60, what="compensation past twice the old bound")

    # Still trying, and loud: a broadcast notice names the proxy, and alerts keep naming it with the command.
    assert store.runs.get(run.id).status == "compensating"
    broadcasts = [n.text for n in sink.of(Notice) if n.snapshot.run.id == run.id and n.broadcast]
    assert any(PROXY in text and "no target" in text for text in broadcasts), broadcasts
    command = (
        f"aws rds register-db-proxy-targets --db-proxy-name {PROXY} --target-group-name default"
        f" --db-instance-identifiers {DATABASE}"
    )
    alerts = [a for a in sink.of(DetachedAlert) if a.snapshot.run.id == run.id]
    assert len(alerts) >= 3, alerts
    assert [a.number for a in alerts] == list(range(1, len(alerts) + 1))
    for alert in alerts:
        assert [(p.label, p.command) for p in alert.proxies] == [(PROXY, command)]
        assert "InternalFailure" in (alert.proxies[0].last_error or "")
        assert alert.approvers == sorted({APPROVER, "U0CAROL"})
    started = store.runs.get(run.id).meta["compensation"]["started_at"]
    posted = [started] + [e.detail["at"] for e in store.audit.list(run_id=run.id) if e.action == "compensation:alert"]
    assert all(later - earlier >= ALERT_INTERVAL for earlier, later in itertools.pairwise(posted)), posted
    # It really is still retrying, past the old bound.
    to_wall = time.time() - time.monotonic()
    refused = [c["t"] + to_wall for c in all_calls(sandbox, "RegisterDBProxyTargets", since) if c.get("code")]
    assert any(t > started + OLD_BOUND for t in refused), "no registration tried after the old bound"
    # Honest: AWS switched over and the proxy really has no target; the run holds its locks meanwhile.
    created_name = created.meta["deployment_name"]
    assert_switched(rds, created_name)
    assert "RegisterDBProxyTargets" not in successful_calls(sandbox, since)
    targets = rds.describe_db_proxy_targets(DBProxyName=PROXY, TargetGroupName="default")["Targets"]
    assert [t for t in targets if t["Type"] == "RDS_INSTANCE"] == []
    assert store.locks.holder(f"db:{DATABASE}") == run.id and store.locks.holder(f"proxy:{PROXY}") == run.id

    sandbox.control.clear_faults()  # AWS accepts again
    final = await engine.wait(run.id, 60)

    # The run ends as it would have: failed, with the original error naming the proxy and the repair command.
    assert final.status == "failed"
    error = final.error or ""
    assert PROXY in error and "no target" in error and command in error, error
    assert "COMPENSATION FAILED" not in error
    assert_proxy_serves(rds, PROXY, DATABASE)
    assert successful_calls(sandbox, since)["RegisterDBProxyTargets"] == 1
    assert any(f"{PROXY} has its target again" in n.text and n.broadcast for n in sink.of(Notice)), broadcasts
    assert PROXY not in final.meta.get("detached", {})
    actions = [a.action for a in store.audit.list(run_id=final.id)]
    assert "step:failed" in actions and actions[-1] == "run:failed", actions
    # The registration was tried by the step, then by the compensation until AWS accepted.
    attempts = [s for s in store.steps.list(final.id) if s.name == "reattach"]
    assert [s.status for s in attempts] == ["failed", "done"]
