"""The sandbox's IAM where moto has none: a known role's trust policy decides who may assume it, and
SimulatePrincipalPolicy evaluates a principal's policies (refused to a caller not allowed to simulate)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox.aws import Sandbox

ACCOUNT = "123456789012"


def role(iam: Any, trusted: str, *policies: dict) -> str:
    name = f"iam-test-{secrets.token_hex(4)}"
    statement = {"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=document)["Role"]["Arn"]
    for index, policy in enumerate(policies):
        iam.put_role_policy(RoleName=name, PolicyName=f"p{index}", PolicyDocument=json.dumps(policy))
    return arn


def allow(actions: list[str], resource: str = "*") -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]}


def test_assume_role_follows_the_trust_policy(aws_client: Callable[..., Any]) -> None:
    iam, sts = aws_client("iam"), aws_client("sts", max_attempts=1)
    trusting = role(iam, f"arn:aws:iam::{ACCOUNT}:root")
    stranger = role(iam, "arn:aws:iam::999999999999:root")
    assert "assumed-role/" in sts.assume_role(RoleArn=trusting, RoleSessionName="check")["AssumedRoleUser"]["Arn"]
    with pytest.raises(ClientError) as refused:
        sts.assume_role(RoleArn=stranger, RoleSessionName="check")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert f"sts:AssumeRole on resource: {stranger}" in refused.value.response["Error"]["Message"]
    # A role IAM does not know is still granted, as moto does (scripts assume roles they never created).
    unknown = f"arn:aws:iam::{ACCOUNT}:role/never-created-{secrets.token_hex(4)}"
    assert sts.assume_role(RoleArn=unknown, RoleSessionName="check")["AssumedRoleUser"]["Arn"]


def test_simulation_evaluates_the_principal_policies(aws_client: Callable[..., Any]) -> None:
    iam = aws_client("iam")
    deny = allow(["rds:DeleteDBInstance"])
    deny["Statement"][0]["Effect"] = "Deny"
    arn = role(
        iam,
        f"arn:aws:iam::{ACCOUNT}:root",
        allow(["rds:Describe*", "rds:DeleteDBInstance"]),
        allow(["rds:RegisterDBProxyTargets"], "arn:aws:rds:*:*:db-proxy:*"),
        deny,
    )
    actions = ["rds:DescribeDBProxies", "rds:DeleteDBInstance", "rds:RegisterDBProxyTargets", "iam:CreateUser"]
    results = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=actions, ResourceArns=["arn:aws:rds:*:*:db-proxy:*"]
    )["EvaluationResults"]
    assert {r["EvalActionName"]: r["EvalDecision"] for r in results} == {
        "rds:DescribeDBProxies": "allowed",
        "rds:DeleteDBInstance": "explicitDeny",
        "rds:RegisterDBProxyTargets": "allowed",
        "iam:CreateUser": "implicitDeny",
    }
    with pytest.raises(ClientError) as unknown:
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/nobody", ActionNames=actions)
    assert unknown.value.response["Error"]["Code"] == "NoSuchEntity"


def test_a_caller_not_allowed_to_simulate_is_refused(aws_client: Callable[..., Any], sandbox: Sandbox) -> None:
    iam, sts = aws_client("iam"), aws_client("sts", max_attempts=1)
    plain = role(iam, f"arn:aws:iam::{ACCOUNT}:root", allow(["rds:Describe*"]))
    credentials = sts.assume_role(RoleArn=plain, RoleSessionName="check")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )
    as_role = session.client("iam", endpoint_url=sandbox.endpoint)
    with pytest.raises(ClientError) as refused:
        as_role.simulate_principal_policy(PolicySourceArn=plain, ActionNames=["rds:DescribeDBProxies"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
