"""Drift after a switchover: the pure comparison (`bot.gates.drift`), `--fix-drift` from the CLI and Slack to the
approval, and whole switchovers against the sandbox AWS: the report in the thread, the fixes applied once, the
resumed step changing nothing twice."""

from __future__ import annotations

import dataclasses

import pytest

from bot.aws.gateway import AwsGateway
from bot.aws.models import Deployment
from bot.aws.settings_changes import AssociatedRole, DatabaseSettings
from bot.cli import build_parser
from bot.errors import BadRequest
from bot.gates.drift import FIX_DRIFT_ACTION, ORDER, DriftReport, compare, fixes_for
from bot.gates.model import FAIL, PASS, UNKNOWN
from bot.planning.fingerprint import switchover_fingerprint
from bot.workflow.events import ApprovalRequested, Notice
from bot.workflow.steps.approval import approval_action
from handlers.parsing import parse_command
from tests.engine_fixtures import request, run_to_end
from tests.matrix_fixtures import last_seq, successful_calls

ACCOUNT = "arn:aws:rds:us-east-1:123456789012"
BLUE = DatabaseSettings(
    identifier="orders-pg-old1",
    kind="instance",
    arn=f"{ACCOUNT}:db:orders-pg-old1",
    engine="postgres",
    engine_version="15.7",
    resource_id="db-OLDOLDOLD",
    deletion_protection=False,
    tags={"team": "orders", "cost-center": "cc-42"},
    roles=(),
    parameter_group="orders-pg15",
    backup_retention=7,
    instance="orders-pg-old1",
    monitoring_interval=0,
    performance_insights=False,
    ca_certificate="rds-ca-rsa2048-g1",
)
GREEN = dataclasses.replace(
    BLUE, identifier="orders-pg", arn=f"{ACCOUNT}:db:orders-pg", resource_id="db-NEWNEWNEW", instance="orders-pg"
)
ROLE = AssociatedRole("arn:aws:iam::123456789012:role/s3-import", "s3Import")


def rows_by_name(report: DriftReport) -> dict[str, object]:
    return {row.name: row for row in report.rows}


# ----- the comparison -------------------------------------------------------------------------------------------


def test_identical_settings_have_no_drift_but_the_new_resource_id_is_called_out():
    report = compare(BLUE, GREEN)

    assert [row.name for row in report.rows] == list(ORDER)
    assert report.differences == [] and {row.status for row in report.rows} == {PASS}
    assert report.text().startswith("Drift after the switchover: none;")
    assert "DbiResourceId changed: db-OLDOLDOLD (old blue orders-pg-old1) -> db-NEWNEWNEW (orders-pg)" in report.text()
    assert "`arn:aws:rds-db:us-east-1:123456789012:dbuser:db-NEWNEWNEW/*`" in report.text()
    assert fixes_for(BLUE, GREEN).empty


def test_each_difference_comes_with_the_command_that_gives_the_new_primary_old_blues_value():
    old = dataclasses.replace(
        BLUE, deletion_protection=True, tags={**BLUE.tags, "owner": "dba team"}, roles=(ROLE,), monitoring_interval=60,
        monitoring_role="arn:aws:iam::123456789012:role/em", performance_insights=True,
        performance_insights_retention=7,
    )  # fmt: skip
    new = dataclasses.replace(
        GREEN, tags={"team": "payments", "cost-center": "cc-42"}, parameter_group="default.postgres15",
        backup_retention=1, ca_certificate="rds-ca-ecc384-g1",
    )  # fmt: skip

    rows = rows_by_name(compare(old, new))

    assert {name: row.status for name, row in rows.items()} == dict.fromkeys(ORDER, FAIL)
    assert (
        rows["deletion protection"].fix
        == "aws rds modify-db-instance --db-instance-identifier orders-pg --deletion-protection"
    )
    assert rows["tags"].reason == "orders-pg lacks old blue's owner=dba team, team=orders (is payments)"
    assert rows["tags"].fix == (
        f"aws rds add-tags-to-resource --resource-name {ACCOUNT}:db:orders-pg"
        " --tags 'Key=owner,Value=dba team' Key=team,Value=orders"
    )
    assert rows["IAM roles"].fix == (
        "aws rds add-role-to-db-instance --db-instance-identifier orders-pg"
        " --role-arn arn:aws:iam::123456789012:role/s3-import --feature-name s3Import"
    )
    assert rows["parameter group"].fix == (
        "aws rds modify-db-instance --db-instance-identifier orders-pg --db-parameter-group-name orders-pg15"
        " --apply-immediately"
    )
    assert rows["backup retention"].fix.endswith("--backup-retention-period 7 --apply-immediately")
    assert rows["enhanced monitoring"].fix.endswith(
        "--monitoring-interval 60 --monitoring-role-arn arn:aws:iam::123456789012:role/em --apply-immediately"
    )
    assert rows["Performance Insights"].fix.endswith(
        "--enable-performance-insights --performance-insights-retention-period 7 --apply-immediately"
    )
    assert rows["CA certificate"].fix.endswith("--ca-certificate-identifier rds-ca-rsa2048-g1 --apply-immediately")
    fixes = fixes_for(old, new)
    assert fixes.deletion_protection and fixes.tags == {"owner": "dba team", "team": "orders"}


