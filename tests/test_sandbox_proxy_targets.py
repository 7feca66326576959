"""RDS Proxy targets in the sandbox, driven through the RDS API over HTTP."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sandbox.waiting import wait_until


def targets(rds, proxy: str, group: str | None = None) -> list[dict]:
    kwargs = {"DBProxyName": proxy} | ({"TargetGroupName": group} if group else {})
    return rds.describe_db_proxy_targets(**kwargs)["Targets"]


def health(rds, proxy: str, db_id: str) -> dict | None:
    return next((t["TargetHealth"] for t in targets(rds, proxy) if t["RdsResourceId"] == db_id), None)


def error_of(call, **kwargs) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_instance_target_shape(rds):
    [target] = targets(rds, "orders-proxy")
    assert target == {
        "Endpoint": "orders-pg.aaaaaaaaaa.us-east-1.rds.amazonaws.com",
        "RdsResourceId": "orders-pg",
        "Port": 5432,
        "Type": "RDS_INSTANCE",
        "Role": "READ_WRITE",
        "TargetHealth": {"State": "AVAILABLE"},
    }
    [mysql_target] = targets(rds, "billing-reporting-proxy")
    assert mysql_target["Port"] == 3306


def test_aurora_cluster_target_lists_the_cluster_and_each_member_with_its_role(rds):
    by_id = {t["RdsResourceId"]: t for t in targets(rds, "ledger-proxy")}
    assert by_id["ledger-aurora"]["Type"] == "TRACKED_CLUSTER"
    assert by_id["ledger-aurora-1"]["Role"] == "READ_WRITE"
    assert by_id["ledger-aurora-2"]["Role"] == "READ_ONLY"
    for member in ("ledger-aurora-1", "ledger-aurora-2"):
        assert by_id[member]["Type"] == "RDS_INSTANCE"
        assert by_id[member]["TrackedClusterId"] == "ledger-aurora"
        assert by_id[member]["Port"] == 5432
        assert by_id[member]["Endpoint"].startswith(member + ".")


def test_registered_target_is_registering_then_available(rds, sandbox):
    rds.deregister_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    assert targets(rds, "orders-proxy") == []
    registered = rds.register_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    assert registered["DBProxyTargets"][0]["TargetHealth"]["State"] == "REGISTERING"
    assert health(rds, "orders-proxy", "orders-pg")["State"] == "REGISTERING"
    wait_until(lambda: health(rds, "orders-proxy", "orders-pg")["State"] == "AVAILABLE", timeout=5, what="AVAILABLE")
    states = [
        e["state"]
        for e in sandbox.control.timeline()
        if e["kind"] == "transition" and e["resource"] == "proxy-target:orders-proxy/default/orders-pg"
    ]
    assert states == ["DEREGISTERED", "REGISTERING", "AVAILABLE"]


def test_pinned_health_shows_reason_until_faults_are_cleared(rds, sandbox_client):
    sandbox_client.pin_target_health("orders-proxy", "orders-pg", reason="AUTH_FAILURE")
    pinned = health(rds, "orders-proxy", "orders-pg")
    assert pinned["State"] == "UNAVAILABLE"
    assert pinned["Reason"] == "AUTH_FAILURE"
    assert pinned["Description"]
    sandbox_client.clear_faults()
    assert health(rds, "orders-proxy", "orders-pg") == {"State": "AVAILABLE"}


def test_cluster_registration_and_deregistration(rds):
    rds.deregister_db_proxy_targets(DBProxyName="ledger-proxy", DBClusterIdentifiers=["ledger-aurora"])
    assert targets(rds, "ledger-proxy") == []
    response = rds.register_db_proxy_targets(DBProxyName="ledger-proxy", DBClusterIdentifiers=["ledger-aurora"])
    assert sorted(t["RdsResourceId"] for t in response["DBProxyTargets"]) == [
        "ledger-aurora",
        "ledger-aurora-1",
        "ledger-aurora-2",
    ]


def test_targets_of_deleted_databases_disappear(rds):
    rds.delete_db_instance(DBInstanceIdentifier="billing-mysql", SkipFinalSnapshot=True)
    # The instance is `deleting` for a while (sandbox/aws/deletions.py); its targets go when it does.
    wait_until(lambda: targets(rds, "billing-proxy") == [], 10, what="billing-proxy's target of the deleted instance")
    assert targets(rds, "billing-proxy") == []
    assert targets(rds, "billing-reporting-proxy") == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"DBProxyName": "no-such-proxy", "DBInstanceIdentifiers": ["orders-pg"]}, ("DBProxyNotFoundFault", 404)),
        (
            {"DBProxyName": "orders-proxy", "TargetGroupName": "nope", "DBInstanceIdentifiers": ["orders-pg"]},
            ("DBProxyTargetGroupNotFoundFault", 404),
        ),
        ({"DBProxyName": "orders-proxy", "DBInstanceIdentifiers": ["no-such-db"]}, ("DBInstanceNotFound", 404)),
        ({"DBProxyName": "orders-proxy", "DBClusterIdentifiers": ["no-such-cluster"]}, ("DBClusterNotFoundFault", 404)),
        (
            {"DBProxyName": "orders-proxy", "DBInstanceIdentifiers": ["orders-pg"]},
            ("DBProxyTargetAlreadyRegisteredFault", 400),
        ),
    ],
)
def test_register_faults(rds, kwargs, expected):
    assert error_of(rds.register_db_proxy_targets, **kwargs) == expected


def test_deregister_and_describe_faults(rds):
    assert error_of(
        rds.deregister_db_proxy_targets, DBProxyName="orders-proxy", DBInstanceIdentifiers=["billing-mysql"]
    ) == ("DBProxyTargetNotFoundFault", 404)
    assert error_of(rds.describe_db_proxy_targets, DBProxyName="no-such-proxy") == ("DBProxyNotFoundFault", 404)
    assert error_of(rds.describe_db_proxy_targets, DBProxyName="orders-proxy", TargetGroupName="other") == (
        "DBProxyTargetGroupNotFoundFault",
        404,
    )
    assert targets(rds, "orders-proxy", group="default")[0]["RdsResourceId"] == "orders-pg"


def test_register_refuses_an_instance_in_an_unsupported_state(rds):
    rds.deregister_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    rds.modify_db_instance(
        DBInstanceIdentifier="orders-pg", EngineVersion="16.3", AllowMajorVersionUpgrade=True, ApplyImmediately=True
    )
    code, status = error_of(
        rds.register_db_proxy_targets, DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"]
    )
    assert (code, status) == ("InvalidDBInstanceState", 400)


def test_proxy_created_through_the_api_gets_a_listener(aws_client, rds, sandbox_client):
    ec2 = aws_client("ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    rds.create_db_proxy(
        DBProxyName="extra-proxy",
        EngineFamily="POSTGRESQL",
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"}],
        RoleArn="arn:aws:iam::123456789012:role/proxy",
        VpcSubnetIds=subnets,
    )
    wait_until(lambda: "extra-proxy" in sandbox_client.listeners(), timeout=5, what="a listener for extra-proxy")
