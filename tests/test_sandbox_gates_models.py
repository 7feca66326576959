"""What the sandbox models for the database safety gates, seen through boto3 over HTTP, and its control surface
(`SandboxClient` over HTTP, `SandboxControl` in process): engine versions, parameter groups and their apply status,
backups, replica lag in CloudWatch, green readiness, degraded replication, INVALID_CONFIGURATION, pending
maintenance, RDS events of blue/green deployments, and what green copies (drift)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from sandbox.aws.client import SandboxControlError
from sandbox.aws.replication import WAL_BYTES_PER_SECOND
from sandbox.waiting import wait_until
from tests.sandbox_fixtures import cluster_arn, db_arn

PROXIES_OF = {
    "orders-pg": ("orders-proxy",),
    "billing-mysql": ("billing-proxy", "billing-reporting-proxy"),
    "ledger-aurora": ("ledger-proxy",),
}


@pytest.fixture(autouse=True)
def quick(sandbox):
    """Provisioning and switchovers four times faster than the suite's short durations (reset restores them)."""
    sandbox.control.config(speed=4)


def code_of(caught: pytest.ExceptionInfo) -> str:
    return caught.value.response["Error"]["Code"]


def message_of(caught: pytest.ExceptionInfo) -> str:
    return caught.value.response["Error"]["Message"]


def instance(rds, db_id: str) -> dict:
    return rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]


def cluster(rds, cluster_id: str) -> dict:
    return rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]


def deployment(rds, deployment_id: str) -> dict:
    return rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=deployment_id)["BlueGreenDeployments"][0]


def wait_status(rds, deployment_id: str, status: str) -> dict:
    return wait_until(
        lambda: (d := deployment(rds, deployment_id))["Status"] == status and d, 5, what=f"deployment {status}"
    )


def source_arn(source: str) -> str:
    return cluster_arn(source) if source == "ledger-aurora" else db_arn(source)


def create(rds, source: str, version: str | None = None, name: str = "bg-gates", **kwargs) -> dict:
    """Take the source off its proxies (the legacy personality refuses a proxy target), then create."""
    key = "DBClusterIdentifiers" if source == "ledger-aurora" else "DBInstanceIdentifiers"
    for proxy in PROXIES_OF[source]:
        if rds.describe_db_proxy_targets(DBProxyName=proxy)["Targets"]:
            rds.deregister_db_proxy_targets(DBProxyName=proxy, **{key: [source]})
    if version:
        kwargs["TargetEngineVersion"] = version
    return rds.create_blue_green_deployment(BlueGreenDeploymentName=name, Source=source_arn(source), **kwargs)[
        "BlueGreenDeployment"
    ]


def available(rds, source: str, version: str | None = None) -> dict:
    return wait_status(rds, create(rds, source, version)["BlueGreenDeploymentIdentifier"], "AVAILABLE")


def green_of(ready: dict) -> str:
    return ready["Target"].rsplit(":", 1)[1]


def latest_metric(cloudwatch, metric: str, db_id: str) -> float | None:
    """The newest one-second Maximum of an AWS/RDS metric for one DB instance."""
    now = datetime.now(UTC)
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/RDS",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": db_id}],
                    },
                    "Period": 1,
                    "Stat": "Maximum",
                },
            }
        ],
        StartTime=now - timedelta(seconds=3),
        EndTime=now + timedelta(seconds=1),
        ScanBy="TimestampDescending",
    )
    values = result["MetricDataResults"][0]["Values"]
    return values[0] if values else None


def event_messages(rds, deployment_id: str) -> list[str]:
    events = rds.describe_events(SourceType="blue-green-deployment", SourceIdentifier=deployment_id)["Events"]
    return [e["Message"] for e in events]


# ---------------------------------------------------------------- engine versions and prerequisites