def test_settings_only_the_new_primary_has_are_not_drift_to_undo():
    new = dataclasses.replace(GREEN, deletion_protection=True, tags={**GREEN.tags, "extra": "x"}, roles=(ROLE,))

    report = compare(BLUE, new)

    assert report.differences == []
    assert fixes_for(BLUE, new).empty


def test_a_major_upgrade_changes_the_parameter_group_family_so_its_contents_are_left_to_check():
    new = dataclasses.replace(GREEN, engine_version="16.4", parameter_group="orders-pg16")

    row = rows_by_name(compare(BLUE, new))["parameter group"]

    assert row.status == UNKNOWN
    assert row.fix == "aws rds describe-db-parameters --db-parameter-group-name orders-pg15 --source user"


def test_aurora_fixes_target_the_cluster_and_its_writer():
    cluster = dataclasses.replace(
        BLUE, identifier="ledger-aurora-old1", kind="cluster", arn=f"{ACCOUNT}:cluster:ledger-aurora-old1",
        engine="aurora-postgresql", resource_id="cluster-OLD", instance="ledger-aurora-1-old1",
        deletion_protection=True, roles=(ROLE,), ca_certificate="rds-ca-rsa4096-g1",
    )  # fmt: skip
    new = dataclasses.replace(
        cluster, identifier="ledger-aurora", arn=f"{ACCOUNT}:cluster:ledger-aurora", resource_id="cluster-NEW",
        instance="ledger-aurora-1", deletion_protection=False, roles=(), ca_certificate="rds-ca-rsa2048-g1",
    )  # fmt: skip

    report = compare(cluster, new)
    rows = rows_by_name(report)

    assert rows["deletion protection"].fix == (
        "aws rds modify-db-cluster --db-cluster-identifier ledger-aurora --deletion-protection"
    )
    assert rows["IAM roles"].fix.startswith("aws rds add-role-to-db-cluster --db-cluster-identifier ledger-aurora")
    assert rows["CA certificate"].fix.startswith("aws rds modify-db-instance --db-instance-identifier ledger-aurora-1 ")
    assert "DbClusterResourceId changed: cluster-OLD" in report.text()
    assert ":dbuser:cluster-NEW/*" in report.text()


def test_an_aurora_cluster_without_a_writer_leaves_its_instance_settings_unknown():
    cluster = dataclasses.replace(BLUE, kind="cluster", instance=None)

    rows = rows_by_name(compare(cluster, dataclasses.replace(GREEN, kind="cluster")))

    assert {rows[name].status for name in ("enhanced monitoring", "Performance Insights", "CA certificate")} == {
        UNKNOWN
    }


def test_the_report_survives_storage():
    report = compare(dataclasses.replace(BLUE, deletion_protection=True), GREEN)

    assert report.notes and report.notes[0] in report.lines()
    assert DriftReport.from_dict(report.to_dict()) == report


# ----- --fix-drift: asked for, approved, bound to the approval ---------------------------------------------------


def test_fix_drift_is_a_switchover_option_of_the_cli_and_of_slack():
    args = build_parser().parse_args(["switchover", "orders-pg", "--fix-drift"])
    parsed = parse_command("switchover orders-pg --fix-drift")

    assert args.fix_drift is True
    assert parsed.to_request(requester="U1", environment="default", channel=None).fix_drift is True
    with pytest.raises(BadRequest, match="does not apply to `cleanup`"):
        parse_command("cleanup orders-pg --fix-drift")
    with pytest.raises(BadRequest, match="applies to `switchover` only"):
        request("create", "orders-pg", fix_drift=True)


