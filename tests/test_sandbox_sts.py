"""The sandbox's STS over HTTP, with boto3: credentials that expire as granted, `DurationSeconds` as AWS checks it,
the `credential_lifetime` override, and the refusal of calls signed with an expired session token."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.aws.client import SandboxClient, SandboxControlError
from sandbox.aws.sts import EXPIRED_MESSAGE
from sandbox.waiting import wait_until
from tests.sandbox_fixtures import ACCOUNT_ID, REGION

ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/bluegreen-bot"
TRUST_ANYONE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
)


def assume(aws_client: Any, **extra: Any) -> dict[str, Any]:
    return aws_client("sts").assume_role(RoleArn=ROLE_ARN, RoleSessionName="bluegreen-bot", **extra)["Credentials"]


def client_with(endpoint: str, service: str, credentials: dict[str, Any]) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def granted_seconds(credentials: dict[str, Any], issued: dt.datetime) -> float:
    return (credentials["Expiration"] - issued).total_seconds()


def refusal(call: Any) -> ClientError | None:
    try:
        call()
    except ClientError as exc:
        return exc
    return None


def test_a_call_signed_with_an_expired_session_token_is_refused(sandbox, aws_client):
    sandbox.control.config(credential_lifetime=3)
    credentials = assume(aws_client)
    rds = client_with(sandbox.endpoint, "rds", credentials)
    cloudwatch = client_with(sandbox.endpoint, "cloudwatch", credentials)

    assert rds.describe_db_instances(DBInstanceIdentifier="orders-pg")["DBInstances"]
    expired = wait_until(
        lambda: refusal(lambda: rds.describe_db_instances(DBInstanceIdentifier="orders-pg")),
        10,
        interval=0.1,
        what="a call with the expired session token to be refused",
    )
    refused_at = dt.datetime.now(dt.UTC)

    assert refused_at >= credentials["Expiration"]  # refused because it expired, not before
    assert expired.response["Error"] == {"Type": "Sender", "Code": "ExpiredToken", "Message": EXPIRED_MESSAGE}
    assert expired.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    json_refusal = refusal(lambda: cloudwatch.list_metrics())  # a JSON-protocol service, the same token
    assert json_refusal is not None
    assert json_refusal.response["Error"]["Code"] == "ExpiredTokenException"
    assert json_refusal.response["Error"]["Message"] == EXPIRED_MESSAGE
    assert json_refusal.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The sandbox's static keys carry no session token and keep working; so does a fresh grant.
    assert aws_client("rds", max_attempts=1).describe_db_instances(DBInstanceIdentifier="orders-pg")["DBInstances"]
    assert client_with(sandbox.endpoint, "rds", assume(aws_client)).describe_db_proxies()["DBProxies"]
    refused = [e for e in sandbox.control.timeline() if e["kind"] == "call" and e["status"] == 400]
    assert [(e["action"], e["code"]) for e in refused] == [
        ("DescribeDBInstances", "ExpiredToken"),
        ("ListMetrics", "ExpiredTokenException"),
    ]


def test_assume_role_grants_duration_seconds_scaled_by_the_speed_factor(sandbox, aws_client):
    issued = dt.datetime.now(dt.UTC)
    default = assume(aws_client)
    asked = assume(aws_client, DurationSeconds=900)
    sandbox.control.config(speed=10)
    scaled = assume(aws_client, DurationSeconds=7200)

    # Expiration is reported in whole seconds (as in the AWS CLI's example): up to a second short of the grant.
    assert 3599 <= granted_seconds(default, issued) <= 3601
    assert 899 <= granted_seconds(asked, issued) <= 901
    assert 719 <= granted_seconds(scaled, issued) <= 721
    assert default["Expiration"].microsecond == 0


@pytest.mark.parametrize(
    ("duration", "message"),
    [
        (43201, "Member must have value less than or equal to 43200"),
        (7200, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."),
    ],
)
def test_assume_role_refuses_a_duration_aws_refuses(sandbox, aws_client, duration, message):
    iam = aws_client("iam")
    iam.create_role(RoleName=f"capped-{duration}", AssumeRolePolicyDocument=TRUST_ANYONE, MaxSessionDuration=3600)
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/capped-{duration}"

    with pytest.raises(ClientError) as refused:
        aws_client("sts").assume_role(RoleArn=role, RoleSessionName="bluegreen-bot", DurationSeconds=duration)

    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert message in refused.value.response["Error"]["Message"]
    assert aws_client("sts").assume_role(RoleArn=role, RoleSessionName="bluegreen-bot", DurationSeconds=3600)


def test_credential_lifetime_is_set_over_http_overrides_duration_seconds_and_reset_restores_it(
    sandbox, sandbox_client: SandboxClient, aws_client
):
    state = sandbox_client.config(credential_lifetime=120, speed=4)
    issued = dt.datetime.now(dt.UTC)
    granted = assume(aws_client, DurationSeconds=3600)

    assert state["durations"]["credential_lifetime"] == 120
    assert 29 <= granted_seconds(granted, issued) <= 31  # 120 simulated seconds at speed 4
    with pytest.raises(SandboxControlError, match="credential_lifetime must be positive"):
        sandbox_client.config(credential_lifetime=0)
    assert sandbox_client.config(credential_lifetime=None)["durations"]["credential_lifetime"] is None
    sandbox_client.config(credential_lifetime=60)
    assert sandbox_client.reset()["durations"]["credential_lifetime"] is None