def test_engine_versions_list_the_valid_upgrade_targets_with_the_major_flag(rds):
    postgres = rds.describe_db_engine_versions(Engine="postgres", EngineVersion="15.7")["DBEngineVersions"]
    assert [v["DBParameterGroupFamily"] for v in postgres] == ["postgres15"]
    targets = {t["EngineVersion"]: t["IsMajorVersionUpgrade"] for t in postgres[0]["ValidUpgradeTarget"]}
    assert targets["15.8"] is False and targets["16.4"] is True and "15.6" not in targets
    aurora = rds.describe_db_engine_versions(Engine="aurora-postgresql", EngineVersion="15.4")["DBEngineVersions"][0]
    assert {"16.4": True}.items() <= {
        t["EngineVersion"]: t["IsMajorVersionUpgrade"] for t in aurora["ValidUpgradeTarget"]
    }.items()
    mysql = rds.describe_db_engine_versions(Engine="mysql", EngineVersion="8.0.36")["DBEngineVersions"][0]
    assert {"8.0.40": False, "8.4.3": True}.items() <= {
        t["EngineVersion"]: t["IsMajorVersionUpgrade"] for t in mysql["ValidUpgradeTarget"]
    }.items()
    assert rds.describe_db_engine_versions(Engine="postgres", EngineVersion="9.9")["DBEngineVersions"] == []


def test_the_fleet_is_ready_for_blue_green_as_aws_asks(rds):
    orders = instance(rds, "orders-pg")
    assert orders["BackupRetentionPeriod"] == 7 and orders["DeletionProtection"] is False
    assert orders["DBParameterGroups"] == [{"DBParameterGroupName": "orders-pg15", "ParameterApplyStatus": "in-sync"}]
    assert {t["Key"] for t in orders["TagList"]} == {"team", "cost-center", "bluegreen-bot:environment"}
    parameters = {
        p["ParameterName"]: p for p in rds.describe_db_parameters(DBParameterGroupName="orders-pg15")["Parameters"]
    }
    assert parameters["rds.logical_replication"]["ParameterValue"] == "1"
    ledger = cluster(rds, "ledger-aurora")
    assert ledger["BackupRetentionPeriod"] == 7 and ledger["DBClusterParameterGroup"] == "ledger-aurora-pg15"
    assert {m["DBClusterParameterGroupStatus"] for m in ledger["DBClusterMembers"]} == {"in-sync"}
    cluster_parameters = rds.describe_db_cluster_parameters(DBClusterParameterGroupName="ledger-aurora-pg15")
    assert {p["ParameterName"]: p["ParameterValue"] for p in cluster_parameters["Parameters"]}[
        "rds.logical_replication"
    ] == "1"
    families = {
        g["DBParameterGroupName"]: g["DBParameterGroupFamily"]
        for g in rds.describe_db_parameter_groups()["DBParameterGroups"]
    }
    assert families["orders-pg15"] == "postgres15" and families["billing-mysql80"] == "mysql8.0"
    resource_ids = {instance(rds, i)["DbiResourceId"] for i in ("orders-pg", "billing-mysql", "ledger-aurora-1")}
    assert len(resource_ids) == 3


def test_invalid_targets_and_parameter_groups_are_refused_and_create_nothing(rds):
    with pytest.raises(ClientError) as caught:
        create(rds, "orders-pg", "14.12")
    assert code_of(caught) == "InvalidParameterCombination"
    assert "Cannot find upgrade path from 15.7 to 14.12" in message_of(caught)
    with pytest.raises(ClientError) as caught:
        create(rds, "orders-pg", "16.4", TargetDBParameterGroupName="no-such-group")
    assert code_of(caught) == "DBParameterGroupNotFound"
    with pytest.raises(ClientError) as caught:
        create(rds, "orders-pg", "16.4", TargetDBParameterGroupName="orders-pg15")
    assert code_of(caught) == "InvalidParameterCombination" and "postgres16" in message_of(caught)
    with pytest.raises(ClientError) as caught:
        rds.modify_db_instance(DBInstanceIdentifier="billing-mysql", EngineVersion="5.7.44", ApplyImmediately=True)
    assert code_of(caught) == "InvalidParameterCombination"
    assert rds.describe_blue_green_deployments()["BlueGreenDeployments"] == []


