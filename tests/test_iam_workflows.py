"""The IAM policy, proven: every workflow runs in the sandbox under `iam-policy.json`, as the bot's role tagged for
`production` (it assumes it with `role_arn`); no statement is dead weight; and the role cannot delete, modify or stop
what is not its own.

1. Each workflow succeeds with no call refused, and the statements it needed alone (some call was allowed by that
   statement and no other: the sandbox's timeline records the statements that allowed each call) are the ones listed
   in NEEDS; together they are every statement of the policy.
2. For each statement, the cheapest scenario that needs it (REMOVAL) runs again under the policy without it and
   fails with AccessDenied naming one of the statement's actions. Prerequisites (a deployment, a switchover) are made
   directly with the sandbox's admin client, so only the scenario itself runs as the bot.
3. The negative tests act as the role directly: deleting, modifying or stopping another environment's or a
   production database, deleting a proxy, registering into another environment's proxy and tagging production so the
   policy would let it be deleted are each refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bot.errors import AwsError
from bot.workflow.engine import Engine
from bot.workflow.gateway_pool import GatewayPool
from sandbox.aws import Sandbox
from sandbox.waiting import async_wait_until
from tests.engine_fixtures import REQUESTER, request, run_to_end, targets
from tests.iam_fixtures import (
    ENVIRONMENT_TAG,
    POLICY,
    actions_of,
    needed,
    policy_without,
    refusals,
    role_client,
)
from tests.sandbox_fixtures import db_arn

READ = "ReadDatabasesProxiesDeploymentsAndMetrics"
PROXIES = "DetachAndAttachProxyTargetsOfThisEnvironment"
COPY = "CopyDatabasesOfThisEnvironment"
CREATE = "CreateDeploymentsTaggedForThisEnvironment"
GREEN = "RdsCreatesGreenUnderInternalNames"
SWITCH = "SwitchOverUpgradeAndRemoveDeploymentsOfThisEnvironment"
MARK = "MarkGreenOfThisEnvironmentForDeletion"
DELETE_GREEN = "DeleteGreenMarkedForDeletion"
OLD_BLUE = "DeleteOldBlueOfThisEnvironment"
SNAPSHOT = "TakeOldBluesFinalSnapshot"
RESTORE = "RestoreRehearsalClones"
PROXY = "CreateRehearsalProxies"
TAG_PROXY = "TagRehearsalProxiesAndTheirTargetGroups"
PASS_ROLE = "PassTheProxyRoleToRds"
TEARDOWN = "DeleteRehearsalResourcesOfThisEnvironment"
CREATING = {READ, COPY, CREATE, GREEN}
REHEARSING = {READ, RESTORE, COPY, PROXY, PASS_ROLE, TAG_PROXY, PROXIES, CREATE, GREEN, SWITCH, TEARDOWN}
# What each workflow needed alone, from the sandbox's record of the statements that allowed each call.
NEEDS = {
    "workaround": CREATING | {PROXIES, SWITCH, OLD_BLUE, SNAPSHOT},
    "native": CREATING | {SWITCH},
    "rollback": CREATING | {PROXIES, MARK, SWITCH, DELETE_GREEN},
    "cancel": {READ, PROXIES},
    "rehearsal": REHEARSING,
    "aurora": CREATING | {PROXIES, SWITCH, OLD_BLUE, SNAPSHOT},
    "aurora rehearsal": REHEARSING,
    "aurora rollback": CREATING | {PROXIES, MARK, SWITCH, DELETE_GREEN},
}
# Each statement's cheapest scenario (its prerequisites made by the admin client) and the workflow that shows the
# scenario needs it.
REMOVAL = {
    READ: "create",
    PROXIES: "create",
    COPY: "native create",  # no proxy to detach first, nor to give back after the refusal: the cheapest
    CREATE: "native create",
    GREEN: "native create",
    SWITCH: "switchover",
    MARK: "rollback",
    DELETE_GREEN: "rollback",
    OLD_BLUE: "cleanup",
    SNAPSHOT: "cleanup",
    RESTORE: "rehearsal",
    PROXY: "rehearsal",
    TAG_PROXY: "rehearsal",
    PASS_ROLE: "rehearsal",
    TEARDOWN: "failed rehearsal",
}
SHOWN_BY = {
    "create": "workaround",
    "native create": "native",
    "switchover": "native",
    "rollback": "rollback",
    "cleanup": "workaround",
    "rehearsal": "rehearsal",
    "failed rehearsal": "rehearsal",
}


def assert_succeeded(run: Any, sandbox: Sandbox) -> None:
    assert run.status == "succeeded", (run.kind, run.error, refusals(sandbox))


async def lifecycle(engine: Engine, sandbox: Sandbox, database: str, *steps: tuple[str, dict[str, Any]]) -> None:
    for kind, options in steps:
        assert_succeeded(await run_to_end(engine, request(kind, database, **options), within=60), sandbox)


# ----- 1. every workflow under the shipped policy --------------------------------------------------------------------


async def test_workaround_create_upgrade_switchover_and_cleanup_with_delete_old(iam_engine, sandbox, rds):
    await lifecycle(
        iam_engine,
        sandbox,
        "orders-pg",
        ("create", {"mode": "workaround"}),
        ("upgrade", {"engine_version": "16.4"}),
        ("switchover", {"engine_version": "16.4"}),
        ("cleanup", {"delete_old": True}),
    )

    assert refusals(sandbox) == []
    assert needed(sandbox) == NEEDS["workaround"]
    names = {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
    assert "orders-pg-old1" not in names
    assert rds.describe_db_instances(DBInstanceIdentifier="orders-pg")["DBInstances"][0]["EngineVersion"] == "16.4"


async def test_native_create_switchover_with_fix_drift_and_cleanup_without_delete_old(iam_engine, sandbox, rds):
    sandbox.control.config(proxy_mode="native")
    await lifecycle(iam_engine, sandbox, "orders-pg", ("create", {"mode": "native", "engine_version": "16.4"}))
    # Deletion protection turned on after green was made is not copied: --fix-drift gives it to the new primary.
    rds.modify_db_instance(DBInstanceIdentifier="orders-pg", DeletionProtection=True, ApplyImmediately=True)
    await lifecycle(iam_engine, sandbox, "orders-pg", ("switchover", {"fix_drift": True}), ("cleanup", {}))

    assert refusals(sandbox) == []
    assert needed(sandbox) == NEEDS["native"]
    assert rds.describe_db_instances(DBInstanceIdentifier="orders-pg")["DBInstances"][0]["DeletionProtection"]
    assert rds.describe_db_instances(DBInstanceIdentifier="orders-pg-old1")["DBInstances"]  # kept without the flag
    assert rds.describe_blue_green_deployments()["BlueGreenDeployments"] == []


async def test_rollback_marks_green_then_deletes_it_with_the_deployment(iam_engine, sandbox, rds):
    created = await run_to_end(iam_engine, request("create", "orders-pg", mode="workaround"), within=60)
    assert_succeeded(created, sandbox)
    green = created.meta["green_arn"]
    rolled_back = await run_to_end(iam_engine, request("rollback", "orders-pg"), within=60)

    assert_succeeded(rolled_back, sandbox)
    assert refusals(sandbox) == []
    assert needed(sandbox) == NEEDS["rollback"]
    calls = [c for s in iam_engine.store.steps.list(rolled_back.id) for c in s.aws_calls]
    tagged = [c for c in calls if c["action"] == "AddTagsToResource"]
    assert [c["outcome"] for c in tagged] == ["ok"]  # audited, with the command that does it by hand
    assert f"--resource-name {green}" in tagged[0]["command"] and "Key=bluegreen-bot:green" in tagged[0]["command"]
    names = {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
    assert green.rsplit(":", 1)[-1] not in names and "orders-pg" in names


async def test_a_cancel_while_the_proxy_is_detached_is_compensated(iam_engine, sandbox, rds, gateway_pool: GatewayPool):
    run_ids: list[str] = []

    def cancel_once_detached(environment: str, action: str, error: BaseException | None, seconds: float) -> None:
        # The operator's cancel lands right after AWS answered the deregistration: the proxy has no target.
        if action == "DeregisterDBProxyTargets" and error is None and run_ids:
            cancelling = iam_engine.cancel(run_ids.pop(), REQUESTER)
            with pytest.raises(StopIteration):  # Engine.cancel records the request without awaiting anything
                cancelling.send(None)

    gateway_pool.observe(cancel_once_detached)
    run = await iam_engine.start(request("create", "orders-pg", mode="workaround"))
    run_ids.append(run.id)
    final = await iam_engine.wait(run.id, 30)

    assert final.status == "cancelled", (final.status, final.error, refusals(sandbox))
    order = [e["action"] for e in sandbox.control.timeline() if e["kind"] == "call" and e.get("code") is None]
    assert [a for a in order if a.endswith("DBProxyTargets") and "Describe" not in a] == [
        "DeregisterDBProxyTargets",
        "RegisterDBProxyTargets",  # the compensation gave the proxy its target back
    ]
    assert "CreateBlueGreenDeployment" not in order
    assert refusals(sandbox) == []
    assert needed(sandbox) == NEEDS["cancel"]
    assert {t["RdsResourceId"] for t in targets(rds, "orders-proxy")} == {"orders-pg"}


async def test_a_rehearsal_of_orders_pg(iam_engine, sandbox, rds):
    final = await run_to_end(iam_engine, request("rehearse", "orders-pg", engine_version="16.4"), within=60)

    assert_succeeded(final, sandbox)
    assert refusals(sandbox) == []
    assert needed(sandbox) == NEEDS["rehearsal"]
    assert not [d for d in rds.describe_db_instances()["DBInstances"] if "-rh-" in d["DBInstanceIdentifier"]]


async def test_aurora_create_switchover_and_cleanup_with_delete_old(iam_engine, sandbox, rds):
    await lifecycle(
        iam_engine,
        sandbox,
        "ledger-aurora",
        ("create", {"mode": "workaround", "engine_version": "16.4"}),
        ("switchover", {}),
        ("cleanup", {"delete_old": True}),
    )

    assert refusals(sandbox) == []
    assert needed(sandbox) == NEEDS["aurora"]
    clusters = {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]}
    assert "ledger-aurora-old1" not in clusters and "ledger-aurora" in clusters


async def test_aurora_rollback_marks_green_s_cluster_and_instances(iam_engine, sandbox, rds):
    await lifecycle(iam_engine, sandbox, "ledger-aurora", ("create", {"mode": "workaround"}), ("rollback", {}))

    assert refusals(sandbox) == []
    assert needed(sandbox) == NEEDS["aurora rollback"]
    marked = [e["params"]["ResourceName"] for e in sandbox.control.timeline() if e.get("action") == "AddTagsToResource"]
    assert sorted(arn.split(":")[5] for arn in marked) == ["cluster", "db", "db"]  # the cluster and both members
    assert [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]] == ["ledger-aurora"]


async def test_a_rehearsal_of_ledger_aurora(iam_engine, sandbox, rds):
    final = await run_to_end(iam_engine, request("rehearse", "ledger-aurora", engine_version="16.4"), within=60)

    assert_succeeded(final, sandbox)
    assert refusals(sandbox) == []
    assert needed(sandbox) == NEEDS["aurora rehearsal"]
    assert not [c for c in rds.describe_db_clusters()["DBClusters"] if "-rh-" in c["DBClusterIdentifier"]]


# ----- 2. no statement is dead weight ------------------------------------------------------------------------------


def test_every_statement_is_needed_by_a_workflow_and_has_a_scenario_that_needs_it():
    sids = {statement["Sid"] for statement in POLICY["Statement"]}
    assert set().union(*NEEDS.values()) == sids
    assert set(REMOVAL) == sids
    assert all(sid in NEEDS[SHOWN_BY[scenario]] for sid, scenario in REMOVAL.items())


def admin_deployment(rds: Any, *, switch_over: bool = False) -> Callable[[], bool]:
    """A deployment of orders-pg tagged for production and the native strategy, made with the admin client
    (proxy_mode native: AWS takes a proxy target as source); returns the condition it is ready."""
    created = rds.create_blue_green_deployment(
        BlueGreenDeploymentName=f"admin-{int(time.monotonic() * 1000)}",
        Source=db_arn("orders-pg"),
        TargetEngineVersion="16.4",
        Tags=[{"Key": ENVIRONMENT_TAG, "Value": "production"}, {"Key": "bluegreen-bot:strategy", "Value": "native"}],
    )["BlueGreenDeployment"]["BlueGreenDeploymentIdentifier"]

    def status() -> str:
        return rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=created)["BlueGreenDeployments"][0][
            "Status"
        ]

    def ready() -> bool:
        if not switch_over:
            return status() == "AVAILABLE"
        if status() == "AVAILABLE":
            rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=created)
        return status() == "SWITCHOVER_COMPLETED"

    return ready


async def scenario(name: str, engine: Engine, sandbox: Sandbox, rds: Any) -> tuple[str, str]:
    """Run the scenario's workflow as the bot (its prerequisites made by the admin client): (how it ended, why)."""
    if name in ("native create", "switchover", "rollback", "cleanup"):
        sandbox.control.config(proxy_mode="native")
    if name in ("switchover", "rollback", "cleanup"):
        await async_wait_until(admin_deployment(rds, switch_over=name == "cleanup"), 10, what="the deployment ready")
    if name == "failed rehearsal":  # the teardown deletes the clone whose restore failed
        sandbox.control.fail_next_restore("the backup could not be read")
    kind, options = {
        "create": ("create", {"mode": "workaround"}),
        "native create": ("create", {"mode": "native"}),
        "switchover": ("switchover", {}),
        "rollback": ("rollback", {}),
        "cleanup": ("cleanup", {"delete_old": True}),
        "rehearsal": ("rehearse", {"engine_version": "16.4"}),
        "failed rehearsal": ("rehearse", {"engine_version": "16.4"}),
    }[name]
    try:
        final = await run_to_end(engine, request(kind, "orders-pg", **options), within=60)
    except AwsError as exc:  # refused before a run could start (the bot reads the database first)
        return "refused", str(exc)
    return final.status, final.error or ""


