"""Blue/green deployments in the sandbox over time, driven through the RDS API over HTTP."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sandbox.aws.blue_green import CLUSTER_TASKS, INSTANCE_TASKS
from sandbox.waiting import wait_until
from tests.sandbox_fixtures import cluster_arn, db_arn


def deployment(rds, deployment_id: str) -> dict:
    return rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=deployment_id)["BlueGreenDeployments"][0]


def wait_status(rds, deployment_id: str, status: str, timeout: float = 5.0) -> dict:
    return wait_until(
        lambda: (d := deployment(rds, deployment_id))["Status"] == status and d, timeout, what=f"deployment {status}"
    )


def instance(rds, db_id: str) -> dict:
    return rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]


def create(rds, source_arn: str, name: str = "bg-test", **kwargs) -> dict:
    return rds.create_blue_green_deployment(BlueGreenDeploymentName=name, Source=source_arn, **kwargs)[
        "BlueGreenDeployment"
    ]


def detach(rds, proxy: str, instances=(), clusters=()) -> None:
    rds.deregister_db_proxy_targets(
        DBProxyName=proxy, DBInstanceIdentifiers=list(instances), DBClusterIdentifiers=list(clusters)
    )


def available_orders_deployment(rds) -> dict:
    detach(rds, "orders-proxy", instances=["orders-pg"])
    created = create(rds, db_arn("orders-pg"), TargetEngineVersion="16.3")
    return wait_status(rds, created["BlueGreenDeploymentIdentifier"], "AVAILABLE")


def code_of(caught: pytest.ExceptionInfo) -> str:
    return caught.value.response["Error"]["Code"]


def test_provisioning_runs_the_real_tasks_in_turn_then_available(rds, sandbox):
    detach(rds, "orders-proxy", instances=["orders-pg"])
    created = create(rds, db_arn("orders-pg"), TargetEngineVersion="16.3")
    deployment_id = created["BlueGreenDeploymentIdentifier"]
    assert created["Status"] == "PROVISIONING"
    assert [t["Name"] for t in created["Tasks"]] == list(INSTANCE_TASKS)
    assert [t["Status"] for t in created["Tasks"]] == ["IN_PROGRESS", "PENDING", "PENDING", "PENDING"]
    green_id = created["Target"].rsplit(":", 1)[1]
    assert green_id.startswith("orders-pg-green-") and len(green_id) == len("orders-pg-green-") + 6
    assert instance(rds, green_id)["DBInstanceStatus"] == "creating"

    available = wait_status(rds, deployment_id, "AVAILABLE")
    assert all(t["Status"] == "COMPLETED" for t in available["Tasks"])
    assert instance(rds, green_id)["DBInstanceStatus"] == "available"
    assert instance(rds, green_id)["EngineVersion"] == "16.3"

    task_events = [
        (e["resource"].rsplit("/", 1)[1], e["state"])
        for e in sandbox.control.timeline()
        if e["kind"] == "transition" and "/task/" in e["resource"]
    ]
    expected = [(name, state) for name in INSTANCE_TASKS for state in ("IN_PROGRESS", "COMPLETED")]
    assert task_events == expected


def test_switchover_renames_blue_to_old1_and_green_to_the_original_name(rds, sandbox):
    ready = available_orders_deployment(rds)
    deployment_id = ready["BlueGreenDeploymentIdentifier"]
    green_id = ready["Target"].rsplit(":", 1)[1]
    response = rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
    assert response["BlueGreenDeployment"]["Status"] == "SWITCHOVER_IN_PROGRESS"
    assert [d["Status"] for d in response["BlueGreenDeployment"]["SwitchoverDetails"]] == ["AVAILABLE"]
    assert deployment(rds, deployment_id)["Status"] == "SWITCHOVER_IN_PROGRESS"

    done = wait_status(rds, deployment_id, "SWITCHOVER_COMPLETED")
    assert done["Source"] == db_arn("orders-pg-old1")
    assert done["Target"] == db_arn("orders-pg")
    assert done["SwitchoverDetails"] == [
        {
            "SourceMember": db_arn("orders-pg-old1"),
            "TargetMember": db_arn("orders-pg"),
            "Status": "SWITCHOVER_COMPLETED",
        }
    ]
    new_primary = instance(rds, "orders-pg")
    assert new_primary["EngineVersion"] == "16.3"
    assert new_primary["Endpoint"]["Address"].startswith("orders-pg.")
    assert instance(rds, "orders-pg-old1")["EngineVersion"] == "15.7"
    with pytest.raises(ClientError):
        instance(rds, green_id)


def test_second_switchover_of_the_same_name_uses_old2(rds):
    first = available_orders_deployment(rds)
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=first["BlueGreenDeploymentIdentifier"])
    wait_status(rds, first["BlueGreenDeploymentIdentifier"], "SWITCHOVER_COMPLETED")
    second = create(rds, db_arn("orders-pg"), name="bg-second")
    wait_status(rds, second["BlueGreenDeploymentIdentifier"], "AVAILABLE")
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=second["BlueGreenDeploymentIdentifier"])
    done = wait_status(rds, second["BlueGreenDeploymentIdentifier"], "SWITCHOVER_COMPLETED")
    assert done["Source"] == db_arn("orders-pg-old2")
    assert instance(rds, "orders-pg-old1")["EngineVersion"] == "15.7"


def test_switchover_only_from_available_and_databases_frozen_during_it(rds):
    detach(rds, "orders-proxy", instances=["orders-pg"])
    created = create(rds, db_arn("orders-pg"))
    deployment_id = created["BlueGreenDeploymentIdentifier"]
    with pytest.raises(ClientError) as caught:
        rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
    assert code_of(caught) == "InvalidBlueGreenDeploymentStateFault"

    wait_status(rds, deployment_id, "AVAILABLE")
    green_id = created["Target"].rsplit(":", 1)[1]
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
    for db_id in ("orders-pg", green_id):
        with pytest.raises(ClientError) as caught:
            rds.modify_db_instance(DBInstanceIdentifier=db_id, BackupRetentionPeriod=3, ApplyImmediately=True)
        assert code_of(caught) == "InvalidDBInstanceState"
    wait_until(
        lambda: any(
            d["Status"] == "SWITCHOVER_IN_PROGRESS" for d in deployment(rds, deployment_id)["SwitchoverDetails"]
        ),
        timeout=5,
        what="members switching over",
    )
    wait_status(rds, deployment_id, "SWITCHOVER_COMPLETED")
    rds.modify_db_instance(DBInstanceIdentifier="orders-pg", BackupRetentionPeriod=3, ApplyImmediately=True)


def test_aurora_switchover_renames_cluster_and_members_consistently(rds):
    detach(rds, "ledger-proxy", clusters=["ledger-aurora"])
    created = create(rds, cluster_arn("ledger-aurora"))
    assert [t["Name"] for t in created["Tasks"]] == list(CLUSTER_TASKS)
    deployment_id = created["BlueGreenDeploymentIdentifier"]
    details = created["SwitchoverDetails"]
    assert [d["SourceMember"] for d in details] == [
        cluster_arn("ledger-aurora"),
        db_arn("ledger-aurora-1"),
        db_arn("ledger-aurora-2"),
    ]
    green_cluster = created["Target"].rsplit(":", 1)[1]
    assert rds.describe_db_clusters(DBClusterIdentifier=green_cluster)["DBClusters"][0]["Status"] == "creating"
    wait_status(rds, deployment_id, "AVAILABLE")
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id, SwitchoverTimeout=60)
    done = wait_status(rds, deployment_id, "SWITCHOVER_COMPLETED")
    assert [d["TargetMember"] for d in done["SwitchoverDetails"]] == [
        cluster_arn("ledger-aurora"),
        db_arn("ledger-aurora-1"),
        db_arn("ledger-aurora-2"),
    ]
    clusters = {c["DBClusterIdentifier"]: c for c in rds.describe_db_clusters()["DBClusters"]}
    assert set(clusters) == {"ledger-aurora", "ledger-aurora-old1"}
    members = {m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in clusters["ledger-aurora"]["DBClusterMembers"]}
    assert members == {"ledger-aurora-1": True, "ledger-aurora-2": False}
    old_members = {m["DBInstanceIdentifier"] for m in clusters["ledger-aurora-old1"]["DBClusterMembers"]}
    assert old_members == {"ledger-aurora-1-old1", "ledger-aurora-2-old1"}
    assert instance(rds, "ledger-aurora-1")["DBClusterIdentifier"] == "ledger-aurora"
    assert instance(rds, "ledger-aurora-2-old1")["DBClusterIdentifier"] == "ledger-aurora-old1"


def test_switchover_longer_than_its_timeout_fails_and_renames_nothing(rds, sandbox_client):
    ready = available_orders_deployment(rds)
    deployment_id = ready["BlueGreenDeploymentIdentifier"]
    sandbox_client.config(switchover=40.0, speed=100)  # 40 s at speed 100 (0.4 s) against a 30 s timeout (0.3 s)
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id, SwitchoverTimeout=30)
    failed = wait_status(rds, deployment_id, "SWITCHOVER_FAILED")
    assert "timed out" in failed["StatusDetails"]
    assert failed["Source"] == db_arn("orders-pg")
    assert instance(rds, "orders-pg")["EngineVersion"] == "15.7"


def test_injected_guardrail_failure_fails_the_switchover(rds, sandbox_client):
    ready = available_orders_deployment(rds)
    deployment_id = ready["BlueGreenDeploymentIdentifier"]
    sandbox_client.fail_next_switchover("Replica lag on green is too high", deployment_id=deployment_id)
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
    failed = wait_status(rds, deployment_id, "SWITCHOVER_FAILED")
    assert "Replica lag on green is too high" in failed["StatusDetails"]
    assert all(d["Status"] == "SWITCHOVER_FAILED" for d in failed["SwitchoverDetails"])
    assert instance(rds, "orders-pg")["EngineVersion"] == "15.7"


def test_delete_with_target_deletes_green_after_deleting(rds):
    ready = available_orders_deployment(rds)
    deployment_id = ready["BlueGreenDeploymentIdentifier"]
    green_id = ready["Target"].rsplit(":", 1)[1]
    deleting = rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id, DeleteTarget=True)
    assert deleting["BlueGreenDeployment"]["Status"] == "DELETING"
    assert deployment(rds, deployment_id)["Status"] == "DELETING"

    def gone() -> bool:
        try:
            deployment(rds, deployment_id)
        except ClientError as exc:
            return exc.response["Error"]["Code"] == "BlueGreenDeploymentNotFoundFault"
        return False

    wait_until(gone, timeout=5, what="deployment deleted")
    ids = {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
    assert green_id not in ids and "orders-pg" in ids


def test_delete_target_refused_after_switchover_but_plain_delete_keeps_old_blue(rds):
    ready = available_orders_deployment(rds)
    deployment_id = ready["BlueGreenDeploymentIdentifier"]
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
    wait_status(rds, deployment_id, "SWITCHOVER_COMPLETED")
    with pytest.raises(ClientError) as caught:
        rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id, DeleteTarget=True)
    assert code_of(caught) == "InvalidBlueGreenDeploymentStateFault"
    rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
    wait_until(lambda: rds.describe_blue_green_deployments()["BlueGreenDeployments"] == [], timeout=5, what="deleted")
    ids = {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
    assert {"orders-pg", "orders-pg-old1"} <= ids


def test_read_replicas_get_green_twins_and_follow_the_switchover(rds):
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier="orders-pg-replica", SourceDBInstanceIdentifier="orders-pg"
    )
    ready = available_orders_deployment(rds)
    sources = [d["SourceMember"] for d in ready["SwitchoverDetails"]]
    assert sources == [db_arn("orders-pg"), db_arn("orders-pg-replica")]
    assert ready["SwitchoverDetails"][1]["TargetMember"].startswith(db_arn("orders-pg-replica-green-"))
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=ready["BlueGreenDeploymentIdentifier"])
    done = wait_status(rds, ready["BlueGreenDeploymentIdentifier"], "SWITCHOVER_COMPLETED")
    assert [d["SourceMember"] for d in done["SwitchoverDetails"]] == [
        db_arn("orders-pg-old1"),
        db_arn("orders-pg-replica-old1"),
    ]
    assert instance(rds, "orders-pg-replica")["ReadReplicaSourceDBInstanceIdentifier"] == "orders-pg"