def test_backups_off_and_a_parameter_group_pending_reboot_are_refused(rds, sandbox_client):
    rds.modify_db_instance(DBInstanceIdentifier="billing-mysql", BackupRetentionPeriod=0, ApplyImmediately=True)
    with pytest.raises(ClientError) as caught:
        create(rds, "billing-mysql", "8.4.3")
    assert code_of(caught) == "SourceDatabaseNotSupportedFault" and "automated backups" in message_of(caught).lower()

    answer = sandbox_client.set_parameter_apply_status("orders-pg")
    assert answer["groups"] == [{"DBParameterGroupName": "orders-pg15", "ParameterApplyStatus": "pending-reboot"}]
    assert instance(rds, "orders-pg")["DBParameterGroups"][0]["ParameterApplyStatus"] == "pending-reboot"
    with pytest.raises(ClientError) as caught:
        create(rds, "orders-pg", "16.4")
    assert code_of(caught) == "SourceDatabaseNotSupportedFault" and "pending-reboot" in message_of(caught)
    rds.reboot_db_instance(DBInstanceIdentifier="orders-pg")
    assert instance(rds, "orders-pg")["DBParameterGroups"][0]["ParameterApplyStatus"] == "in-sync"

    sandbox_client.set_parameter_apply_status("ledger-aurora", "pending-reboot")
    members = cluster(rds, "ledger-aurora")["DBClusterMembers"]
    assert {m["DBClusterParameterGroupStatus"] for m in members} == {"pending-reboot"}
    with pytest.raises(ClientError) as caught:
        create(rds, "ledger-aurora", "16.4")
    assert code_of(caught) == "SourceClusterNotSupportedFault"
    with pytest.raises(SandboxControlError, match="400"):
        sandbox_client.set_parameter_apply_status("orders-pg", "sideways")


def test_logical_replication_is_needed_for_a_postgres_major_upgrade_only(rds):
    rds.modify_db_parameter_group(
        DBParameterGroupName="orders-pg15",
        Parameters=[
            {"ParameterName": "rds.logical_replication", "ParameterValue": "0", "ApplyMethod": "pending-reboot"}
        ],
    )
    assert instance(rds, "orders-pg")["DBParameterGroups"][0]["ParameterApplyStatus"] == "pending-reboot"
    rds.reboot_db_instance(DBInstanceIdentifier="orders-pg")
    with pytest.raises(ClientError) as caught:
        create(rds, "orders-pg", "16.4")
    assert code_of(caught) == "SourceDatabaseNotSupportedFault" and "rds.logical_replication" in message_of(caught)
    minor = create(rds, "orders-pg", "15.8")  # physical replication: no logical replication needed
    assert minor["Status"] == "PROVISIONING"
    with pytest.raises(ClientError) as caught:
        create(rds, "orders-pg", "15.8", name="bg-second")
    assert code_of(caught) == "InvalidDBInstanceState" and minor["BlueGreenDeploymentIdentifier"] in message_of(caught)


# ---------------------------------------------------------------- replica lag


