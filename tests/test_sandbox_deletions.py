"""Deleting instances and Aurora clusters in the sandbox, over HTTP with boto3: `deleting` over time, and the
refusals AWS documents (a cluster with live members, a final snapshot for a member, a second deletion)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sandbox.aws.deletions import LIVE_MEMBERS_MESSAGE, MEMBER_SNAPSHOT_MESSAGE
from sandbox.waiting import wait_until

CLUSTER, WRITER, READER = "ledger-aurora", "ledger-aurora-1", "ledger-aurora-2"


def instance_ids(rds) -> set[str]:
    return {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}


def cluster_ids(rds) -> set[str]:
    return {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]}


def status_of(rds, db_id: str) -> str:
    return rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]["DBInstanceStatus"]


def refused(call, **kwargs) -> dict:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return {**response["Error"], "HTTPStatusCode": response["ResponseMetadata"]["HTTPStatusCode"]}


def test_a_cluster_with_live_members_is_refused_and_accepted_once_every_member_is_deleting(rds, sandbox):
    error = refused(rds.delete_db_cluster, DBClusterIdentifier=CLUSTER, FinalDBSnapshotIdentifier="ledger-final")
    assert (error["Code"], error["HTTPStatusCode"], error["Message"]) == (
        "InvalidDBClusterStateFault",
        400,
        LIVE_MEMBERS_MESSAGE,
    )
    assert error["Message"] == "Cluster cannot be deleted, it still contains DB instances in non-deleting state."

    reader = rds.delete_db_instance(DBInstanceIdentifier=READER, SkipFinalSnapshot=True)["DBInstance"]
    assert reader["DBInstanceStatus"] == "deleting"
    # One member still live (the writer): still refused, and nothing about the cluster changed.
    error = refused(rds.delete_db_cluster, DBClusterIdentifier=CLUSTER, FinalDBSnapshotIdentifier="ledger-final")
    assert error["Code"] == "InvalidDBClusterStateFault"
    assert rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]["Status"] == "available"

    rds.delete_db_instance(DBInstanceIdentifier=WRITER, SkipFinalSnapshot=True)
    cluster = rds.delete_db_cluster(DBClusterIdentifier=CLUSTER, FinalDBSnapshotIdentifier="ledger-final")["DBCluster"]

    assert cluster["Status"] == "deleting"
    assert cluster_ids(rds) == {CLUSTER}  # still there while deleting, as on AWS
    wait_until(lambda: CLUSTER not in cluster_ids(rds), 10, what="the cluster to be gone")
    assert not {WRITER, READER} & instance_ids(rds)
    snapshots = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier="ledger-final")["DBClusterSnapshots"]
    assert [s["DBClusterIdentifier"] for s in snapshots] == [CLUSTER]
    states = [(e["resource"], e["state"]) for e in sandbox.control.timeline() if e["kind"] == "transition"]
    assert states.index((f"cluster:{CLUSTER}", "deleting")) < states.index((f"cluster:{CLUSTER}", "DELETED"))


def test_a_deleted_instance_is_deleting_for_a_while_and_cannot_be_deleted_twice(rds):
    deleted = rds.delete_db_instance(DBInstanceIdentifier="orders-pg", FinalDBSnapshotIdentifier="orders-final")
    assert deleted["DBInstance"]["DBInstanceStatus"] == "deleting"
    assert status_of(rds, "orders-pg") == "deleting"

    error = refused(rds.delete_db_instance, DBInstanceIdentifier="orders-pg", SkipFinalSnapshot=True)
    assert (error["Code"], error["HTTPStatusCode"]) == ("InvalidDBInstanceState", 400)
    assert "already being deleted" in error["Message"]

    wait_until(lambda: "orders-pg" not in instance_ids(rds), 10, what="orders-pg to be gone")
    snapshot = rds.describe_db_snapshots(DBSnapshotIdentifier="orders-final")["DBSnapshots"][0]
    assert snapshot["DBInstanceIdentifier"] == "orders-pg"


def test_a_cluster_member_takes_no_final_snapshot(rds):
    error = refused(rds.delete_db_instance, DBInstanceIdentifier=READER, FinalDBSnapshotIdentifier="reader-final")

    assert (error["Code"], error["HTTPStatusCode"], error["Message"]) == (
        "InvalidParameterCombination",
        400,
        MEMBER_SNAPSHOT_MESSAGE,
    )
    assert status_of(rds, READER) == "available"


def test_a_cluster_already_deleting_cannot_be_deleted_again(rds):
    for member in (READER, WRITER):
        rds.delete_db_instance(DBInstanceIdentifier=member, SkipFinalSnapshot=True)
    rds.delete_db_cluster(DBClusterIdentifier=CLUSTER, SkipFinalSnapshot=True)

    error = refused(rds.delete_db_cluster, DBClusterIdentifier=CLUSTER, SkipFinalSnapshot=True)

    assert (error["Code"], error["HTTPStatusCode"]) == ("InvalidDBClusterStateFault", 400)
