"""What the sandbox models for rehearsals, through boto3 over HTTP and its control surface: automated backups and
restorable times, restores from a snapshot and to a point in time (instances, Aurora clusters and their new
instances), proxies created and deleted over time, and the faults on demand (a restore, a proxy creation, an
upgrade task failing with a reason). Every new resource's creation and deletion is on the timeline."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.aws.client import SandboxControlError
from sandbox.waiting import wait_until
from tests.sandbox_fixtures import ACCOUNT_ID, db_arn

REHEARSAL_TAG = {"Key": "bluegreen-bot:rehearsal", "Value": "run-1"}
PRODUCTION = ("db:orders-pg", "db:billing-mysql", "cluster:ledger-aurora", "db:ledger-aurora-1", "db:ledger-aurora-2")
PRODUCTION_PROXIES = ("orders-proxy", "billing-proxy", "billing-reporting-proxy", "ledger-proxy")


def error_of(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Message"]


def instance(rds: Any, db_id: str) -> dict[str, Any]:
    return rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]


def cluster(rds: Any, cluster_id: str) -> dict[str, Any]:
    return rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]


def states_of(sandbox: Any, resource: str) -> list[str]:
    return [e["state"] for e in sandbox.control.timeline() if e["kind"] == "transition" and e["resource"] == resource]


def wait_state(sandbox: Any, resource: str, state: str) -> list[str]:
    return wait_until(lambda: state in (s := states_of(sandbox, resource)) and s, 5, what=f"{resource} {state}")


def messages(rds: Any, source_type: str, source: str) -> list[str]:
    events = rds.describe_events(SourceType=source_type, SourceIdentifier=source)["Events"]
    return [e["Message"] for e in events]


def untouched_production(sandbox: Any) -> None:
    """No transition of a production database, proxy or proxy target: what a rehearsal must never cause."""
    touched = {
        e["resource"]
        for e in sandbox.control.timeline()
        if e["kind"] == "transition"
        and (e["resource"] in PRODUCTION or e["resource"].split(":", 1)[-1].split("/")[0] in PRODUCTION_PROXIES)
    }
    assert touched == set()


def restore_latest(rds: Any, source: str, target: str, **kwargs: Any) -> dict[str, Any]:
    """RestoreDBInstanceToPointInTime to the latest restorable time."""
    return rds.restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier=source, TargetDBInstanceIdentifier=target, UseLatestRestorableTime=True, **kwargs
    )["DBInstance"]


def latest_snapshot(rds: Any, db_id: str) -> dict[str, Any]:
    snapshots = rds.describe_db_snapshots(DBInstanceIdentifier=db_id, SnapshotType="automated")["DBSnapshots"]
    return max(snapshots, key=lambda s: s["SnapshotCreateTime"])


def proxy_settings(rds: Any, proxy: str) -> dict[str, Any]:
    """What a rehearsal copies from a production proxy."""
    found = rds.describe_db_proxies(DBProxyName=proxy)["DBProxies"][0]
    copied = ("EngineFamily", "Auth", "RoleArn", "VpcSubnetIds", "VpcSecurityGroupIds", "RequireTLS")
    auth = [{k: v for k, v in a.items() if k in ("AuthScheme", "SecretArn", "IAMAuth")} for a in found["Auth"]]
    return {key: found[key] for key in copied} | {"Auth": auth, "IdleClientTimeout": found["IdleClientTimeout"]}


def read_handshake(address: str) -> bytes:
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=2) as conn:
        return conn.makefile("rb").readline()


def handshake_or_refused(address: str) -> bytes | None:
    try:
        return read_handshake(address)
    except ConnectionRefusedError:
        return None


# ---------------------------------------------------------------------------------------- automated backups


def test_the_fleet_has_automated_backups_and_restorable_times(rds):
    for db_id in ("orders-pg", "billing-mysql"):
        snapshot = latest_snapshot(rds, db_id)
        assert snapshot["DBSnapshotIdentifier"].startswith(f"rds:{db_id}-")
        assert (snapshot["SnapshotType"], snapshot["Status"]) == ("automated", "available")
        assert snapshot["DbiResourceId"] == instance(rds, db_id)["DbiResourceId"]
        assert instance(rds, db_id)["LatestRestorableTime"] >= snapshot["SnapshotCreateTime"] - timedelta(seconds=1)
    # Aurora backs up the cluster volume: cluster snapshots, none for the member instances.
    assert rds.describe_db_snapshots(DBInstanceIdentifier="ledger-aurora-1")["DBSnapshots"] == []
    snapshots = rds.describe_db_cluster_snapshots(DBClusterIdentifier="ledger-aurora", SnapshotType="automated")
    assert [s["SnapshotType"] for s in snapshots["DBClusterSnapshots"]] == ["automated"]
    ledger = cluster(rds, "ledger-aurora")
    assert ledger["EarliestRestorableTime"] <= ledger["LatestRestorableTime"] <= datetime.now(UTC)


# ---------------------------------------------------------------------------------------- instance restores


def test_an_instance_restored_from_its_latest_automated_snapshot_is_created_backed_up_then_available(rds, sandbox):
    source = instance(rds, "orders-pg")
    snapshot = latest_snapshot(rds, "orders-pg")["DBSnapshotIdentifier"]

    answer = rds.restore_db_instance_from_db_snapshot(
        DBSnapshotIdentifier=snapshot,
        DBInstanceIdentifier="orders-pg-rh-1",
        DBInstanceClass=source["DBInstanceClass"],
        DBParameterGroupName="orders-pg15",
        VpcSecurityGroupIds=[g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]],
        Tags=[REHEARSAL_TAG],
    )["DBInstance"]

    assert answer["DBInstanceStatus"] == "creating" and "LatestRestorableTime" not in answer
    assert wait_state(sandbox, "db:orders-pg-rh-1", "available") == ["creating", "backing-up", "available"]
    clone = instance(rds, "orders-pg-rh-1")
    assert (clone["Engine"], clone["EngineVersion"], clone["DBInstanceClass"]) == ("postgres", "15.7", "db.r6g.large")
    assert clone["DBParameterGroups"][0]["DBParameterGroupName"] == "orders-pg15"
    assert (clone["BackupRetentionPeriod"], clone["DeletionProtection"], clone["MultiAZ"]) == (7, False, False)
    assert clone["DbiResourceId"] != source["DbiResourceId"] and "ReadReplicaSourceDBInstanceIdentifier" not in clone
    assert clone["TagList"] == [REHEARSAL_TAG]
    assert rds.list_tags_for_resource(ResourceName=clone["DBInstanceArn"])["TagList"] == [REHEARSAL_TAG]
    assert latest_snapshot(rds, "orders-pg-rh-1")["SnapshotType"] == "automated"  # the baseline backup
    assert "LatestRestorableTime" in clone
    assert f"Restored from snapshot {snapshot}." in messages(rds, "db-snapshot", snapshot)
    assert messages(rds, "db-instance", "orders-pg-rh-1") == [
        "DB instance created.",
        "Backing up DB instance.",
        "Finished DB instance backup.",
    ]
    untouched_production(sandbox)


def test_an_instance_restored_to_the_latest_restorable_time_takes_aws_defaults(rds, sandbox):
    source = instance(rds, "orders-pg")
    answer = restore_latest(rds, "orders-pg", "orders-pg-rh-2")

    assert answer["DBInstanceStatus"] == "creating"
    wait_state(sandbox, "db:orders-pg-rh-2", "available")
    clone = instance(rds, "orders-pg-rh-2")
    # Not copied: the parameter group (the engine's default), the tags.
    assert clone["DBParameterGroups"][0]["DBParameterGroupName"] == "default.postgres15"
    assert clone["TagList"] == [] and clone["AllocatedStorage"] == source["AllocatedStorage"]
    assert messages(rds, "db-instance", "orders-pg-rh-2")[:2] == [
        "DB instance created.",
        "Restored from DB instance orders-pg to orders-pg-rh-2.",
    ]


def test_point_in_time_restores_are_checked_as_aws_checks_them(rds):
    latest = instance(rds, "orders-pg")["LatestRestorableTime"]

    def pitr(**kwargs: Any) -> tuple[str, int, str]:
        base = {"SourceDBInstanceIdentifier": "orders-pg", "TargetDBInstanceIdentifier": "orders-pg-rh-3"}
        return error_of(rds.restore_db_instance_to_point_in_time, **(base | kwargs))

    assert pitr(RestoreTime=latest, UseLatestRestorableTime=True)[:2] == ("InvalidParameterCombination", 400)
    assert pitr()[:2] == ("InvalidParameterCombination", 400)
    assert pitr(RestoreTime=latest + timedelta(hours=1))[:2] == ("InvalidRestoreFault", 400)
    assert pitr(SourceDBInstanceIdentifier="nope", UseLatestRestorableTime=True)[:2] == ("DBInstanceNotFound", 404)
    assert pitr(SourceDBInstanceIdentifier="ledger-aurora-1", UseLatestRestorableTime=True)[0] == (
        "InvalidParameterCombination"
    )
    assert pitr(TargetDBInstanceIdentifier="billing-mysql", UseLatestRestorableTime=True)[:2] == (
        "DBInstanceAlreadyExists",
        400,
    )
    rds.modify_db_instance(DBInstanceIdentifier="billing-mysql", BackupRetentionPeriod=0, ApplyImmediately=True)
    assert pitr(SourceDBInstanceIdentifier="billing-mysql", UseLatestRestorableTime=True)[:2] == (
        "PointInTimeRestoreNotEnabled",
        400,
    )
    restore = rds.restore_db_instance_from_db_snapshot
    assert error_of(restore, DBSnapshotIdentifier="rds:nope", DBInstanceIdentifier="x")[:2] == (
        "DBSnapshotNotFound",
        404,
    )
    snapshot = latest_snapshot(rds, "orders-pg")["DBSnapshotIdentifier"]
    assert error_of(restore, DBSnapshotIdentifier=snapshot, DBInstanceIdentifier="x", DBParameterGroupName="nope")[
        :2
    ] == ("DBParameterGroupNotFound", 404)


# ----------------------------------------------------------------------------------------- cluster restores


def test_an_aurora_cluster_restored_to_a_point_in_time_gets_its_instances_once_available(rds, sandbox):
    sandbox.control.config(restoring=0.6)  # long enough to be refused an instance while `creating`, even on a busy CI
    ledger = cluster(rds, "ledger-aurora")
    answer = rds.restore_db_cluster_to_point_in_time(
        SourceDBClusterIdentifier="ledger-aurora",
        DBClusterIdentifier="ledger-aurora-rh-1",
        UseLatestRestorableTime=True,
        DBClusterParameterGroupName=ledger["DBClusterParameterGroup"],
        Tags=[REHEARSAL_TAG],
    )["DBCluster"]

    assert (answer["Status"], answer["DBClusterMembers"]) == ("creating", [])
    assert "LatestRestorableTime" not in answer
    member = {"DBClusterIdentifier": "ledger-aurora-rh-1", "Engine": "aurora-postgresql", "Tags": [REHEARSAL_TAG]}
    member["DBInstanceClass"] = "db.r6g.large"
    early = error_of(rds.create_db_instance, DBInstanceIdentifier="ledger-aurora-rh-1-1", **member)
    assert early[:2] == ("InvalidDBClusterStateFault", 400)
    wait_state(sandbox, "cluster:ledger-aurora-rh-1", "available")

    for name in ("ledger-aurora-rh-1-1", "ledger-aurora-rh-1-2"):
        created = rds.create_db_instance(DBInstanceIdentifier=name, **member)
        assert created["DBInstance"]["DBInstanceStatus"] == "creating"
    for name in ("ledger-aurora-rh-1-1", "ledger-aurora-rh-1-2"):
        assert wait_state(sandbox, f"db:{name}", "available") == ["creating", "available"]
    restored = cluster(rds, "ledger-aurora-rh-1")
    assert [(m["DBInstanceIdentifier"], m["IsClusterWriter"]) for m in restored["DBClusterMembers"]] == [
        ("ledger-aurora-rh-1-1", True),
        ("ledger-aurora-rh-1-2", False),
    ]
    assert (restored["Engine"], restored["EngineVersion"]) == ("aurora-postgresql", "15.4")
    assert restored["DBClusterParameterGroup"] == "ledger-aurora-pg15" and restored["TagList"] == [REHEARSAL_TAG]
    assert "LatestRestorableTime" in restored and restored["BackupRetentionPeriod"] == 1
    snapshots = rds.describe_db_cluster_snapshots(DBClusterIdentifier="ledger-aurora-rh-1", SnapshotType="automated")
    assert len(snapshots["DBClusterSnapshots"]) == 1
    assert messages(rds, "db-cluster", "ledger-aurora-rh-1") == ["DB cluster created."]
    untouched_production(sandbox)


def test_an_aurora_cluster_restored_from_its_automated_snapshot_takes_the_default_cluster_group(rds, sandbox):
    snapshot = rds.describe_db_cluster_snapshots(DBClusterIdentifier="ledger-aurora", SnapshotType="automated")
    name = snapshot["DBClusterSnapshots"][0]["DBClusterSnapshotIdentifier"]
    answer = rds.restore_db_cluster_from_snapshot(
        DBClusterIdentifier="ledger-aurora-rh-2", SnapshotIdentifier=name, Engine="aurora-postgresql"
    )["DBCluster"]

    assert answer["Status"] == "creating"
    assert answer["DBClusterParameterGroup"] == "default.aurora-postgresql15"
    assert answer["VpcSecurityGroups"] and answer["DBClusterMembers"] == []
    wait_state(sandbox, "cluster:ledger-aurora-rh-2", "available")
    twice = {"DBClusterIdentifier": "ledger-aurora-rh-2", "SnapshotIdentifier": name, "Engine": "aurora-postgresql"}
    assert error_of(rds.restore_db_cluster_from_snapshot, **twice)[:2] == ("DBClusterAlreadyExistsFault", 400)
    missing = twice | {"DBClusterIdentifier": "x", "SnapshotIdentifier": "nope"}
    assert error_of(rds.restore_db_cluster_from_snapshot, **missing)[:2] == ("DBClusterSnapshotNotFoundFault", 404)
    no_source = {"SourceDBClusterIdentifier": "nope", "DBClusterIdentifier": "x", "UseLatestRestorableTime": True}
    assert error_of(rds.restore_db_cluster_to_point_in_time, **no_source)[:2] == ("DBClusterNotFoundFault", 404)


# ------------------------------------------------------------------------------------------------- proxies


def test_a_proxy_copying_orders_proxy_serves_the_registered_clone_and_everything_is_deleted(rds, sandbox):
    restore_latest(rds, "orders-pg", "orders-pg-rh-1", Tags=[REHEARSAL_TAG])
    settings = proxy_settings(rds, "orders-proxy")
    created = rds.create_db_proxy(DBProxyName="orders-pg-rh-1", Tags=[REHEARSAL_TAG], **settings)["DBProxy"]

    assert created["Status"] == "creating"
    assert {k: created[k] for k in settings if k != "Auth"} == {k: v for k, v in settings.items() if k != "Auth"}
    groups = rds.describe_db_proxy_target_groups(DBProxyName="orders-pg-rh-1")["TargetGroups"]
    assert [(g["TargetGroupName"], g["IsDefault"]) for g in groups] == [("default", True)]
    assert rds.list_tags_for_resource(ResourceName=created["DBProxyArn"])["TagList"] == [REHEARSAL_TAG]
    # Registered while the proxy and the clone are still being created: REGISTERING until both are ready.
    rds.register_db_proxy_targets(DBProxyName="orders-pg-rh-1", DBInstanceIdentifiers=["orders-pg-rh-1"])
    wait_state(sandbox, "proxy:orders-pg-rh-1", "available")
    wait_state(sandbox, "proxy-target:orders-pg-rh-1/default/orders-pg-rh-1", "AVAILABLE")
    assert states_of(sandbox, "db:orders-pg-rh-1")[-1] in ("backing-up", "available")
    listener = sandbox.control.listeners()["orders-pg-rh-1"]
    ok = b"OK orders-pg-rh-1 orders-pg-rh-1\n"
    wait_until(lambda: read_handshake(listener) == ok, 5, what="the new proxy routing to the clone")

    assert rds.delete_db_proxy(DBProxyName="orders-pg-rh-1")["DBProxy"]["Status"] == "deleting"
    assert error_of(rds.delete_db_proxy, DBProxyName="orders-pg-rh-1")[:2] == ("InvalidDBProxyStateFault", 400)
    # Being deleted, the proxy answers without an OK line; once gone, its listener refuses.
    wait_until(lambda: handshake_or_refused(listener) in (b"", None), 5, what="the deleted proxy routing nothing")
    wait_state(sandbox, "proxy:orders-pg-rh-1", "DELETED")
    assert error_of(rds.describe_db_proxies, DBProxyName="orders-pg-rh-1")[:2] == ("DBProxyNotFoundFault", 404)
    wait_until(lambda: "orders-pg-rh-1" not in sandbox.control.listeners(), 5, what="the listener closed")
    wait_state(sandbox, "db:orders-pg-rh-1", "available")
    rds.delete_db_instance(DBInstanceIdentifier="orders-pg-rh-1", SkipFinalSnapshot=True)
    assert wait_state(sandbox, "db:orders-pg-rh-1", "DELETED")[-2:] == ["deleting", "DELETED"]
    assert rds.describe_db_snapshots(DBInstanceIdentifier="orders-pg-rh-1")["DBSnapshots"] == []
    assert states_of(sandbox, "proxy:orders-pg-rh-1") == ["creating", "available", "deleting", "DELETED"]
    assert messages(rds, "db-proxy", "orders-pg-rh-1") == [
        "RDS created DB proxy orders-pg-rh-1.",
        "RDS deleted DB proxy orders-pg-rh-1.",
    ]
    untouched_production(sandbox)


def test_proxy_creation_errors_are_aws_errors(rds, monkeypatch):
    settings = proxy_settings(rds, "orders-proxy")
    assert error_of(rds.create_db_proxy, DBProxyName="orders-proxy", **settings)[:2] == (
        "DBProxyAlreadyExistsFault",
        400,
    )
    wrong = settings | {"VpcSubnetIds": ["subnet-00000000000000000", settings["VpcSubnetIds"][0]]}
    assert error_of(rds.create_db_proxy, DBProxyName="x", **wrong)[:2] == ("InvalidSubnet", 400)
    monkeypatch.setenv("MOTO_RDS_PROXY_LIMIT", str(len(PRODUCTION_PROXIES)))
    assert error_of(rds.create_db_proxy, DBProxyName="x", **settings)[:2] == ("DBProxyQuotaExceededFault", 400)


# -------------------------------------------------------------------------------------------------- faults


def test_a_failing_restore_is_accepted_then_ends_in_restore_error_with_the_reason(rds, sandbox, sandbox_client):
    reason = "the backup of orders-pg could not be read"
    assert sandbox_client.fail_next_restore(reason, name="orders-pg-rh-1")["reason"] == reason
    with pytest.raises(SandboxControlError, match="HTTP 400"):
        sandbox_client.fail_next_restore(reason, status="melted")

    answer = restore_latest(rds, "orders-pg", "orders-pg-rh-1")

    assert answer["DBInstanceStatus"] == "creating"
    assert wait_state(sandbox, "db:orders-pg-rh-1", "restore-error") == ["creating", "restore-error"]
    assert "LatestRestorableTime" not in instance(rds, "orders-pg-rh-1")
    assert messages(rds, "db-instance", "orders-pg-rh-1") == [
        "DB instance put into restore-error state. RDS recommends that you initiate a point-in-time-restore.",
        f"The DB instance creation failed. {reason}",
    ]
    final = {"DBInstanceIdentifier": "orders-pg-rh-1", "FinalDBSnapshotIdentifier": "orders-pg-rh-1-final"}
    assert error_of(rds.delete_db_instance, **final)[:2] == ("InvalidDBInstanceState", 400)
    rds.delete_db_instance(DBInstanceIdentifier="orders-pg-rh-1", SkipFinalSnapshot=True)
    wait_state(sandbox, "db:orders-pg-rh-1", "DELETED")


def test_failing_restores_show_the_status_asked_for_instances_and_clusters(rds, sandbox):
    sandbox.control.fail_next_restore("temporary tables", status="incompatible-restore", name="billing-rh")
    sandbox.control.fail_next_restore("the cluster volume could not be restored", name="ledger-rh")
    restore_latest(rds, "billing-mysql", "billing-rh")
    rds.restore_db_cluster_to_point_in_time(
        SourceDBClusterIdentifier="ledger-aurora", DBClusterIdentifier="ledger-rh", UseLatestRestorableTime=True
    )

    assert wait_state(sandbox, "db:billing-rh", "incompatible-restore") == ["creating", "incompatible-restore"]
    assert wait_state(sandbox, "cluster:ledger-rh", "failed") == ["creating", "failed"]
    assert messages(rds, "db-cluster", "ledger-rh") == [
        "You can't create the DB cluster because of incompatible resources. the cluster volume could not be restored."
    ]
    assert sandbox.control.state()["faults"]["restores"] == []


def test_a_failing_proxy_creation_ends_incompatible_network_and_can_only_be_deleted(rds, sandbox, sandbox_client):
    settings = proxy_settings(rds, "orders-proxy")
    sandbox_client.fail_next_proxy_creation("no free IP address in the subnets", name="orders-rh")
    sandbox.control.fail_next_proxy_creation("proxy quota of the account reached", "insufficient-resource-limits")
    with pytest.raises(ValueError, match="incompatible-network"):
        sandbox.control.fail_next_proxy_creation("x", status="available")

    rds.create_db_proxy(DBProxyName="orders-rh", **settings)
    rds.create_db_proxy(DBProxyName="other-rh", **settings)

    assert wait_state(sandbox, "proxy:orders-rh", "incompatible-network (no free IP address in the subnets)")
    wait_state(sandbox, "proxy:other-rh", "insufficient-resource-limits (proxy quota of the account reached)")
    statuses = {p["DBProxyName"]: p["Status"] for p in rds.describe_db_proxies()["DBProxies"]}
    assert (statuses["orders-rh"], statuses["other-rh"]) == ("incompatible-network", "insufficient-resource-limits")
    subnets = ", ".join(settings["VpcSubnetIds"])
    assert messages(rds, "db-proxy", "orders-rh") == [
        f"RDS failed to provision capacity for proxy orders-rh because there aren't enough IP addresses available "
        f"in your subnets: {subnets}. To fix the issue, make sure that your subnets have the minimum number of unused "
        "IP addresses as recommended in the RDS Proxy documentation."
    ]
    register = {"DBProxyName": "orders-rh", "DBInstanceIdentifiers": ["orders-pg"]}
    assert error_of(rds.register_db_proxy_targets, **register)[:2] == ("InvalidDBProxyStateFault", 400)
    rds.delete_db_proxy(DBProxyName="orders-rh")
    wait_state(sandbox, "proxy:orders-rh", "DELETED")


def test_the_upgrade_task_of_a_clones_deployment_fails_with_the_reason(rds, sandbox, sandbox_client):
    reason = "the extension postgis 3.1 is not supported by PostgreSQL 16.4"
    armed = sandbox_client.fail_provisioning("orders-pg-rh-1", reason, task="DB_ENGINE_VERSION_UPGRADE")
    assert armed["armed"] == "the next deployment of source"
    restore_latest(rds, "orders-pg", "orders-pg-rh-1", DBParameterGroupName="orders-pg15")
    wait_state(sandbox, "db:orders-pg-rh-1", "available")

    created = rds.create_blue_green_deployment(
        BlueGreenDeploymentName="orders-pg-rh-1", Source=db_arn("orders-pg-rh-1"), TargetEngineVersion="16.4"
    )["BlueGreenDeployment"]

    name = f"blue-green:{created['BlueGreenDeploymentIdentifier']}/task/DB_ENGINE_VERSION_UPGRADE"
    assert wait_state(sandbox, name, "FAILED") == ["IN_PROGRESS", "FAILED"]
    found = rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=created["BlueGreenDeploymentIdentifier"])
    deployment = found["BlueGreenDeployments"][0]
    tasks = {t["Name"]: t["Status"] for t in deployment["Tasks"]}
    assert (tasks["CREATING_READ_REPLICA_OF_SOURCE"], tasks["DB_ENGINE_VERSION_UPGRADE"]) == ("COMPLETED", "FAILED")
    assert deployment["Status"] == "PROVISIONING" and deployment["StatusDetails"] == f"Creation failed: {reason}"
    events = rds.describe_events(SourceType="blue-green-deployment")["Events"]
    assert [e["Message"] for e in events] == [f"Creation of blue/green deployment failed because {reason}."]
    with pytest.raises(SandboxControlError, match="task must be one of"):
        sandbox_client.fail_provisioning("orders-pg-rh-1", reason, task="UPGRADE")
    assert ACCOUNT_ID in created["Source"]