def test_an_approval_without_fix_drift_does_not_cover_a_run_with_it():
    deployment = Deployment("bgd-1", "bg", f"{ACCOUNT}:db:orders-pg", f"{ACCOUNT}:db:orders-pg-green-x", "AVAILABLE")
    plain = switchover_fingerprint(deployment, "16.4", ["orders-proxy"], "native", 300)

    assert switchover_fingerprint(deployment, "16.4", ["orders-proxy"], "native", 300, fix_drift=True) != plain
    assert approval_action("switchover", {"fix_drift": True}).endswith(FIX_DRIFT_ACTION)
    assert FIX_DRIFT_ACTION not in approval_action("switchover", {})


# ----- against the sandbox AWS ----------------------------------------------------------------------------------


async def test_the_gateway_reads_an_instances_and_an_aurora_clusters_settings(sandbox):
    async with AwsGateway(region="us-east-1", endpoint_url=sandbox.endpoint) as gateway:
        instance = await gateway.database_settings(f"{ACCOUNT}:db:orders-pg")
        cluster = await gateway.database_settings(f"{ACCOUNT}:cluster:ledger-aurora")
        gone = await gateway.database_settings(f"{ACCOUNT}:db:no-such-db")

    assert instance is not None and cluster is not None and gone is None
    assert instance.kind == "instance" and instance.resource_id and instance.resource_id.startswith("db-")
    assert instance.parameter_group and instance.backup_retention is not None and instance.ca_certificate
    assert cluster.kind == "cluster" and cluster.resource_id and cluster.resource_id.startswith("cluster-")
    assert cluster.instance == "ledger-aurora-1"  # the writer, where monitoring, PI and the CA are set


def drift_notice(sink) -> str:
    (notice,) = [n.text for n in sink.of(Notice) if n.text.startswith("Drift after the switchover")]
    return notice


def instance(rds, identifier: str) -> dict:
    return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


S3_ROLE = "arn:aws:iam::123456789012:role/orders-s3-import"


async def changed_on_blue_after_create(engine, sandbox, rds) -> dict:
    """orders-pg with a deployment (native: no proxy detached), then changed on blue by hand: deletion protection on
    (not copied to green after its creation), a tag (AWS copies blue's tags to green at the switchover) and an IAM
    role (never carried over)."""
    sandbox.control.config(proxy_mode="native")
    created = await run_to_end(engine, request("create", "orders-pg"))
    assert created.status == "succeeded", created.error
    blue = instance(rds, "orders-pg")
    rds.modify_db_instance(DBInstanceIdentifier="orders-pg", DeletionProtection=True)
    rds.add_tags_to_resource(ResourceName=blue["DBInstanceArn"], Tags=[{"Key": "owner", "Value": "dba team"}])
    rds.add_role_to_db_instance(DBInstanceIdentifier="orders-pg", RoleArn=S3_ROLE, FeatureName="s3Import")
    return blue


async def test_a_switchover_posts_the_drift_report_and_changes_nothing_without_fix_drift(engine, sandbox, rds, sink):
    blue = await changed_on_blue_after_create(engine, sandbox, rds)
    since = last_seq(sandbox)

    switched = await run_to_end(engine, request("switchover", "orders-pg"))

    assert switched.status == "succeeded", switched.error
    text = drift_notice(sink)
    assert text.startswith(
        "Drift after the switchover: orders-pg (the new primary) differs from old blue orders-pg-old1"
    )
    assert (
        "• deletion protection: on on old blue orders-pg-old1, off on orders-pg; fix:"
        " `aws rds modify-db-instance --db-instance-identifier orders-pg --deletion-protection`"
    ) in text
    assert (
        f"`aws rds add-role-to-db-instance --db-instance-identifier orders-pg --role-arn {S3_ROLE}"
        " --feature-name s3Import`"
    ) in text
    assert (
        "before `cleanup --delete-old`, run"
        " `aws rds modify-db-instance --db-instance-identifier orders-pg-old1 --no-deletion-protection`"
    ) in text
    new_id = instance(rds, "orders-pg")["DbiResourceId"]
    assert new_id != blue["DbiResourceId"]
    assert f"DbiResourceId changed: {blue['DbiResourceId']} (old blue orders-pg-old1) -> {new_id} (orders-pg)" in text
    assert f"`arn:aws:rds-db:us-east-1:123456789012:dbuser:{new_id}/*`" in text
    drift = switched.summary["drift"]
    statuses = {row["name"]: row["status"] for row in drift["rows"]}
    assert {name for name, status in statuses.items() if status != PASS} == {"deletion protection", "IAM roles"}
    assert statuses["tags"] == PASS  # AWS copied blue's tags, the new one included, at the switchover
    assert drift["fixed"] == []
    assert instance(rds, "orders-pg")["DeletionProtection"] is False
    assert {"ModifyDBInstance", "AddTagsToResource", "AddRoleToDBInstance"}.isdisjoint(successful_calls(sandbox, since))