@pytest.mark.parametrize(
    ("source", "version", "metric", "on_blue", "scale"),
    [
        ("orders-pg", "16.4", "OldestReplicationSlotLag", "orders-pg", WAL_BYTES_PER_SECOND),  # logical
        ("orders-pg", "15.8", "ReplicaLag", None, 1),  # physical
        ("billing-mysql", "8.4.3", "ReplicaLag", None, 1),
        ("ledger-aurora", "16.4", "OldestReplicationSlotLag", "ledger-aurora-1", WAL_BYTES_PER_SECOND),
    ],
)
def test_replica_lag_is_published_under_the_metric_aws_documents(
    rds, aws_client, sandbox_client, source, version, metric, on_blue, scale
):
    cloudwatch = aws_client("cloudwatch")
    ready = available(rds, source, version)
    instance_id = on_blue or green_of(ready)
    wait_until(lambda: latest_metric(cloudwatch, metric, instance_id) == 0.5 * scale, 4, what="default lag 0.5 s")

    answer = sandbox_client.set_replica_lag(source, 42)
    assert [(p["metric"], p["value"]) for p in answer["published"]] == [(metric, 42 * scale)]
    assert answer["published"][0]["dimensions"] == [{"Name": "DBInstanceIdentifier", "Value": instance_id}]
    assert latest_metric(cloudwatch, metric, instance_id) == 42 * scale


def test_lag_beyond_what_the_timeout_allows_fails_the_switchover_and_renames_nothing(rds, sandbox):
    ready = available(rds, "billing-mysql", "8.4.3")
    sandbox.control.set_replica_lag("billing-mysql", 45)
    rds.switchover_blue_green_deployment(
        BlueGreenDeploymentIdentifier=ready["BlueGreenDeploymentIdentifier"], SwitchoverTimeout=30
    )
    failed = wait_status(rds, ready["BlueGreenDeploymentIdentifier"], "SWITCHOVER_FAILED")
    assert "replica lag" in failed["StatusDetails"]
    assert instance(rds, "billing-mysql")["EngineVersion"] == "8.0.36"


# ---------------------------------------------------------------- green readiness, degraded, invalid


def test_green_in_storage_optimization_is_not_ready_and_aws_refuses_the_switchover(rds, sandbox_client):
    ready = available(rds, "orders-pg", "16.4")
    green = green_of(ready)
    answer = sandbox_client.set_green_status("orders-pg", "storage-optimization", progress=40)
    assert answer["instances"] == [green]
    seen = instance(rds, green)
    assert (seen["DBInstanceStatus"], seen["PercentProgress"]) == ("storage-optimization", "40")
    assert deployment(rds, ready["BlueGreenDeploymentIdentifier"])["Status"] == "AVAILABLE"
    with pytest.raises(ClientError) as caught:
        rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=ready["BlueGreenDeploymentIdentifier"])
    assert code_of(caught) == "InvalidBlueGreenDeploymentStateFault"
    assert message_of(caught) == f"DB instance {green} is not in available state"

    sandbox_client.set_green_status("orders-pg", "storage-initialization", progress=10)
    sandbox_client.set_green_status("orders-pg", "available")
    assert "PercentProgress" not in instance(rds, green)
    messages = event_messages(rds, ready["BlueGreenDeploymentIdentifier"])
    assert messages[-2:] == [
        "Your storage volumes are being initialized.",
        "Your storage volumes have been initialized.",
    ]
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=ready["BlueGreenDeploymentIdentifier"])
    wait_status(rds, ready["BlueGreenDeploymentIdentifier"], "SWITCHOVER_COMPLETED")


def test_degraded_replication_shows_as_aws_reports_it_and_blocks_the_switchover(rds, sandbox_client):
    ready = available(rds, "ledger-aurora", "16.4")
    deployment_id = ready["BlueGreenDeploymentIdentifier"]
    sandbox_client.degrade_replication("ledger-aurora", "a DDL change on blue")

    degraded = deployment(rds, deployment_id)
    assert degraded["Status"] == "AVAILABLE"
    assert degraded["StatusDetails"] == "Replication degraded: a DDL change on blue"
    writer = next(
        m["DBInstanceIdentifier"] for m in cluster(rds, green_of(ready))["DBClusterMembers"] if m["IsClusterWriter"]
    )
    assert instance(rds, writer)["StatusInfos"] == [
        {
            "StatusType": "read replication",
            "Normal": False,
            "Status": "replication degraded",
            "Message": "a DDL change on blue",
        }
    ]
    with pytest.raises(ClientError) as caught:
        rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
    assert code_of(caught) == "InvalidBlueGreenDeploymentStateFault" and "degraded" in message_of(caught)
    assert any(
        m.startswith("Replication degraded for blue/green deployment") for m in event_messages(rds, deployment_id)
    )