@pytest.mark.parametrize("sid", sorted(REMOVAL))
async def test_without_each_statement_its_scenario_is_refused_naming_one_of_its_actions(
    sid, iam_engine, sandbox, rds, bot_role
):
    sandbox.control.set_iam_policy(policy_without(sid), principal=bot_role)

    ended, why = await scenario(REMOVAL[sid], iam_engine, sandbox, rds)

    assert ended in ("failed", "refused"), (ended, why)
    denied = {refused["action"] for refused in refusals(sandbox)}
    assert denied & actions_of(sid), (sid, denied)
    assert "AccessDenied" in why, why


# ----- 3. what the role cannot do -------------------------------------------------------------------------------------


def refused(call: Callable[[], Any], action: str, resource: str) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert (caught.value.response["ResponseMetadata"]["HTTPStatusCode"], error["Code"]) == (403, "AccessDenied")
    assert f"is not authorized to perform: {action} on resource: {resource}" in error["Message"], error["Message"]


async def test_the_role_cannot_delete_modify_stop_or_claim_what_is_not_its_own(sandbox, rds, bot_role):
    rds.create_db_instance(  # another team's old blue, and one of production's
        DBInstanceIdentifier="billing-mysql-old1", Engine="mysql", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
        MasterUsername="admin", MasterUserPassword="sandbox-not-a-secret",
        Tags=[{"Key": ENVIRONMENT_TAG, "Value": "billing"}],
    )  # fmt: skip
    rds.create_db_instance(
        DBInstanceIdentifier="orders-pg-old7", Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
        MasterUsername="admin", MasterUserPassword="sandbox-not-a-secret",
        Tags=[{"Key": ENVIRONMENT_TAG, "Value": "production"}],
    )  # fmt: skip
    sandbox.control.set_iam_policy(POLICY, principal=bot_role)
    bot = role_client(sandbox, bot_role)
    orders, billing = db_arn("orders-pg"), db_arn("billing-mysql")
    billing_group = rds.describe_db_proxy_target_groups(DBProxyName="billing-proxy")["TargetGroups"][0]
    proxy = rds.describe_db_proxies(DBProxyName="orders-proxy")["DBProxies"][0]["DBProxyArn"]

    refused(lambda: bot.delete_db_instance(DBInstanceIdentifier="orders-pg", SkipFinalSnapshot=True),
            "rds:DeleteDBInstance", orders)  # fmt: skip
    refused(lambda: bot.modify_db_instance(DBInstanceIdentifier="billing-mysql", DeletionProtection=True),
            "rds:ModifyDBInstance", billing)  # fmt: skip
    refused(lambda: bot.stop_db_instance(DBInstanceIdentifier="orders-pg"), "rds:StopDBInstance", orders)
    refused(lambda: bot.delete_db_proxy(DBProxyName="orders-proxy"), "rds:DeleteDBProxy", proxy)
    refused(lambda: bot.register_db_proxy_targets(DBProxyName="billing-proxy", DBInstanceIdentifiers=["orders-pg"]),
            "rds:RegisterDBProxyTargets", billing_group["TargetGroupArn"])  # fmt: skip
    for claim in ("bluegreen-bot:green", "bluegreen-bot:rehearsal"):  # either would make production deletable
        refused(lambda k=claim: bot.add_tags_to_resource(ResourceName=orders, Tags=[{"Key": k, "Value": "true"}]),
                "rds:AddTagsToResource", orders)  # fmt: skip
    refused(lambda: bot.delete_db_instance(DBInstanceIdentifier="billing-mysql-old1", SkipFinalSnapshot=True),
            "rds:DeleteDBInstance", db_arn("billing-mysql-old1"))  # fmt: skip
    # The same names the bot owns in its own environment are its to delete.
    assert bot.delete_db_instance(DBInstanceIdentifier="orders-pg-old7", SkipFinalSnapshot=True)["DBInstance"]

    sandbox.control.set_iam_policy(None)
    assert rds.describe_db_instances(DBInstanceIdentifier="orders-pg")["DBInstances"][0]["DBInstanceStatus"] == (
        "available"
    )
    assert rds.describe_db_proxies(DBProxyName="orders-proxy")["DBProxies"]
    assert [t["Key"] for t in rds.list_tags_for_resource(ResourceName=orders)["TagList"]] == [
        "team", "cost-center", ENVIRONMENT_TAG,
    ]  # fmt: skip
    assert {t["RdsResourceId"] for t in targets(rds, "billing-proxy")} == {"billing-mysql"}


