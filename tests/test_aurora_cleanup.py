"""`cleanup --delete-old` on an Aurora database, against the sandbox over HTTP: the old cluster's member instances are
deleted first (AWS refuses DeleteDBCluster while a member is not `deleting`), then the cluster with its final
snapshot. Read from the sandbox's timeline, the audit log and the thread's step reports; and once more with the bot
SIGKILLed between those calls (real `python -m bot` processes) and resumed."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from bot.workflow.events import StepReport
from tests.engine_fixtures import REQUESTER, request, run_to_end
from tests.matrix_fixtures import approving, audited_mutations, bot_env, last_seq
from tests.process_fixtures import forked_bots, zygote_fixture  # noqa: F401  (the `zygote` fixture)

CLUSTER = "ledger-aurora"
MEMBERS = ("ledger-aurora-1", "ledger-aurora-2")  # writer first
OLD = f"{CLUSTER}-old1"
OLD_WRITER, OLD_READER = (f"{m}-old1" for m in MEMBERS)
DELETIONS = ("DeleteDBInstance", "DeleteDBCluster")


async def switched_over(engine) -> None:
    """ledger-aurora switched over: its old blue is ledger-aurora-old1 with ledger-aurora-{1,2}-old1."""
    for kind, kwargs in (("create", {"mode": "workaround"}), ("switchover", {})):
        final = await run_to_end(engine, request(kind, CLUSTER, **kwargs))
        assert final.status == "succeeded", (kind, final.error)


def deletions(sandbox, since: int) -> list[dict[str, Any]]:
    """Every deletion call AWS received after `since`, failed or not, in order."""
    return [e for e in sandbox.control.timeline(since=since) if e["kind"] == "call" and e["action"] in DELETIONS]


def deleted(calls: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["action"], c["params"].get("DBInstanceIdentifier") or c["params"]["DBClusterIdentifier"]) for c in calls]


def assert_old_blue_gone_and_production_intact(rds) -> None:
    clusters = {c["DBClusterIdentifier"]: c for c in rds.describe_db_clusters()["DBClusters"]}
    instances = {i["DBInstanceIdentifier"]: i for i in rds.describe_db_instances()["DBInstances"]}
    assert OLD not in clusters
    assert not {OLD_WRITER, OLD_READER} & set(instances)
    assert clusters[CLUSTER]["Status"] == "available"
    assert sorted(m["DBInstanceIdentifier"] for m in clusters[CLUSTER]["DBClusterMembers"]) == list(MEMBERS)
    assert all(instances[m]["DBInstanceStatus"] == "available" for m in MEMBERS)


def assert_deleted_in_order_once(sandbox, rds, since: int, run_id: str) -> None:
    """Each member once, readers first, no snapshot; then the cluster once, with its final snapshot; no refusals."""
    calls = deletions(sandbox, since)
    assert [c.get("code") for c in calls] == [None] * len(calls), calls
    assert deleted(calls) == [
        ("DeleteDBInstance", OLD_READER),
        ("DeleteDBInstance", OLD_WRITER),
        ("DeleteDBCluster", OLD),
    ]
    members, cluster = calls[:2], calls[2]
    assert all(c["params"].get("SkipFinalSnapshot") == "true" for c in members), members
    assert not any("FinalDBSnapshotIdentifier" in c["params"] for c in members), members
    snapshot = f"{OLD}-final-{run_id[2:]}"
    assert cluster["params"].get("FinalDBSnapshotIdentifier") == snapshot
    taken = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot)["DBClusterSnapshots"]
    assert [s["DBClusterIdentifier"] for s in taken] == [OLD]


async def test_aurora_cleanup_deletes_every_old_member_then_the_cluster_with_its_final_snapshot(
    engine, sandbox, rds, sink
):
    await switched_over(engine)
    since = last_seq(sandbox)

    final = await run_to_end(engine, request("cleanup", CLUSTER, delete_old=True))

    assert final.status == "succeeded", final.error
    assert_deleted_in_order_once(sandbox, rds, since, final.id)
    assert_old_blue_gone_and_production_intact(rds)
    # Audited once each, with the `aws rds` command the thread shows.
    audit = [a for a in engine.store.audit.list(run_id=final.id) if a.action in {f"aws:{d}" for d in DELETIONS}]
    member = "aws rds delete-db-instance --db-instance-identifier {} --skip-final-snapshot"
    cluster = f"aws rds delete-db-cluster --db-cluster-identifier {OLD} --final-db-snapshot-identifier {OLD}-final-"
    assert [(a.action, a.detail["outcome"], a.detail["command"]) for a in audit] == [
        ("aws:DeleteDBInstance", "ok", member.format(OLD_READER)),
        ("aws:DeleteDBInstance", "ok", member.format(OLD_WRITER)),
        ("aws:DeleteDBCluster", "ok", cluster + final.id[2:]),
    ]
    shown = [call.command for report in sink.of(StepReport) if report.snapshot.run.id == final.id
             for call in report.aws_calls if call.action in DELETIONS]  # fmt: skip
    assert shown == [a.detail["command"] for a in audit]


async def test_instance_cleanup_deletes_the_old_instance_in_one_call(engine, sandbox, rds):
    assert (await run_to_end(engine, request("create", "orders-pg", mode="workaround"))).status == "succeeded"
    # Production protected after green was created: old blue keeps the protection, and AWS refuses to delete it.
    rds.modify_db_instance(DBInstanceIdentifier="orders-pg", DeletionProtection=True, ApplyImmediately=True)
    assert (await run_to_end(engine, request("switchover", "orders-pg"))).status == "succeeded"
    since = last_seq(sandbox)

    final = await run_to_end(engine, request("cleanup", "orders-pg", delete_old=True))

    assert final.status == "succeeded", final.error
    lifted = [
        c
        for c in sandbox.control.timeline(since=since)
        if c.get("kind") == "call" and c.get("action") == "ModifyDBInstance" and c.get("code") is None
    ]
    assert [c["params"]["DBInstanceIdentifier"] for c in lifted] == ["orders-pg-old1"], lifted
    calls = deletions(sandbox, since)
    assert deleted(calls) == [("DeleteDBInstance", "orders-pg-old1")]
    assert calls[0]["code"] is None and lifted[0]["seq"] < calls[0]["seq"]
    assert calls[0]["params"]["FinalDBSnapshotIdentifier"] == f"orders-pg-old1-final-{final.id[2:]}"
    assert "orders-pg-old1" not in {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}


# The bot killed between these calls (BLUEGREEN_FAILPOINT), then `python -m bot resume`. Each point fires once.
# Deletions last longer here than the resumed process takes to reach the step again, so it finds what the killed one
# deleted still `deleting` (as on AWS, where that takes minutes), not already gone.
DELETING_SECONDS = 3.0
KILLS = {
    "after-call:DeleteDBInstance": 1,  # between the two member deletions
    "after-step:delete_old_members": 2,  # between the member deletions and the cluster's
    "after-call:DeleteDBCluster": 3,  # after the cluster's, before the wait
}


@pytest.mark.parametrize("failpoint", list(KILLS))
async def test_killed_during_aurora_cleanup_the_resumed_run_deletes_nothing_twice(
    failpoint, engine, store, sandbox, rds, settings, tmp_path, zygote
):
    with forked_bots(zygote, tmp_path) as start:
        crashing = start(
            ["cleanup", CLUSTER, "--delete-old", "--as", REQUESTER], bot_env(sandbox, settings.db_path, failpoint)
        )
        resuming = start(["resume"], bot_env(sandbox, settings.db_path))
        await switched_over(engine)
        sandbox.control.config(deleting=DELETING_SECONDS)
        since = last_seq(sandbox)

        async with approving(store, engine):
            crashing.release()
            await crashing.killed_at_failpoint()
            (run,) = [r for r in store.runs.list(limit=5) if r.kind == "cleanup" and r.is_active]
            # Killed where the case says, as AWS saw it: this many deletions sent, all accepted.
            before = deletions(sandbox, since)
            assert len(before) == KILLS[failpoint] and all(c.get("code") is None for c in before), before
            resuming.release()
            code = await resuming.ended()
        output = resuming.output()

    assert code == 0, output
    final = store.runs.get(run.id)
    assert final.status == "succeeded", (final.error, output)
    assert {s.status for s in store.steps.list(run.id)} == {"done"}
    assert_deleted_in_order_once(sandbox, rds, since, run.id)
    assert_old_blue_gone_and_production_intact(rds)
    audit = [a.action for a in store.audit.list(run_id=run.id)]
    assert audit.count("run:resumed") == 1 and audit[-1] == "run:succeeded", audit
    assert Counter({k: v for k, v in audited_mutations(store, run.id).items() if k in DELETIONS}) == Counter(
        {"DeleteDBInstance": 2, "DeleteDBCluster": 1}
    )
