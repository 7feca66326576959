"""`rehearse`: a disposable clone of blue, restored, then torn down, against the sandbox AWS over HTTP. The sandbox
timeline shows every mutation; none may name a production resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.aws import mutation_guard
from bot.aws.gateway import AwsGateway
from bot.cli import build_parser
from bot.config import Settings, load_settings
from bot.errors import BadRequest
from bot.planning.rehearsal import clone_name
from bot.workflow.engine import Engine
from tests.engine_fixtures import engine_env, request, sandbox_gateways

MUTATIONS = ("Create", "Delete", "Modify", "Restore", "Register", "Deregister", "Switchover", "Add", "Remove")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(engine_env(tmp_path / "bluegreen.db", BLUEGREEN_REHEARSALS="true"))


def mutations(sandbox: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in sandbox.control.timeline()
        if e["kind"] == "call" and e["action"].startswith(MUTATIONS) and e.get("code") is None
    ]


def changed(call: dict[str, Any]) -> set[str]:
    """What a recorded call changes: its identifier-like parameters, but not the source a restore reads."""
    params = call.get("params") or {}
    return {str(v) for k, v in params.items() if k.endswith(("Identifier", "Name")) and not k.startswith("Source")}


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


async def test_a_rehearsal_restores_a_clone_then_leaves_nothing_behind_and_touches_no_production(engine, sandbox, rds):
    run = await engine.start(request("rehearse", "orders-pg", engine_version="16.4"))
    clone = clone_name("orders-pg", run.id)
    locks = (engine.store.locks.holder("db:orders-pg"), engine.store.locks.holder(f"db:{clone}"))
    final = await engine.wait(run.id, 30)

    assert final.status == "succeeded", final.error
    assert locks == (None, run.id)  # the clone's lock, never production's
    assert [e["action"] for e in mutations(sandbox)] == ["RestoreDBInstanceToPointInTime", "DeleteDBInstance"]
    assert [changed(call) for call in mutations(sandbox)] == [{clone}, {clone}]
    assert mutations(sandbox)[0]["params"]["SourceDBInstanceIdentifier"] == "orders-pg"  # read, never changed
    restored = [c for s in engine.store.steps.list(run.id) for c in s.aws_calls if c["action"].startswith("Restore")]
    assert f"Key=bluegreen-bot:rehearsal,Value={run.id}" in restored[0]["command"]
    tagged = [
        d["DBInstanceIdentifier"]
        for d in rds.describe_db_instances()["DBInstances"]
        if {"Key": "bluegreen-bot:rehearsal", "Value": final.id} in d.get("TagList", [])
    ]
    assert tagged == []
    assert final.meta["measured"]["restore_seconds"] > 0


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
