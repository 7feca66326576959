"""The two RDS Proxy personalities with Blue/Green Deployments: legacy (refuse) and native (follow)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sandbox.waiting import wait_until
from tests.sandbox_fixtures import cluster_arn, db_arn


def targets(rds, proxy: str) -> list[tuple[str, str]]:
    return [
        (t["RdsResourceId"], t["TargetHealth"]["State"])
        for t in rds.describe_db_proxy_targets(DBProxyName=proxy)["Targets"]
    ]


def status(rds, deployment_id: str) -> str:
    return rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=deployment_id)["BlueGreenDeployments"][0][
        "Status"
    ]


def wait_status(rds, deployment_id: str, wanted: str) -> None:
    wait_until(lambda: status(rds, deployment_id) == wanted, timeout=5, what=wanted)


@pytest.mark.parametrize(
    ("source", "code"),
    [
        (db_arn("orders-pg"), "SourceDatabaseNotSupportedFault"),
        (cluster_arn("ledger-aurora"), "SourceClusterNotSupportedFault"),
    ],
)
def test_legacy_refuses_a_source_registered_with_a_proxy(rds, source, code):
    with pytest.raises(ClientError) as caught:
        rds.create_blue_green_deployment(BlueGreenDeploymentName="bg", Source=source)
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == code
    assert "RDS Proxy" in error["Error"]["Message"]


def test_legacy_refuses_a_cluster_whose_member_is_a_proxy_target(rds):
    rds.deregister_db_proxy_targets(DBProxyName="ledger-proxy", DBClusterIdentifiers=["ledger-aurora"])
    rds.register_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["ledger-aurora-2"])
    with pytest.raises(ClientError) as caught:
        rds.create_blue_green_deployment(BlueGreenDeploymentName="bg", Source=cluster_arn("ledger-aurora"))
    assert caught.value.response["Error"]["Code"] == "SourceClusterNotSupportedFault"
    assert "orders-proxy" in caught.value.response["Error"]["Message"]


def test_legacy_workaround_and_the_proxy_keeps_tracking_old_blue(rds):
    rds.deregister_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    created = rds.create_blue_green_deployment(BlueGreenDeploymentName="bg", Source=db_arn("orders-pg"))
    deployment_id = created["BlueGreenDeployment"]["BlueGreenDeploymentIdentifier"]
    rds.register_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    wait_until(
        lambda: targets(rds, "orders-proxy") == [("orders-pg", "AVAILABLE")], timeout=5, what="blue re-registered"
    )
    wait_status(rds, deployment_id, "AVAILABLE")
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
    wait_status(rds, deployment_id, "SWITCHOVER_COMPLETED")
    assert targets(rds, "orders-proxy") == [("orders-pg-old1", "AVAILABLE")]


def test_native_creation_with_proxy_attached_and_proxy_follows_after_completion(rds, sandbox_client, sandbox):
    sandbox_client.config(proxy_mode="native", switchover=1.0)
    created = rds.create_blue_green_deployment(BlueGreenDeploymentName="bg", Source=db_arn("orders-pg"))
    deployment_id = created["BlueGreenDeployment"]["BlueGreenDeploymentIdentifier"]
    wait_status(rds, deployment_id, "AVAILABLE")
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
    assert targets(rds, "orders-proxy") == [("orders-pg", "AVAILABLE")]  # still blue during the switchover
    wait_status(rds, deployment_id, "SWITCHOVER_COMPLETED")
    assert targets(rds, "orders-proxy") == [("orders-pg", "REGISTERING")]
    [target] = rds.describe_db_proxy_targets(DBProxyName="orders-proxy")["Targets"]
    assert target["Endpoint"].startswith("orders-pg.")
    wait_until(
        lambda: targets(rds, "orders-proxy") == [("orders-pg", "AVAILABLE")], timeout=5, what="new primary AVAILABLE"
    )
    events = [e for e in sandbox.control.timeline() if e["kind"] == "transition"]
    completed = next(e["seq"] for e in events if e["state"] == "SWITCHOVER_COMPLETED")
    registering = next(
        e["seq"]
        for e in events
        if e["state"] == "REGISTERING" and e["resource"].startswith("proxy-target:orders-proxy")
    )
    assert registering > completed


def test_native_aurora_follow_lists_the_new_members(rds, sandbox_client):
    sandbox_client.config(proxy_mode="native")
    created = rds.create_blue_green_deployment(BlueGreenDeploymentName="bg", Source=cluster_arn("ledger-aurora"))
    deployment_id = created["BlueGreenDeployment"]["BlueGreenDeploymentIdentifier"]
    wait_status(rds, deployment_id, "AVAILABLE")
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
    wait_status(rds, deployment_id, "SWITCHOVER_COMPLETED")
    wait_until(
        lambda: (
            sorted(targets(rds, "ledger-proxy"))
            == [("ledger-aurora", "AVAILABLE"), ("ledger-aurora-1", "AVAILABLE"), ("ledger-aurora-2", "AVAILABLE")]
        ),
        timeout=5,
        what="cluster and members AVAILABLE on the new primary",
    )


def test_native_refuses_attaching_a_proxy_after_the_deployment_exists(rds, sandbox_client):
    sandbox_client.config(proxy_mode="native")
    rds.deregister_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    rds.create_blue_green_deployment(BlueGreenDeploymentName="bg", Source=db_arn("orders-pg"))
    with pytest.raises(ClientError) as caught:
        rds.register_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    assert caught.value.response["Error"]["Code"] == "InvalidDBInstanceState"
    assert "after the blue/green deployment" in caught.value.response["Error"]["Message"]

    rds.deregister_db_proxy_targets(DBProxyName="ledger-proxy", DBClusterIdentifiers=["ledger-aurora"])
    rds.create_blue_green_deployment(BlueGreenDeploymentName="bg-ledger", Source=cluster_arn("ledger-aurora"))
    with pytest.raises(ClientError) as caught:
        rds.register_db_proxy_targets(DBProxyName="ledger-proxy", DBClusterIdentifiers=["ledger-aurora"])
    assert caught.value.response["Error"]["Code"] == "InvalidDBClusterStateFault"
