"""`python -m bot cleanup --rehearsals [--dry-run]` against the sandbox AWS over HTTP: leftovers of rehearsals made on
purpose (boto3 against the sandbox), the CLI run as a real subprocess, the sandbox timeline as the proof of what it
changed. Production and an untagged look-alike (`x-rh-y`) must never be touched."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.aws.gateway import AwsGateway
from bot.cli import main
from bot.workflow.rehearsal_sweep import sweep_rehearsals
from sandbox.waiting import wait_until
from storage import open_store
from tests.bot_fixtures import REPO
from tests.engine_fixtures import engine_env
from tests.matrix_fixtures import bot_env

TAG = "bluegreen-bot:rehearsal"
DEAD = "r-0badf00d"  # a rehearsal whose teardown never finished
CLONE = f"orders-pg-rh-{DEAD[2:]}"
CLUSTER = f"ledger-aurora-rh-{DEAD[2:]}"
LOOKALIKE = "x-rh-y"
MUTATIONS = ("Create", "Delete", "Modify", "Restore", "Register", "Deregister", "Switchover", "Add", "Remove")
PRODUCTION = {"orders-pg", "billing-mysql", "ledger-aurora", "ledger-aurora-1", "ledger-aurora-2", "orders-proxy"}


def tags(run_id: str) -> list[dict[str, str]]:
    return [{"Key": TAG, "Value": run_id}]


def status_of(rds: Any, identifier: str) -> str | None:
    found = [d for d in rds.describe_db_instances()["DBInstances"] if d["DBInstanceIdentifier"] == identifier]
    return found[0]["DBInstanceStatus"] if found else None


def restore(rds: Any, name: str, run_id: str | None) -> str:
    rds.restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier="orders-pg", TargetDBInstanceIdentifier=name, UseLatestRestorableTime=True,
        Tags=tags(run_id) if run_id else [],
    )  # fmt: skip
    wait_until(lambda: status_of(rds, name) == "available", 10, what=f"{name} available")
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBInstanceArn"]


def proxy_like_orders(rds: Any, name: str, run_id: str) -> None:
    production = rds.describe_db_proxies(DBProxyName="orders-proxy")["DBProxies"][0]
    rds.create_db_proxy(
        DBProxyName=name, EngineFamily=production["EngineFamily"], RoleArn=production["RoleArn"],
        Auth=[{k: v for k, v in a.items() if k in ("AuthScheme", "SecretArn", "IAMAuth")} for a in production["Auth"]],
        VpcSubnetIds=production["VpcSubnetIds"], Tags=tags(run_id),
    )  # fmt: skip


def leave_leftovers(rds: Any, active_run: str) -> None:
    """What rehearsals left: an instance clone with its proxy and a blue/green deployment (green copies the tag), an
    Aurora clone cluster with its instance; a proxy of a rehearsal still running; an untagged look-alike."""
    arn = restore(rds, CLONE, DEAD)
    proxy_like_orders(rds, CLONE, DEAD)
    proxy_like_orders(rds, f"billing-mysql-rh-{active_run[2:]}", active_run)
    rds.create_blue_green_deployment(BlueGreenDeploymentName=f"bg-orders-pg-{DEAD[2:]}", Source=arn)
    rds.restore_db_cluster_to_point_in_time(
        SourceDBClusterIdentifier="ledger-aurora", DBClusterIdentifier=CLUSTER, UseLatestRestorableTime=True,
        Tags=tags(DEAD),
    )  # fmt: skip
    wait_until(
        lambda: rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]["Status"] == "available",
        10, what=f"{CLUSTER} available",
    )  # fmt: skip
    rds.create_db_instance(
        DBInstanceIdentifier=f"{CLUSTER}-1", DBClusterIdentifier=CLUSTER, Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large", Tags=tags(DEAD),
    )  # fmt: skip
    restore(rds, LOOKALIKE, None)
    wait_until(
        lambda: rds.describe_blue_green_deployments()["BlueGreenDeployments"][0]["Status"] == "AVAILABLE"
        and status_of(rds, f"{CLUSTER}-1") == "available",
        10, what="the deployment AVAILABLE and the cluster's instance available",
    )  # fmt: skip


def mutations(sandbox: Any, since: int) -> list[dict[str, Any]]:
    return [
        e
        for e in sandbox.control.timeline(since)
        if e["kind"] == "call" and e["action"].startswith(MUTATIONS) and e.get("code") is None
    ]


def named(call: dict[str, Any]) -> set[str]:
    params = call.get("params") or {}
    return {str(v) for k, v in params.items() if k.endswith(("Identifier", "Name")) and isinstance(v, str)}


def last_seq(sandbox: Any) -> int:
    return max((e["seq"] for e in sandbox.control.timeline()), default=0)


def everything(rds: Any) -> set[str]:
    return (
        {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
        | {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]}
        | {p["DBProxyName"] for p in rds.describe_db_proxies()["DBProxies"]}
        | {d["BlueGreenDeploymentIdentifier"] for d in rds.describe_blue_green_deployments()["BlueGreenDeployments"]}
    )


async def test_the_sweep_lists_then_deletes_only_tagged_leftovers_and_skips_a_running_rehearsal(sandbox, rds, tmp_path):
    db_path = tmp_path / "bluegreen.db"
    store = open_store(str(db_path))
    active = store.runs.create(kind="rehearse", database="billing-mysql", params={}, requester="U0ALICE")
    store.runs.set_status(active.id, "running")
    store.close()
    await asyncio.to_thread(leave_leftovers, rds, active.id)
    deployment = rds.describe_blue_green_deployments()["BlueGreenDeployments"][0]
    green = deployment["Target"].rsplit(":", 1)[-1]
    before = everything(rds)

    def sweep(*flags: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "bot", "cleanup", "--rehearsals", *flags, "--as", "U0ALICE"]
        env = bot_env(sandbox, str(db_path))
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)

    mark = last_seq(sandbox)
    dry = await asyncio.to_thread(sweep, "--dry-run")

    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert mutations(sandbox, mark) == [] and everything(rds) == before  # nothing changed
    listed = dry.stdout
    would = [line for line in listed.splitlines() if line.startswith("would delete")]
    for name in (deployment["BlueGreenDeploymentIdentifier"], CLONE, green, CLUSTER, f"{CLUSTER}-1"):
        assert any(f" {name}  (rehearsal {DEAD})" in line for line in would), listed
    assert f"{green}  (rehearsal {DEAD}): green of {deployment['BlueGreenDeploymentIdentifier']}" in listed
    assert f"aws rds delete-db-cluster --db-cluster-identifier {CLUSTER} --skip-final-snapshot" in listed
    assert f"aws rds delete-db-proxy --db-proxy-name {CLONE}" in listed
    assert f"skipped          proxy          billing-mysql-rh-{active.id[2:]}" in listed
    assert f"rehearsal {active.id} of billing-mysql is still running" in listed
    assert LOOKALIKE not in listed and "orders-proxy" not in listed
    assert "dry run: 6 resource(s) tagged bluegreen-bot:rehearsal to delete; 1 skipped" in listed

    mark = last_seq(sandbox)
    swept = await asyncio.to_thread(sweep)

    assert swept.returncode == 0, swept.stdout + swept.stderr
    deleted = {"DeleteBlueGreenDeployment", "DeleteDBProxy", "DeleteDBInstance", "DeleteDBCluster"}
    calls = mutations(sandbox, mark)
    assert {c["action"] for c in calls} == deleted
    touched = set().union(*(named(c) for c in calls))
    assert touched == {deployment["BlueGreenDeploymentIdentifier"], CLONE, CLUSTER, f"{CLUSTER}-1"}, touched
    assert not touched & (PRODUCTION | {LOOKALIKE})
    assert [c["params"]["SkipFinalSnapshot"] for c in calls if "SkipFinalSnapshot" in c["params"]] == ["true"] * 3
    left = everything(rds)
    assert left == before - {deployment["BlueGreenDeploymentIdentifier"], CLONE, green, CLUSTER, f"{CLUSTER}-1"}
    assert status_of(rds, LOOKALIKE) == "available" and f"billing-mysql-rh-{active.id[2:]}" in left
    assert "nothing tagged bluegreen-bot:rehearsal is left" in swept.stdout, swept.stdout
    audit = open_store(str(db_path)).audit.list()
    assert {e.detail["resource"] for e in audit if e.action == "rehearsal-sweep:deleted"} == touched

    mark = last_seq(sandbox)
    again = await asyncio.to_thread(sweep)

    assert again.returncode == 0, again.stdout + again.stderr
    assert mutations(sandbox, mark) == []
    assert "rehearsal sweep: 0 deleted; 1 skipped" in again.stdout, again.stdout


async def test_a_leftover_aws_will_not_delete_fails_the_sweep_with_the_fix_and_an_untagged_one_is_left(
    sandbox, rds, tmp_path
):
    """The tag is read again right before each deletion: a resource whose tag went away after the listing is not
    touched. A deletion AWS refuses makes the sweep fail, naming the command that deletes it by hand."""
    await asyncio.to_thread(restore, rds, CLONE, DEAD)
    await asyncio.to_thread(proxy_like_orders, rds, CLONE, DEAD)
    sandbox.control.inject_fault("DeleteDBProxy", "InvalidDBProxyStateFault")
    store = open_store(str(tmp_path / "bluegreen.db"))

    def untag_the_clone_once_listed(outcome: Any) -> None:
        if outcome.leftover.kind == "proxy":  # proxies come before instances
            arn = rds.describe_db_instances(DBInstanceIdentifier=CLONE)["DBInstances"][0]["DBInstanceArn"]
            rds.remove_tags_from_resource(ResourceName=arn, TagKeys=[TAG])

    async with AwsGateway(region="us-east-1", endpoint_url=sandbox.endpoint) as gateway:
        result = await sweep_rehearsals(gateway, store, actor="U0ALICE", on_outcome=untag_the_clone_once_listed)

    verdicts = {(o.leftover.kind, o.leftover.identifier): o for o in result.outcomes}
    assert verdicts["proxy", CLONE].verdict == "failed"
    assert "InvalidDBProxyStateFault" in verdicts["proxy", CLONE].note
    assert f"aws rds delete-db-proxy --db-proxy-name {CLONE}" in verdicts["proxy", CLONE].fix
    assert verdicts["instance", CLONE].verdict == "untouched"
    assert not result.ok and "1 could not be deleted" in result.summary()
    assert status_of(rds, CLONE) == "available"
    assert [c["action"] for c in sandbox.control.timeline() if c.get("action", "").startswith("Delete")] == [
        "DeleteDBProxy"
    ]


def test_cleanup_refuses_to_mix_the_sweep_with_a_database_run(tmp_path, monkeypatch, capsys):
    for key, value in engine_env(Path(tmp_path / "bluegreen.db")).items():
        monkeypatch.setenv(key, value)

    mixed = main(["cleanup", "orders-pg", "--rehearsals"])
    mixed_err = capsys.readouterr().err
    dry_alone = main(["cleanup", "orders-pg", "--dry-run"])
    dry_err = capsys.readouterr().err
    neither = main(["cleanup"])
    neither_err = capsys.readouterr().err

    assert (mixed, dry_alone, neither) == (2, 2, 2)
    assert "takes no database" in mixed_err and "python -m bot cleanup --rehearsals [--dry-run]" in mixed_err
    assert "--dry-run goes with --rehearsals" in dry_err
    assert "needs the database" in neither_err and "cleanup DATABASE [--delete-old]" in neither_err
    with pytest.raises(SystemExit):
        main(["cleanup", "--help"])
    usage = capsys.readouterr().out
    assert "cleanup DATABASE [--delete-old]" in usage and "cleanup --rehearsals [--dry-run]" in usage