async def test_fix_drift_restores_deletion_protection_once_even_when_the_step_runs_again(
    engine, sandbox, rds, sink, store
):
    blue = await changed_on_blue_after_create(engine, sandbox, rds)
    since = last_seq(sandbox)

    switched = await run_to_end(engine, request("switchover", "orders-pg", fix_drift=True))

    assert switched.status == "succeeded", switched.error
    (asked,) = sink.of(ApprovalRequested)
    assert asked.action.endswith(FIX_DRIFT_ACTION)
    assert instance(rds, "orders-pg")["DeletionProtection"] is True
    tags = rds.list_tags_for_resource(ResourceName=blue["DBInstanceArn"])["TagList"]
    assert {"Key": "owner", "Value": "dba team"} in tags
    made = successful_calls(sandbox, since)
    # Deletion protection is set once; the tag came with the switchover, so none is added; roles are not --fix-drift's.
    assert made.get("ModifyDBInstance") == 1
    assert {"AddTagsToResource", "AddRoleToDBInstance"}.isdisjoint(made)
    audit = [a.action for a in store.audit.list(run_id=switched.id)]
    assert audit.count("aws:ModifyDBInstance") == 1
    notices = [n.text for n in sink.of(Notice)]
    assert "--fix-drift: orders-pg now has old blue's deletion protection." in notices
    assert switched.summary["drift"]["fixed"] == ["deletion protection"]

    # The process dies after the fix, before the step is recorded done: the resumed step changes nothing again.
    (step,) = [s for s in store.steps.list(switched.id) if s.name == "drift_report"]
    store.steps.reset(switched.id, step.idx)
    store.runs.set_status(switched.id, "running")
    again = last_seq(sandbox)
    assert await engine.resume_unfinished() == [switched.id]
    resumed = await engine.wait(switched.id, 10)

    assert resumed.status == "succeeded", resumed.error
    assert {"ModifyDBInstance", "AddTagsToResource"}.isdisjoint(successful_calls(sandbox, again))
    assert [a.action for a in store.audit.list(run_id=switched.id)].count("aws:ModifyDBInstance") == 1
    assert len([n for n in sink.of(Notice) if n.text.startswith(("Drift after the switchover", "--fix-drift"))]) == 2
    assert resumed.summary["drift"]["fixed"] == ["deletion protection"]
    # Old blue keeps the protection blue had: AWS refuses to delete it until it is turned off (`cleanup --delete-old`).
    assert instance(rds, "orders-pg-old1")["DeletionProtection"] is True


async def test_the_fixes_are_one_call_each_with_their_aws_rds_command(sandbox, rds):
    async with AwsGateway(region="us-east-1", endpoint_url=sandbox.endpoint) as gateway:
        settings = await gateway.database_settings(f"{ACCOUNT}:db:billing-mysql")
        assert settings is not None and settings.deletion_protection is False
        protect = await gateway.set_deletion_protection(settings, True)
        tag = await gateway.add_tags(settings.arn, {"owner": "dba team"})
        after = await gateway.database_settings(settings.arn)
    rds.modify_db_instance(DBInstanceIdentifier="billing-mysql", DeletionProtection=False)

    assert protect.command == "aws rds modify-db-instance --db-instance-identifier billing-mysql --deletion-protection"
    assert (
        tag.command == f"aws rds add-tags-to-resource --resource-name {settings.arn} --tags 'Key=owner,Value=dba team'"
    )
    assert protect.request_id and tag.request_id
    assert after is not None and after.deletion_protection is True and after.tags["owner"] == "dba team"