def test_degrading_a_mysql_deployment_or_an_unknown_source_is_refused(rds, sandbox_client):
    available(rds, "billing-mysql")
    with pytest.raises(SandboxControlError, match="PostgreSQL"):
        sandbox_client.degrade_replication("billing-mysql")
    with pytest.raises(SandboxControlError, match="no active blue/green deployment"):
        sandbox_client.set_replica_lag("orders-pg", 1)


def test_invalid_configuration_stops_the_switchover(rds, sandbox):
    ready = available(rds, "orders-pg")
    sandbox.control.invalidate_configuration("orders-pg")
    invalid = deployment(rds, ready["BlueGreenDeploymentIdentifier"])
    assert invalid["Status"] == "INVALID_CONFIGURATION" and "promoted" in invalid["StatusDetails"]
    with pytest.raises(ClientError) as caught:
        rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=ready["BlueGreenDeploymentIdentifier"])
    assert code_of(caught) == "InvalidBlueGreenDeploymentStateFault"


def test_pending_maintenance_is_listed_for_the_resource_it_was_added_to(rds, sandbox_client):
    ready = available(rds, "orders-pg")
    green = green_of(ready)
    assert rds.describe_pending_maintenance_actions()["PendingMaintenanceActions"] == []
    sandbox_client.add_pending_maintenance(green)
    sandbox_client.add_pending_maintenance("ledger-aurora", "db-upgrade")

    by_arn = rds.describe_pending_maintenance_actions(ResourceIdentifier=db_arn(green))["PendingMaintenanceActions"]
    assert [(p["ResourceIdentifier"], [d["Action"] for d in p["PendingMaintenanceActionDetails"]]) for p in by_arn] == [
        (db_arn(green), ["system-update"])
    ]
    by_filter = rds.describe_pending_maintenance_actions(
        Filters=[{"Name": "db-cluster-id", "Values": ["ledger-aurora"]}]
    )
    assert [p["ResourceIdentifier"] for p in by_filter["PendingMaintenanceActions"]] == [cluster_arn("ledger-aurora")]
    assert (
        rds.describe_pending_maintenance_actions(ResourceIdentifier=db_arn("orders-pg"))["PendingMaintenanceActions"]
        == []
    )
    with pytest.raises(SandboxControlError, match="no DB instance or cluster"):
        sandbox_client.add_pending_maintenance("nope")


# ---------------------------------------------------------------- events and drift


def test_a_switchover_and_a_deletion_emit_the_documented_events(rds):
    ready = available(rds, "orders-pg", "16.4")
    deployment_id, green = ready["BlueGreenDeploymentIdentifier"], green_of(ready)
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
    wait_status(rds, deployment_id, "SWITCHOVER_COMPLETED")
    rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
    wait_until(lambda: "Blue/green deployment deleted." in event_messages(rds, deployment_id), 5, what="deleted event")

    assert event_messages(rds, deployment_id) == [
        "Blue/green deployment tasks completed. You can make more modifications to the green environment databases "
        "or switch over the deployment.",
        f"Switchover from orders-pg to {green} started.",
        f"Sequence sync for switchover of orders-pg to {green} has initiated. Switchover when using sequences may "
        "lead to extended downtime.",
        f"Switchover from primary/read replica orders-pg to {green} started.",
        f"Sequence sync for switchover of orders-pg to {green} has completed.",
        f"Switchover from primary/read replica orders-pg to {green} completed. Renamed orders-pg to orders-pg-old1 "
        f"and {green} to orders-pg.",
        "Switchover completed on blue/green deployment.",
        "Blue/green deployment deleted.",
    ]
    event = rds.describe_events(SourceType="blue-green-deployment", SourceIdentifier=deployment_id)["Events"][0]
    assert event["SourceArn"] == f"arn:aws:rds:us-east-1:123456789012:deployment:{deployment_id}"
    assert event["EventCategories"] == ["creation"]
    assert (
        rds.describe_events(SourceType="blue-green-deployment", EventCategories=["deletion"])["Events"][0]["Message"]
        == "Blue/green deployment deleted."
    )
    old = datetime.now(UTC) - timedelta(hours=2)
    assert (
        rds.describe_events(SourceType="blue-green-deployment", StartTime=old, EndTime=old + timedelta(hours=1))[
            "Events"
        ]
        == []
    )


