"""Engine upgrades through ModifyDBInstance / ModifyDBCluster in the sandbox."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sandbox.aws.upgrades import MAJOR_UPGRADE_FLAG_MESSAGE, major_version
from sandbox.waiting import wait_until


def instance(rds, db_id: str) -> dict:
    return rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]


def cluster(rds, cluster_id: str) -> dict:
    return rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]


@pytest.mark.parametrize(
    ("db_id", "version"),
    [("orders-pg", "16.3"), ("billing-mysql", "8.4.3")],
)
def test_major_upgrade_without_the_flag_is_refused(rds, db_id, version):
    with pytest.raises(ClientError) as caught:
        rds.modify_db_instance(DBInstanceIdentifier=db_id, EngineVersion=version, ApplyImmediately=True)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterCombination"
    assert caught.value.response["Error"]["Message"] == MAJOR_UPGRADE_FLAG_MESSAGE


def test_instance_upgrade_is_upgrading_then_available_at_the_new_version(rds):
    response = rds.modify_db_instance(
        DBInstanceIdentifier="orders-pg", EngineVersion="16.3", AllowMajorVersionUpgrade=True, ApplyImmediately=True
    )
    assert response["DBInstance"]["DBInstanceStatus"] == "upgrading"
    assert instance(rds, "orders-pg")["EngineVersion"] == "15.7"
    wait_until(lambda: instance(rds, "orders-pg")["DBInstanceStatus"] == "available", timeout=5, what="available")
    assert instance(rds, "orders-pg")["EngineVersion"] == "16.3"


def test_minor_upgrade_needs_no_flag(rds):
    rds.modify_db_instance(DBInstanceIdentifier="billing-mysql", EngineVersion="8.0.40", ApplyImmediately=True)
    wait_until(lambda: instance(rds, "billing-mysql")["EngineVersion"] == "8.0.40", timeout=5, what="8.0.40")


def test_cluster_upgrade_moves_cluster_and_members(rds, sandbox):
    sandbox.control.config(upgrading=1.5)  # long enough to see `upgrading` on a loaded machine
    with pytest.raises(ClientError) as caught:
        rds.modify_db_cluster(DBClusterIdentifier="ledger-aurora", EngineVersion="16.4", ApplyImmediately=True)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterCombination"
    rds.modify_db_cluster(
        DBClusterIdentifier="ledger-aurora", EngineVersion="16.4", AllowMajorVersionUpgrade=True, ApplyImmediately=True
    )
    assert cluster(rds, "ledger-aurora")["Status"] == "upgrading"
    assert instance(rds, "ledger-aurora-1")["DBInstanceStatus"] == "upgrading"
    wait_until(lambda: cluster(rds, "ledger-aurora")["Status"] == "available", timeout=10, what="cluster available")
    assert cluster(rds, "ledger-aurora")["EngineVersion"] == "16.4"
    for member in ("ledger-aurora-1", "ledger-aurora-2"):
        assert instance(rds, member)["EngineVersion"] == "16.4"
        assert instance(rds, member)["DBInstanceStatus"] == "available"


@pytest.mark.parametrize(
    ("engine", "version", "major"),
    [("postgres", "15.7", "15"), ("postgres", "9.6.24", "9.6"), ("mysql", "8.0.36", "8.0"), ("mysql", "5.7.44", "5.7")],
)
def test_major_version_rule(engine, version, major):
    assert major_version(engine, version) == major
