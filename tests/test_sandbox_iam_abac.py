"""The IAM the shipped policy relies on, modelled as AWS documents it: policy variables (the IAM User Guide's
examples), the caller's role tags as `aws:PrincipalTag/...`, iam:PassRole with `iam:PassedToService`, target groups
with tags of their own, the blue/green operations' dependent actions on internally named resources, the required
resource types of a restore, SimulatePrincipalPolicy with ResourceArns and ContextEntries, and the timeline's record
of the statements that allowed each call."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.aws import Sandbox
from sandbox.aws.iam_policy import Decision, Policy, Request, request_context
from sandbox.waiting import wait_until
from tests.iam_fixtures import POLICY, role_client
from tests.sandbox_fixtures import ACCOUNT_ID, db_arn

ENV = "bluegreen-bot:environment"
MINE = "${aws:PrincipalTag/" + ENV + "}"


def policy(*statements: dict[str, Any], version: str = "2012-10-17") -> dict[str, Any]:
    return {"Version": version, "Statement": list(statements)}


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def decide(document: dict[str, Any], action: str, resource: str = "*", **context: Any) -> Decision:
    return Policy.parse(document).evaluate(Request(action, resource, request_context(context))).decision


def refused(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "AccessDenied", caught.value.response["Error"]
    return str(caught.value.response["Error"]["Message"])


def make_role(iam: Any, **tags: str) -> str:
    trust = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "sts:AssumeRole"}
    return str(
        iam.create_role(
            RoleName=f"abac-{secrets.token_hex(4)}",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]}),
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )["Role"]["Arn"]
    )


# ----- policy variables ("IAM policy elements: Variables and tags") --------------------------------------------------

# "the following Resource element refers to only a bucket that is named the same as the value in the requesting
# user's department tag"
DEPARTMENT_BUCKET = policy(allow("s3:ListBucket", "arn:aws:s3:::bucket/${aws:PrincipalTag/department}"))


def test_a_variable_in_a_resource_takes_the_request_s_value_and_a_missing_one_voids_the_statement():
    hr = {"aws:PrincipalTag/department": "hr"}
    assert decide(DEPARTMENT_BUCKET, "s3:ListBucket", "arn:aws:s3:::bucket/hr", **hr) is Decision.ALLOWED
    assert decide(DEPARTMENT_BUCKET, "s3:ListBucket", "arn:aws:s3:::bucket/sales", **hr) is Decision.IMPLICIT_DENY
    # "not present ... any attempt to match it fails and causes the statement to be invalid"
    assert decide(DEPARTMENT_BUCKET, "s3:ListBucket", "arn:aws:s3:::bucket/hr") is Decision.IMPLICIT_DENY
    invalid_deny = policy(allow("s3:*"), {**DEPARTMENT_BUCKET["Statement"][0], "Effect": "Deny"})
    assert decide(invalid_deny, "s3:ListBucket", "arn:aws:s3:::bucket/hr") is Decision.ALLOWED
    # The tag key is case-sensitive, the key name is not.
    assert (
        decide(DEPARTMENT_BUCKET, "s3:ListBucket", "arn:aws:s3:::bucket/hr", **{"aws:PrincipalTag/Department": "hr"})
        is Decision.IMPLICIT_DENY
    )
    assert (
        decide(DEPARTMENT_BUCKET, "s3:ListBucket", "arn:aws:s3:::bucket/hr", **{"AWS:principaltag/department": "hr"})
        is Decision.ALLOWED
    )
    # "If you don't include the Version element ... variables like ${aws:username} are treated as literal strings"
    literal = policy(DEPARTMENT_BUCKET["Statement"][0], version="2008-10-17")
    assert decide(literal, "s3:ListBucket", "arn:aws:s3:::bucket/hr", **hr) is Decision.IMPLICIT_DENY
    assert decide(literal, "s3:ListBucket", "arn:aws:s3:::bucket/${aws:PrincipalTag/department}") is Decision.ALLOWED


def test_a_variable_in_a_condition_compares_resource_tags_with_principal_tags():
    # The attribute-based pattern: a resource is the caller's when its tag equals the caller's tag of the same key.
    same_team = policy(
        allow("rds:*", Condition={"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}),
    )
    caller = {"aws:PrincipalTag/team": "orders"}
    assert decide(same_team, "rds:DeleteDBInstance", **caller, **{"aws:ResourceTag/team": "orders"}) is (
        Decision.ALLOWED
    )
    assert decide(same_team, "rds:DeleteDBInstance", **caller, **{"aws:ResourceTag/team": "billing"}) is (
        Decision.IMPLICIT_DENY
    )
    assert decide(same_team, "rds:DeleteDBInstance", **{"aws:ResourceTag/team": "orders"}) is Decision.IMPLICIT_DENY
    like = policy(allow("rds:*", Condition={"StringLike": {"aws:ResourceTag/owner": "${aws:PrincipalTag/team}-*"}}))
    assert decide(like, "rds:DeleteDBInstance", **caller, **{"aws:ResourceTag/owner": "orders-dba"}) is (
        Decision.ALLOWED
    )
    assert decide(like, "rds:DeleteDBInstance", **caller, **{"aws:ResourceTag/owner": "billing-dba"}) is (
        Decision.IMPLICIT_DENY
    )


def test_pass_role_is_decided_on_the_role_and_the_service_it_is_passed_to():
    # "Grant a user permissions to pass a role to an AWS service": the role's ARN, and iam:PassedToService.
    to_rds = policy(
        allow(
            "iam:PassRole",
            "arn:aws:iam::*:role/rds-proxy-*",
            Condition={"StringEquals": {"iam:PassedToService": "rds.amazonaws.com"}},
        )
    )
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/rds-proxy-secrets-reader"
    assert decide(to_rds, "iam:PassRole", role, **{"iam:PassedToService": "rds.amazonaws.com"}) is Decision.ALLOWED
    assert decide(to_rds, "iam:PassRole", role, **{"iam:PassedToService": "ec2.amazonaws.com"}) is (
        Decision.IMPLICIT_DENY
    )
    assert decide(to_rds, "iam:PassRole", f"arn:aws:iam::{ACCOUNT_ID}:role/admin", **{
        "iam:PassedToService": "rds.amazonaws.com"}) is Decision.IMPLICIT_DENY  # fmt: skip


# ----- over HTTP -------------------------------------------------------------------------------------------------


def test_the_caller_s_role_tags_are_its_principal_tags(sandbox: Sandbox, aws_client: Callable[..., Any]):
    iam = aws_client("iam")
    production, untagged = make_role(iam, **{ENV: "production"}), make_role(iam)
    mine = policy(allow("rds:DescribeDBInstances", Condition={"StringEquals": {f"aws:ResourceTag/{ENV}": MINE}}))
    sandbox.control.set_iam_policy(mine, principal=production)
    bot = role_client(sandbox, production)

    assert bot.describe_db_instances(DBInstanceIdentifier="orders-pg")["DBInstances"]
    message = refused(lambda: bot.describe_db_instances(DBInstanceIdentifier="billing-mysql"))
    assert f"rds:DescribeDBInstances on resource: {db_arn('billing-mysql')}" in message
    sandbox.control.set_iam_policy(mine, principal=untagged)  # no tag: the variable cannot be resolved
    refused(lambda: role_client(sandbox, untagged).describe_db_instances(DBInstanceIdentifier="orders-pg"))


def test_create_db_proxy_passes_its_role_to_rds(sandbox: Sandbox, rds: Any):
    orders = rds.describe_db_proxies(DBProxyName="orders-proxy")["DBProxies"][0]
    create = {
        "DBProxyName": "abac-proxy",
        "EngineFamily": "POSTGRESQL",
        "RoleArn": orders["RoleArn"],
        "VpcSubnetIds": orders["VpcSubnetIds"],
        "Auth": [{"AuthScheme": "SECRETS", "SecretArn": orders["Auth"][0]["SecretArn"], "IAMAuth": "DISABLED"}],
    }
    passing = {"Condition": {"StringEquals": {"iam:PassedToService": "rds.amazonaws.com"}}}
    sandbox.control.set_iam_policy(policy(allow("rds:CreateDBProxy")))
    message = refused(lambda: rds.create_db_proxy(**create))
    assert f"iam:PassRole on resource: {orders['RoleArn']} because" in message
    sandbox.control.set_iam_policy(policy(allow("rds:CreateDBProxy"), allow("iam:PassRole", **passing)))
    assert rds.create_db_proxy(**create)["DBProxy"]["DBProxyName"] == "abac-proxy"
    # Tags on the new proxy are also authorised as rds:AddTagsToResource, with the request's tags.
    message = refused(
        lambda: rds.create_db_proxy(**{**create, "DBProxyName": "abac-2"}, Tags=[{"Key": ENV, "Value": "x"}])
    )
    assert "rds:AddTagsToResource on resource: arn:aws:rds:us-east-1:123456789012:db-proxy:*" in message


def test_a_target_group_has_tags_of_its_own_and_registering_is_decided_on_them(sandbox: Sandbox, rds: Any):
    group = rds.describe_db_proxy_target_groups(DBProxyName="orders-proxy")["TargetGroups"][0]["TargetGroupArn"]
    assert rds.list_tags_for_resource(ResourceName=group)["TagList"] == [{"Key": ENV, "Value": "production"}]
    rds.add_tags_to_resource(ResourceName=group, Tags=[{"Key": "team", "Value": "orders"}])
    rds.remove_tags_from_resource(ResourceName=group, TagKeys=[ENV])
    assert rds.list_tags_for_resource(ResourceName=group)["TagList"] == [{"Key": "team", "Value": "orders"}]
    with pytest.raises(ClientError, match="DBProxyTargetGroupNotFoundFault"):
        rds.list_tags_for_resource(ResourceName=group[:-4] + "0000")  # ids are letters: no such group
    # RegisterDBProxyTargets is authorised against the target group alone (Service Authorization Reference).
    sandbox.control.set_iam_policy(
        policy(allow("rds:RegisterDBProxyTargets", Condition={"StringEquals": {"aws:ResourceTag/team": "orders"}}))
    )
    message = refused(
        lambda: rds.register_db_proxy_targets(DBProxyName="billing-proxy", DBInstanceIdentifiers=["billing-mysql"])
    )
    assert ":target-group:prx-tg-" in message
    with pytest.raises(ClientError, match="DBProxyTargetAlreadyRegisteredFault"):  # allowed: RDS answers
        rds.register_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])


def test_a_restore_is_authorised_on_the_required_groups_it_leaves_to_their_defaults(sandbox: Sandbox, rds: Any):
    restore = {"SourceDBInstanceIdentifier": "orders-pg", "TargetDBInstanceIdentifier": "abac-restore",
               "UseLatestRestorableTime": True}  # fmt: skip
    databases = ["arn:aws:rds:*:*:db:orders-pg", "arn:aws:rds:*:*:db:abac-*"]
    sandbox.control.set_iam_policy(policy(allow("rds:RestoreDBInstanceToPointInTime", databases)))
    message = refused(lambda: rds.restore_db_instance_to_point_in_time(**restore))
    assert "on resource: arn:aws:rds:us-east-1:123456789012:pg:*" in message
    groups = [f"arn:aws:rds:*:*:{kind}:*" for kind in ("pg", "og", "subgrp")]
    sandbox.control.set_iam_policy(policy(allow("rds:RestoreDBInstanceToPointInTime", databases + groups)))
    assert rds.restore_db_instance_to_point_in_time(**restore)["DBInstance"]["DBInstanceIdentifier"] == "abac-restore"


def deployment(rds: Any, name: str, source: str, version: str) -> str:
    identifier = rds.create_blue_green_deployment(
        BlueGreenDeploymentName=name, Source=db_arn(source), TargetEngineVersion=version
    )["BlueGreenDeployment"]["BlueGreenDeploymentIdentifier"]

    def available() -> bool:
        found = rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=identifier)["BlueGreenDeployments"]
        return found[0]["Status"] == "AVAILABLE"

    wait_until(available, 10, what=f"{name} AVAILABLE")
    return str(identifier)


def test_green_is_named_internally_for_the_actions_rds_takes_but_keeps_its_tags(sandbox: Sandbox, rds: Any):
    sandbox.control.config(proxy_mode="native")
    first, second = (
        deployment(rds, "abac-switch", "orders-pg", "16.4"),
        deployment(rds, "abac-rb", "billing-mysql", "8.4.3"),
    )
    green = rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=second)["BlueGreenDeployments"][0]
    switch = ["rds:SwitchoverBlueGreenDeployment", "rds:PromoteReadReplica"]
    by_name = allow("rds:ModifyDBInstance", ["arn:aws:rds:*:*:db:orders-pg*"])  # blue's and green's names
    sandbox.control.set_iam_policy(policy(allow(switch), by_name))
    message = refused(lambda: rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=first))
    assert "rds:ModifyDBInstance on resource: arn:aws:rds:us-east-1:123456789012:db:db-" in message
    billing = {"Condition": {"StringEquals": {"aws:ResourceTag/team": "billing"}}}
    sandbox.control.set_iam_policy(policy(allow(switch), allow("rds:ModifyDBInstance", **billing)))
    refused(lambda: rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=first))
    orders = {"Condition": {"StringEquals": {"aws:ResourceTag/team": "orders"}}}  # green carries blue's tags
    sandbox.control.set_iam_policy(
        policy(allow(switch), allow("rds:ModifyDBInstance", "arn:aws:rds:*:*:db:*", **orders))
    )
    assert rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=first)["BlueGreenDeployment"]

    delete = {"BlueGreenDeploymentIdentifier": second, "DeleteTarget": True}
    marked = {"Condition": {"Null": {"aws:ResourceTag/bluegreen-bot:green": "false"}}}
    sandbox.control.set_iam_policy(
        policy(allow("rds:DeleteBlueGreenDeployment"), allow("rds:DeleteDBInstance", "arn:aws:rds:*:*:db:*-green-*"))
    )
    assert ":db:db-" in refused(lambda: rds.delete_blue_green_deployment(**delete))
    sandbox.control.set_iam_policy(
        policy(allow("rds:DeleteBlueGreenDeployment"), allow("rds:DeleteDBInstance", **marked))
    )
    refused(lambda: rds.delete_blue_green_deployment(**delete))
    sandbox.control.set_iam_policy(None)
    rds.add_tags_to_resource(ResourceName=green["Target"], Tags=[{"Key": "bluegreen-bot:green", "Value": "true"}])
    sandbox.control.set_iam_policy(
        policy(allow("rds:DeleteBlueGreenDeployment"), allow("rds:DeleteDBInstance", **marked))
    )
    assert rds.delete_blue_green_deployment(**delete)["BlueGreenDeployment"]["Status"] == "DELETING"


def test_the_timeline_says_which_statements_allowed_each_call_and_what_was_refused(sandbox: Sandbox, rds: Any):
    sandbox.control.set_iam_policy(
        policy(
            {"Sid": "Everything", **allow("rds:Describe*")},
            {"Sid": "Orders", **allow("rds:DescribeDBInstances", db_arn("orders-pg"))},
        )
    )
    rds.describe_db_instances(DBInstanceIdentifier="orders-pg")
    rds.describe_db_instances(DBInstanceIdentifier="billing-mysql")
    refused(lambda: rds.delete_db_instance(DBInstanceIdentifier="orders-pg", SkipFinalSnapshot=True))
    calls = [e for e in sandbox.control.timeline() if e["kind"] == "call"]
    assert [c["iam"] for c in calls] == [
        [
            {
                "action": "rds:DescribeDBInstances",
                "resource": db_arn("orders-pg"),
                "allowed_by": ["Everything", "Orders"],
            }
        ],
        [{"action": "rds:DescribeDBInstances", "resource": db_arn("billing-mysql"), "allowed_by": ["Everything"]}],
        [{"action": "rds:DeleteDBInstance", "resource": db_arn("orders-pg")}],
    ]


def test_the_simulation_evaluates_resource_arns_and_context_entries(aws_client: Callable[..., Any]):
    iam = aws_client("iam")
    role = make_role(iam)
    iam.put_role_policy(RoleName=role.rsplit("/", 1)[-1], PolicyName="bot", PolicyDocument=json.dumps(POLICY))
    old_blue, other = db_arn("orders-pg-old1"), db_arn("orders-pg")

    def simulate(*resources: str, **context: str) -> dict[str, Any]:
        entries = [
            {"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"} for k, v in context.items()
        ]
        return iam.simulate_principal_policy(
            PolicySourceArn=role, ActionNames=["rds:DeleteDBInstance"], ResourceArns=list(resources),
            ContextEntries=entries,
        )["EvaluationResults"][0]  # fmt: skip

    production = {f"aws:PrincipalTag/{ENV}": "production", f"aws:ResourceTag/{ENV}": "production"}
    assert simulate(old_blue, **production)["EvalDecision"] == "allowed"
    assert simulate(old_blue, **{**production, f"aws:ResourceTag/{ENV}": "billing"})["EvalDecision"] == "implicitDeny"
    missing = simulate(old_blue, **{f"aws:PrincipalTag/{ENV}": "production"})
    assert missing["EvalDecision"] == "implicitDeny"
    assert f"aws:ResourceTag/{ENV}" in missing["MissingContextValues"]
    both = simulate(old_blue, other, **production)  # the most restrictive decision, and each resource's
    assert both["EvalDecision"] == "implicitDeny"
    assert [(r["EvalResourceName"], r["EvalResourceDecision"]) for r in both["ResourceSpecificResults"]] == [
        (old_blue, "allowed"),
        (other, "implicitDeny"),
    ]