def test_settings_changed_on_blue_after_creation_are_not_carried_over_except_tags(rds):
    role = "arn:aws:iam::123456789012:role/rds-s3-import"
    rds.add_role_to_db_instance(DBInstanceIdentifier="orders-pg", RoleArn=role, FeatureName="s3Import")
    ready = available(rds, "orders-pg", "16.4")
    old_resource_id = instance(rds, "orders-pg")["DbiResourceId"]
    rds.modify_db_instance(DBInstanceIdentifier="orders-pg", DeletionProtection=True, ApplyImmediately=True)
    rds.add_tags_to_resource(ResourceName=db_arn("orders-pg"), Tags=[{"Key": "owner", "Value": "dba"}])
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=ready["BlueGreenDeploymentIdentifier"])
    wait_status(rds, ready["BlueGreenDeploymentIdentifier"], "SWITCHOVER_COMPLETED")

    new, old = instance(rds, "orders-pg"), instance(rds, "orders-pg-old1")
    assert (new["DeletionProtection"], old["DeletionProtection"]) == (False, True)
    assert new["DbiResourceId"] != old_resource_id == old["DbiResourceId"]
    assert {t["Key"]: t["Value"] for t in new["TagList"]} == {t["Key"]: t["Value"] for t in old["TagList"]}
    assert {t["Key"] for t in new["TagList"]} == {"team", "cost-center", "bluegreen-bot:environment", "owner"}
    assert new["BackupRetentionPeriod"] == 7
    assert (new["AssociatedRoles"], [r["RoleArn"] for r in old["AssociatedRoles"]]) == ([], [role])
    assert (
        new["DBParameterGroups"][0]["DBParameterGroupName"],
        old["DBParameterGroups"][0]["DBParameterGroupName"],
    ) == (
        "default.postgres16",
        "orders-pg15",
    )


def test_delete_target_is_refused_while_green_is_deletion_protected(rds):
    ready = available(rds, "orders-pg")
    rds.modify_db_instance(DBInstanceIdentifier=green_of(ready), DeletionProtection=True, ApplyImmediately=True)
    with pytest.raises(ClientError) as caught:
        rds.delete_blue_green_deployment(
            BlueGreenDeploymentIdentifier=ready["BlueGreenDeploymentIdentifier"], DeleteTarget=True
        )
    assert code_of(caught) == "InvalidParameterCombination" and "deletion protection" in message_of(caught)
    assert deployment(rds, ready["BlueGreenDeploymentIdentifier"])["Status"] == "AVAILABLE"


def test_a_cluster_without_a_writer_is_refused_before_anything_is_created(rds):
    rds.create_db_cluster(
        DBClusterIdentifier="empty-aurora",
        Engine="aurora-postgresql",
        EngineVersion="15.4",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        DBClusterParameterGroupName="ledger-aurora-pg15",
    )
    with pytest.raises(ClientError) as caught:
        rds.create_blue_green_deployment(BlueGreenDeploymentName="bg-empty", Source=cluster_arn("empty-aurora"))

    assert code_of(caught) == "InvalidDBClusterStateFault" and "no writer instance" in message_of(caught)
    assert rds.describe_blue_green_deployments()["BlueGreenDeployments"] == []
