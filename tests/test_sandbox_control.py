"""The sandbox's control surface: faults, timeline, listeners, metrics, reset, the CLI and the aws CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from sandbox.waiting import wait_until
from tests.sandbox_fixtures import db_arn

VENV_BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("code", "status", "expected_status"),
    [("Throttling", None, 400), ("InternalFailure", None, 500), ("ServiceUnavailable", None, 503), ("Oops", 409, 409)],
)
def test_injected_api_fault_fails_the_next_call_only(rds, sandbox_client, code, status, expected_status):
    sandbox_client.inject_fault("DescribeDBProxyTargets", code, count=1, status=status)
    with pytest.raises(ClientError) as caught:
        rds.describe_db_proxy_targets(DBProxyName="orders-proxy")
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == expected_status
    assert rds.describe_db_proxy_targets(DBProxyName="orders-proxy")["Targets"]
    faulted = [e for e in sandbox_client.timeline() if e["kind"] == "call" and e["code"] == code]
    assert faulted[0]["status"] == expected_status
    assert faulted[0]["params"] == {"DBProxyName": "orders-proxy"}


def test_retrying_client_gets_through_after_throttling(aws_client, sandbox_client):
    sandbox_client.inject_fault("DescribeDBInstances", "Throttling", count=1)
    retrying = aws_client("rds", max_attempts=3)
    assert retrying.describe_db_instances()["DBInstances"]
    calls = [e for e in sandbox_client.timeline() if e.get("action") == "DescribeDBInstances"]
    assert [c["code"] for c in calls] == ["Throttling", None]


def test_drop_fault_closes_the_connection_without_a_response(rds, sandbox_client):
    sandbox_client.inject_fault("DescribeDBProxies", "drop")
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        rds.describe_db_proxies()
    assert rds.describe_db_proxies()["DBProxies"]


def test_timeline_records_calls_with_main_params_and_transitions_in_order(rds, sandbox_client):
    start = sandbox_client.timeline()[-1]["seq"] if sandbox_client.timeline() else 0
    rds.deregister_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    entries = sandbox_client.timeline(since=start)
    assert [e["kind"] for e in entries] == ["call", "transition"]
    call, transition = entries
    assert call["action"] == "DeregisterDBProxyTargets"
    assert call["params"] == {"DBProxyName": "orders-proxy", "DBInstanceIdentifiers": ["orders-pg"]}
    assert (call["status"], call["code"]) == (200, None)
    assert transition["resource"] == "proxy-target:orders-proxy/default/orders-pg"
    assert call["t"] <= transition["t"] <= time.monotonic()
    assert sandbox_client.timeline(since=transition["seq"]) == []


def test_config_and_reset(rds, sandbox_client):
    state = sandbox_client.config(proxy_mode="native", speed=4, deleting=9.0)
    assert (state["proxy_mode"], state["speed"], state["durations"]["deleting"]) == ("native", 4.0, 9.0)
    rds.deregister_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    sandbox_client.inject_fault("DescribeDBInstances", "Throttling", count=5)
    state = sandbox_client.reset()
    assert (state["proxy_mode"], state["speed"]) == ("legacy", 1.0)
    assert state["faults"]["api"] == []
    assert sandbox_client.timeline() == []
    assert rds.describe_db_proxy_targets(DBProxyName="orders-proxy")["Targets"][0]["RdsResourceId"] == "orders-pg"


def read_handshake(address: str) -> bytes:
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=2) as conn:
        return conn.makefile("rb").readline()


def test_listener_handshake_follows_target_health(rds, sandbox_client):
    listeners = sandbox_client.listeners()
    assert set(listeners) == {"orders-proxy", "billing-proxy", "billing-reporting-proxy", "ledger-proxy"}
    assert read_handshake(listeners["orders-proxy"]) == b"OK orders-proxy orders-pg\n"
    assert read_handshake(listeners["ledger-proxy"]) == b"OK ledger-proxy ledger-aurora-1\n"

    host, port = listeners["orders-proxy"].split(":")
    held = socket.create_connection((host, int(port)), timeout=2)
    assert held.makefile("rb").readline() == b"OK orders-proxy orders-pg\n"
    rds.deregister_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    assert held.recv(16) == b""  # the proxy dropped the established connection
    held.close()
    wait_until(lambda: read_handshake(listeners["orders-proxy"]) == b"", timeout=5, what="closed without an OK line")

    rds.register_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    wait_until(lambda: read_handshake(listeners["orders-proxy"]).startswith(b"OK "), timeout=5, what="OK again")


def test_proxy_metrics_reach_cloudwatch(aws_client, rds, sandbox_client):
    cloudwatch = aws_client("cloudwatch")

    def latest(metric: str, proxy: str) -> list[float]:
        now = datetime.now(UTC)
        result = cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/RDS",
                            "MetricName": metric,
                            "Dimensions": [{"Name": "ProxyName", "Value": proxy}],
                        },
                        "Period": 1,
                        "Stat": "Maximum",
                    },
                }
            ],
            StartTime=now - timedelta(seconds=2),
            EndTime=now + timedelta(seconds=1),
        )
        return result["MetricDataResults"][0]["Values"]

    wait_until(lambda: latest("AvailabilityPercentage", "orders-proxy") == [100.0], timeout=4, what="100 %")
    assert latest("ClientConnections", "orders-proxy")[0] > 0
    sandbox_client.pin_target_health("orders-proxy", "orders-pg", reason="CONNECTION_FAILED")
    wait_until(lambda: 0.0 in latest("AvailabilityPercentage", "orders-proxy"), timeout=4, what="0 %")
    wait_until(lambda: 0.0 in latest("DatabaseConnections", "orders-proxy"), timeout=4, what="0 connections")


def test_aws_cli_sees_the_fleet_and_the_lifecycle(rds, sandbox, sandbox_client):
    sandbox_client.config(provisioning_task=1.2)  # each CLI run takes about a second
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox", "AWS_PAGER": ""}
    base = [str(VENV_BIN / "aws"), "--endpoint-url", sandbox.endpoint, "--region", "us-east-1", "--output", "text"]

    def aws(*args: str) -> str:
        return subprocess.run([*base, *args], env=env, check=True, capture_output=True, text=True, timeout=30).stdout

    targets = aws("rds", "describe-db-proxy-targets", "--db-proxy-name", "orders-proxy")
    assert "orders-pg" in targets and "AVAILABLE" in targets
    rds.deregister_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    created = aws(
        "rds", "create-blue-green-deployment", "--blue-green-deployment-name", "cli", "--source", db_arn("orders-pg")
    )
    assert "PROVISIONING" in created and "CREATING_READ_REPLICA_OF_SOURCE" in created
    status_query = ("rds", "describe-blue-green-deployments", "--query", "BlueGreenDeployments[0].Status")
    assert aws(*status_query).strip() == "PROVISIONING"
    wait_until(
        lambda: rds.describe_blue_green_deployments()["BlueGreenDeployments"][0]["Status"] == "AVAILABLE",
        timeout=10,
        what="AVAILABLE",
    )
    assert aws(*status_query).strip() == "AVAILABLE"


def test_run_sandbox_cli_starts_prints_the_banner_and_stops_on_sigterm():
    code = "import sys; from sandbox.cli import run_sandbox; sys.exit(run_sandbox(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--speed", "10", "--proxy-mode", "native"],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        started = time.monotonic()
        while not any(line.startswith("Control:") for line in lines):
            line = process.stdout.readline()
            assert line, f"sandbox exited early: {process.stderr.read()}"
            lines.append(line)
        assert time.monotonic() - started < 20  # a bound, with room for a loaded CI machine (moto imports in ~2 s)
        banner = "".join(lines)
        assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in banner
        assert "personality: native" in banner
        assert "orders-proxy -> orders-pg  listener 127.0.0.1:" in banner
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_proxies_are_paged_as_aws_pages_them(rds, sandbox):
    model = rds.describe_db_proxies(DBProxyName="billing-proxy")["DBProxies"][0]
    for n in range(25):
        rds.create_db_proxy(
            DBProxyName=f"page-proxy-{n:02d}",
            EngineFamily="MYSQL",
            Auth=[{"AuthScheme": "SECRETS", "SecretArn": model["Auth"][0]["SecretArn"]}],
            RoleArn=model["RoleArn"],
            VpcSubnetIds=model["VpcSubnetIds"],
        )
    first = rds.describe_db_proxies(MaxRecords=20)
    assert len(first["DBProxies"]) == 20 and first["Marker"]
    rest = rds.describe_db_proxies(MaxRecords=20, Marker=first["Marker"])
    assert "Marker" not in rest or not rest["Marker"]
    names = [p["DBProxyName"] for p in first["DBProxies"] + rest["DBProxies"]]
    assert len(names) == len(set(names)) == 25 + 4  # the fleet's four proxies too
    assert len(rds.describe_db_proxies()["DBProxies"]) == 29  # one page: the default is 100