async def test_cleanup_rehearsals_sweeps_this_environment_s_leftovers_and_is_refused_another_s(
    iam_engine, sandbox, rds, gateway_pool: GatewayPool
):
    from bot.workflow.rehearsal_sweep import sweep_rehearsals

    def leftover(name: str, source: str, environment: str) -> None:
        tags = [
            {"Key": "bluegreen-bot:rehearsal", "Value": "r-lost0001"},
            {"Key": ENVIRONMENT_TAG, "Value": environment},
        ]
        rds.restore_db_instance_to_point_in_time(
            SourceDBInstanceIdentifier=source, TargetDBInstanceIdentifier=name, UseLatestRestorableTime=True, Tags=tags
        )

    leftover("orders-pg-rh-lost0001", "orders-pg", "production")
    leftover("billing-mysql-rh-lost0001", "billing-mysql", "billing")  # another environment's: not the bot's to delete

    def clones_available() -> bool:
        clones = [d for d in rds.describe_db_instances()["DBInstances"] if "-rh-" in d["DBInstanceIdentifier"]]
        return {d["DBInstanceStatus"] for d in clones} == {"available"}

    await async_wait_until(clones_available, 10, what="the leftovers available")
    since = len(sandbox.control.timeline())
    gateway = gateway_pool.get(iam_engine.settings.environments[next(iter(iam_engine.settings.environments))])

    result = await sweep_rehearsals(gateway, iam_engine.store, actor=REQUESTER, timeout=20)

    verdicts = {o.leftover.identifier: o.verdict for o in result.outcomes}
    assert verdicts == {"orders-pg-rh-lost0001": "deleted", "billing-mysql-rh-lost0001": "failed"}, result.outcomes
    assert [(d["action"], d["resource"].rsplit(":", 1)[-1]) for d in refusals(sandbox, since)] == [
        ("rds:DeleteDBInstance", "billing-mysql-rh-lost0001")
    ]
    names = {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
    assert "orders-pg-rh-lost0001" not in names and "billing-mysql-rh-lost0001" in names
