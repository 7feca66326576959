"""The sandbox enforces an IAM policy: the evaluator against the examples of AWS's IAM documentation, and calls through
boto3 refused with AccessDenied (HTTP 403, AWS's message) when the policy does not allow them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.aws import Sandbox
from sandbox.aws.client import SandboxClient, SandboxControlError
from sandbox.aws.iam_policy import Decision, Policy, PolicyError, Request, load_policy, request_context
from sandbox.cli import banner, run_sandbox
from tests.sandbox_fixtures import ACCOUNT_ID, db_arn

REPO = Path(__file__).resolve().parent.parent
CALLER = f"arn:aws:sts::{ACCOUNT_ID}:user/moto"  # moto's identity for the sandbox's dummy access key


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(document: dict[str, Any], action: str, resource: str = "*", **context: Any) -> Decision:
    return Policy.parse(document).evaluate(Request(action, resource, request_context(context))).decision


# ----- the evaluator, against the IAM User Guide's examples ----------------------------------------------------------

# "The difference between explicit and implicit denies": AllowGetList and DenyReports.
GET_LIST_NO_REPORTS = policy(
    {"Sid": "AllowGetList", "Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"},
    {"Sid": "DenyReports", "Effect": "Deny", "Action": "iam:*Report", "Resource": "*"},
)


def test_an_explicit_deny_overrides_an_allow_and_what_no_statement_allows_is_implicitly_denied() -> None:
    assert decide(GET_LIST_NO_REPORTS, "iam:GetUser") is Decision.ALLOWED
    assert decide(GET_LIST_NO_REPORTS, "iam:GetOrganizationsAccessReport") is Decision.EXPLICIT_DENY
    assert decide(GET_LIST_NO_REPORTS, "iam:CreatePolicy") is Decision.IMPLICIT_DENY
    evaluation = Policy.parse(GET_LIST_NO_REPORTS).evaluate(Request("iam:GenerateCredentialReport", "*", {}))
    assert (evaluation.decision, evaluation.sid) == (Decision.EXPLICIT_DENY, "DenyReports")


def test_actions_are_case_insensitive_and_take_wildcards() -> None:
    # "IAM JSON policy elements: Action": iam:ListAccessKeys is the same as IAM:listaccesskeys; iam:*AccessKey*.
    assert decide(policy(allow("iam:ListAccessKeys")), "IAM:listaccesskeys") is Decision.ALLOWED
    access_keys = policy(allow("iam:*AccessKey*"))
    for action in ("iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:ListAccessKeys", "iam:UpdateAccessKey"):
        assert decide(access_keys, action) is Decision.ALLOWED
    assert decide(access_keys, "iam:CreateUser") is Decision.IMPLICIT_DENY
    describe = policy(allow("rds:Describe*"))
    assert decide(describe, "rds:DescribeDBInstances") is Decision.ALLOWED
    assert decide(describe, "rds:DeleteDBInstance") is Decision.IMPLICIT_DENY
    assert decide(describe, "ec2:DescribeInstances") is Decision.IMPLICIT_DENY
    assert decide(policy(allow("rds:*")), "rds:DeleteDBCluster") is Decision.ALLOWED
    assert decide(policy(allow("*")), "cloudwatch:GetMetricData") is Decision.ALLOWED
    one_char = policy(allow("rds:DeleteDB?nstance"))
    assert decide(one_char, "rds:DeleteDBInstance") is Decision.ALLOWED
    assert decide(one_char, "rds:DeleteDBCluster") is Decision.IMPLICIT_DENY


def test_not_action_matches_every_action_but_those_listed() -> None:
    # "IAM JSON policy elements: NotAction": everything but IAM; every S3 action on S3 resources but DeleteBucket.
    not_iam = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert decide(not_iam, "rds:DescribeDBInstances") is Decision.ALLOWED
    assert decide(not_iam, "iam:CreateUser") is Decision.IMPLICIT_DENY
    no_delete = policy({"Effect": "Allow", "NotAction": "s3:DeleteBucket", "Resource": "arn:aws:s3:::*"})
    assert decide(no_delete, "s3:GetObject", "arn:aws:s3:::reports/2026.csv") is Decision.ALLOWED
    assert decide(no_delete, "s3:DeleteBucket", "arn:aws:s3:::reports") is Decision.IMPLICIT_DENY
    assert decide(no_delete, "rds:DeleteDBInstance", db_arn("orders-pg")) is Decision.IMPLICIT_DENY
    # With Deny, NotAction denies every unlisted action.
    only_describe = policy(allow("*"), {"Effect": "Deny", "NotAction": "rds:Describe*", "Resource": "*"})
    assert decide(only_describe, "rds:DeleteDBInstance", db_arn("orders-pg")) is Decision.EXPLICIT_DENY
    assert decide(only_describe, "rds:DescribeDBInstances", db_arn("orders-pg")) is Decision.ALLOWED


def test_not_resource_matches_every_resource_but_those_listed() -> None:
    # "IAM JSON policy elements: NotResource": HRPayroll may reach nothing in S3 but HRBucket/Payroll.
    payroll_only = policy(
        allow("s3:*"),
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"],
        },
    )
    assert decide(payroll_only, "s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/2026.csv") is Decision.ALLOWED
    assert decide(payroll_only, "s3:GetObject", "arn:aws:s3:::HRBucket/Bonus/2026.csv") is Decision.EXPLICIT_DENY


def test_resource_wildcards_match_as_arns_do_and_resources_are_case_sensitive() -> None:
    # "IAM JSON policy elements: Resource": users under a path; everything in a bucket (`*` runs over `/`).
    accounting = policy(allow("iam:GetUser", f"arn:aws:iam::{ACCOUNT_ID}:user/accounting/*"))
    assert decide(accounting, "iam:GetUser", f"arn:aws:iam::{ACCOUNT_ID}:user/accounting/alice") is Decision.ALLOWED
    assert decide(accounting, "iam:GetUser", f"arn:aws:iam::{ACCOUNT_ID}:user/sales/bob") is Decision.IMPLICIT_DENY
    bucket = policy(allow("s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/*"))
    assert decide(bucket, "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/a/b/c.txt") is Decision.ALLOWED
    # RDS User Guide, "Allow a user to create DB instances in an AWS account": names that begin with test.
    test_dbs = policy(allow("rds:CreateDBInstance", f"arn:aws:rds:*:{ACCOUNT_ID}:db:test*"))
    assert decide(test_dbs, "rds:CreateDBInstance", "arn:aws:rds:eu-west-1:123456789012:db:test-1") is Decision.ALLOWED
    assert decide(test_dbs, "rds:CreateDBInstance", db_arn("prod-1")) is Decision.IMPLICIT_DENY
    assert decide(test_dbs, "rds:CreateDBInstance", "arn:aws:rds:eu-west-1:999999999999:db:test-1") is (
        Decision.IMPLICIT_DENY
    )
    old_blue = policy(allow("rds:DeleteDBInstance", "arn:aws:rds:*:*:db:*-old*"))
    assert decide(old_blue, "rds:DeleteDBInstance", db_arn("orders-pg-old1")) is Decision.ALLOWED
    assert decide(old_blue, "rds:DeleteDBInstance", db_arn("orders-pg")) is Decision.IMPLICIT_DENY
    assert decide(old_blue, "rds:DeleteDBInstance", db_arn("Orders-PG-OLD1")) is Decision.IMPLICIT_DENY
    one_digit = policy(allow("rds:DeleteDBInstance", "arn:aws:rds:us-*:*:db:orders-pg-old?"))
    assert decide(one_digit, "rds:DeleteDBInstance", db_arn("orders-pg-old1")) is Decision.ALLOWED
    assert decide(one_digit, "rds:DeleteDBInstance", db_arn("orders-pg-old12")) is Decision.IMPLICIT_DENY
    assert decide(one_digit, "rds:DeleteDBInstance", "arn:aws:rds:eu-west-1:1:db:orders-pg-old1") is (
        Decision.IMPLICIT_DENY
    )
    # A `*` inside a segment stays there; one that ends a segment may run across colons.
    inside = policy(allow("rds:DeleteDBInstance", "arn:aws:rds:us-east-1:123456789012:db:a*b"))
    assert decide(inside, "rds:DeleteDBInstance", db_arn("a-b")) is Decision.ALLOWED
    assert decide(inside, "rds:DeleteDBInstance", db_arn("a:b")) is Decision.IMPLICIT_DENY
    assert decide(policy(allow("rds:*", "arn:aws:rds:*")), "rds:DeleteDBInstance", db_arn("x")) is Decision.ALLOWED


# RDS User Guide, "Specifying conditions: Using custom tags" / "Example policies: Using custom tags".
STAGES = policy(
    allow(
        ["rds:ModifyDBInstance", "rds:CreateDBSnapshot"],
        Condition={"StringEquals": {"rds:db-tag/stage": ["development", "test"]}},
    )
)


def test_string_conditions_on_tags_or_their_values_and_match_tag_keys_exactly() -> None:
    assert decide(STAGES, "rds:ModifyDBInstance", db_arn("x"), **{"rds:db-tag/stage": "test"}) is Decision.ALLOWED
    assert decide(STAGES, "rds:ModifyDBInstance", db_arn("x"), **{"rds:db-tag/stage": "production"}) is (
        Decision.IMPLICIT_DENY
    )
    assert decide(STAGES, "rds:ModifyDBInstance", db_arn("x"), **{"rds:db-tag/Stage": "test"}) is (
        Decision.IMPLICIT_DENY  # "Custom tag identifiers are case-sensitive"
    )
    assert decide(STAGES, "rds:ModifyDBInstance", db_arn("x"), **{"RDS:DB-TAG/stage": "test"}) is Decision.ALLOWED
    not_prod = policy(allow("rds:*", Condition={"StringNotEquals": {"aws:ResourceTag/env": ["prod", "production"]}}))
    assert decide(not_prod, "rds:DeleteDBInstance", **{"aws:ResourceTag/env": "dev"}) is Decision.ALLOWED
    assert decide(not_prod, "rds:DeleteDBInstance", **{"aws:ResourceTag/env": "production"}) is Decision.IMPLICIT_DENY
    like = policy(allow("rds:*", Condition={"StringLike": {"aws:ResourceTag/owner": "bluegreen-*"}}))
    assert decide(like, "rds:DeleteDBInstance", **{"aws:ResourceTag/owner": "bluegreen-bot"}) is Decision.ALLOWED
    assert decide(like, "rds:DeleteDBInstance", **{"aws:ResourceTag/owner": "Bluegreen-bot"}) is (
        Decision.IMPLICIT_DENY
    )
    not_like = policy(allow("rds:*", Condition={"StringNotLike": {"aws:ResourceTag/owner": "team-*"}}))
    assert decide(not_like, "rds:DeleteDBInstance", **{"aws:ResourceTag/owner": "team-a"}) is Decision.IMPLICIT_DENY
    ignore_case = policy(allow("rds:*", Condition={"StringEqualsIgnoreCase": {"aws:RequestTag/env": "PROD"}}))
    assert decide(ignore_case, "rds:AddTagsToResource", **{"aws:RequestTag/env": "prod"}) is Decision.ALLOWED
    not_ignore_case = policy(allow("rds:*", Condition={"StringNotEqualsIgnoreCase": {"aws:RequestTag/env": "PROD"}}))
    assert decide(not_ignore_case, "rds:AddTagsToResource", **{"aws:RequestTag/env": "prod"}) is (
        Decision.IMPLICIT_DENY
    )


def test_a_missing_key_fails_a_test_passes_a_negated_one_and_if_exists_or_null_test_presence() -> None:
    # "Condition operators": a key not in the request context does not match, except for negated operators,
    # ...IfExists (true when absent) and Null (tests presence).
    equals = policy(allow("rds:*", Condition={"StringEquals": {"rds:cluster-tag/team": "ledger"}}))
    assert decide(equals, "rds:DeleteDBCluster") is Decision.IMPLICIT_DENY
    not_equals = policy(allow("rds:*", Condition={"StringNotEquals": {"rds:cluster-tag/team": "ledger"}}))
    assert decide(not_equals, "rds:DeleteDBCluster") is Decision.ALLOWED
    if_exists = policy(allow("rds:*", Condition={"StringEqualsIfExists": {"rds:cluster-tag/team": "ledger"}}))
    assert decide(if_exists, "rds:DescribeEvents") is Decision.ALLOWED
    assert decide(if_exists, "rds:DeleteDBCluster", **{"rds:cluster-tag/team": "orders"}) is Decision.IMPLICIT_DENY
    untagged = policy(allow("rds:*", Condition={"Null": {"aws:ResourceTag/owner": "true"}}))
    assert decide(untagged, "rds:DeleteDBInstance") is Decision.ALLOWED
    assert decide(untagged, "rds:DeleteDBInstance", **{"aws:ResourceTag/owner": "x"}) is Decision.IMPLICIT_DENY
    tagged = policy(allow("rds:*", Condition={"Null": {"aws:ResourceTag/owner": "false"}}))
    assert decide(tagged, "rds:DeleteDBInstance", **{"aws:ResourceTag/owner": "x"}) is Decision.ALLOWED


def test_set_operators_compare_the_request_s_tag_keys() -> None:
    # "Multivalued context key examples": ForAllValues is true when every request value matches (and when there
    # is none); ForAnyValue when at least one does (never when there is none).
    only_these = policy(
        allow("rds:AddTagsToResource", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost"]}})
    )
    assert decide(only_these, "rds:AddTagsToResource", **{"aws:TagKeys": ["team"]}) is Decision.ALLOWED
    assert decide(only_these, "rds:AddTagsToResource", **{"aws:TagKeys": ["team", "owner"]}) is Decision.IMPLICIT_DENY
    assert decide(only_these, "rds:AddTagsToResource") is Decision.ALLOWED
    any_of = policy(
        allow("rds:AddTagsToResource", Condition={"ForAnyValue:StringLike": {"aws:TagKeys": "bluegreen-*"}})
    )
    assert decide(any_of, "rds:AddTagsToResource", **{"aws:TagKeys": ["team", "bluegreen-run"]}) is Decision.ALLOWED
    assert decide(any_of, "rds:AddTagsToResource", **{"aws:TagKeys": ["team"]}) is Decision.IMPLICIT_DENY
    assert decide(any_of, "rds:AddTagsToResource") is Decision.IMPLICIT_DENY


def test_arn_and_bool_operators_and_several_conditions_all_hold() -> None:
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/bluegreen-bot"
    bots = policy(allow("rds:*", Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/bluegreen-*"}}))
    assert decide(bots, "rds:DescribeDBInstances", **{"aws:PrincipalArn": role}) is Decision.ALLOWED
    assert decide(bots, "rds:DescribeDBInstances", **{"aws:PrincipalArn": CALLER}) is Decision.IMPLICIT_DENY
    not_bots = policy(allow("rds:*", Condition={"ArnNotEquals": {"aws:PrincipalArn": role}}))
    assert decide(not_bots, "rds:DescribeDBInstances", **{"aws:PrincipalArn": role}) is Decision.IMPLICIT_DENY
    protected = policy(allow("*"), deny("rds:Delete*", Condition={"Bool": {"aws:ResourceTag/protected": True}}))
    assert decide(protected, "rds:DeleteDBInstance", **{"aws:ResourceTag/protected": "true"}) is Decision.EXPLICIT_DENY
    assert decide(protected, "rds:DeleteDBInstance", **{"aws:ResourceTag/protected": "false"}) is Decision.ALLOWED
    both = policy(
        allow(
            "rds:DeleteDBInstance",
            Condition={
                "StringEquals": {"rds:db-tag/team": "orders", "aws:PrincipalAccount": ACCOUNT_ID},
                "StringLike": {"aws:ResourceTag/owner": "bluegreen-*"},
            },
        )
    )
    context = {"rds:db-tag/team": "orders", "aws:PrincipalAccount": ACCOUNT_ID, "aws:ResourceTag/owner": "bluegreen-x"}
    assert decide(both, "rds:DeleteDBInstance", **context) is Decision.ALLOWED
    assert decide(both, "rds:DeleteDBInstance", **{**context, "rds:db-tag/team": "billing"}) is Decision.IMPLICIT_DENY


@pytest.mark.parametrize(
    ("statement", "complaint"),
    [
        ({**allow("rds:*"), "Principal": {"AWS": "*"}}, "names no Principal"),
        (allow("rds:*", Condition={"NumericLessThan": {"aws:TagKeys": "3"}}), "NumericLessThan"),
        (allow("rds:*", Condition={"StringEquals": {"rds:DatabaseEngine": "mysql"}}), "rds:DatabaseEngine"),
        (allow("rds:*", Condition={"StringEquals": {"aws:TagKeys": "team"}}), "multivalued"),
        (allow("rds:*", Condition={"NullIfExists": {"aws:ResourceTag/x": "true"}}), "NullIfExists"),
        (allow("rds:*", "arn:aws:rds:*:*:db:${aws:username}"), "${aws:username} names a key the sandbox does not"),
        (allow("rds:*", "arn:aws:rds:${aws:PrincipalTag/region}:*:db:*"), "only replace the resource part"),
        (allow("rds:*", Condition={"Null": {"aws:ResourceTag/x": "${aws:PrincipalTag/x}"}}), "string and ARN"),
        (allow("rds:*", "arn:aws:rds:*:*:db:${aws:PrincipalTag/team, 'none'}"), "default values"),
        ({"Effect": "Allow", "Action": "rds:*"}, "Resource and NotResource"),
        ({"Effect": "allow", "Action": "rds:*", "Resource": "*"}, "Effect"),
        (allow("DeleteDBInstance"), "service:Action"),
        (allow("rds:*", "orders-pg"), "not an ARN"),
        ({**allow("rds:*"), "Conditions": {}}, "unknown element"),
    ],
)
def test_what_the_sandbox_cannot_evaluate_is_refused_at_load(statement: dict[str, Any], complaint: str) -> None:
    with pytest.raises(PolicyError, match="Statement\\[0\\]") as refused:
        Policy.parse(policy(statement))
    assert complaint in str(refused.value)


def test_a_policy_loads_from_a_file_and_a_broken_file_is_named(tmp_path: Path) -> None:
    shipped = load_policy(REPO / "iam-policy.json")
    assert shipped.evaluate(Request("rds:DescribeDBInstances", db_arn("orders-pg"), {})).decision is Decision.ALLOWED
    broken = tmp_path / "policy.json"
    broken.write_text(json.dumps({"Version": "2012-10-17", "Statement": []}))
    with pytest.raises(PolicyError, match=f"{broken}: Statement must be"):
        load_policy(broken)
    with pytest.raises(PolicyError, match="cannot read the IAM policy file"):
        load_policy(tmp_path / "missing.json")
    assert run_sandbox(["--iam-policy", str(tmp_path / "missing.json"), "--port", "0"]) == 2


# ----- enforced on calls through boto3 --------------------------------------------------------------------------------

READ_AND_DELETE_OLD = policy(
    allow("rds:Describe*"),
    allow("rds:DeleteDBInstance", "arn:aws:rds:*:*:db:*-old*"),
)


def access_denied(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    return refused.value.response["Error"]


def test_deleting_orders_pg_is_refused_and_an_old_blue_may_be_deleted(sandbox: Sandbox, rds: Any) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier="orders-pg-old1",
        Engine="postgres",
        DBInstanceClass="db.r6g.large",
        AllocatedStorage=20,
        MasterUsername="app_admin",
        MasterUserPassword="sandbox-not-a-secret",
    )
    sandbox.control.set_iam_policy(READ_AND_DELETE_OLD)
    assert {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]} >= {"orders-pg"}
    error = access_denied(lambda: rds.delete_db_instance(DBInstanceIdentifier="orders-pg", SkipFinalSnapshot=True))
    assert error["Message"] == (
        f"User: {CALLER} is not authorized to perform: rds:DeleteDBInstance on resource: {db_arn('orders-pg')} "
        "because no identity-based policy allows the rds:DeleteDBInstance action"
    )
    refused = [e for e in sandbox.control.timeline() if e.get("action") == "DeleteDBInstance"]
    assert [(e["status"], e["code"]) for e in refused] == [(403, "AccessDenied")]
    status = rds.describe_db_instances(DBInstanceIdentifier="orders-pg")["DBInstances"][0]["DBInstanceStatus"]
    assert status == "available"
    deleted = rds.delete_db_instance(DBInstanceIdentifier="orders-pg-old1", SkipFinalSnapshot=True)
    assert deleted["DBInstance"]["DBInstanceIdentifier"] == "orders-pg-old1"
    # A final snapshot is also authorised as rds:CreateDBSnapshot, which this policy does not allow.
    error = access_denied(
        lambda: rds.delete_db_instance(DBInstanceIdentifier="x-old2", FinalDBSnapshotIdentifier="x-old2-final")
    )
    assert "rds:CreateDBSnapshot on resource: " + db_arn("x-old2") in error["Message"]


def test_a_deny_on_a_tag_names_the_explicit_deny(sandbox: Sandbox, rds: Any) -> None:
    sandbox.control.set_iam_policy(
        policy(
            allow(["rds:Describe*", "rds:ModifyDBInstance"]),
            deny("rds:ModifyDBInstance", Condition={"StringEquals": {"rds:db-tag/team": "billing"}}),
        )
    )
    error = access_denied(lambda: rds.modify_db_instance(DBInstanceIdentifier="billing-mysql", DeletionProtection=True))
    assert error["Message"] == (
        f"User: {CALLER} is not authorized to perform: rds:ModifyDBInstance on resource: {db_arn('billing-mysql')} "
        "with an explicit deny in an identity-based policy"
    )
    modified = rds.modify_db_instance(DBInstanceIdentifier="orders-pg", DeletionProtection=True, ApplyImmediately=True)
    assert modified["DBInstance"]["DeletionProtection"] is True


def test_a_proxy_is_authorised_by_its_resource_id(sandbox: Sandbox, rds: Any) -> None:
    proxy_arn = rds.describe_db_proxies(DBProxyName="orders-proxy")["DBProxies"][0]["DBProxyArn"]
    assert ":db-proxy:prx-" in proxy_arn
    sandbox.control.set_iam_policy(
        policy(
            allow("rds:Describe*"),
            allow("rds:DeregisterDBProxyTargets", ["arn:aws:rds:*:*:db:orders-*", "arn:aws:rds:*:*:target-group:*"]),
        )
    )
    error = access_denied(
        lambda: rds.deregister_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=["orders-pg"])
    )
    assert f"rds:DeregisterDBProxyTargets on resource: {proxy_arn} because" in error["Message"]
    group = rds.describe_db_proxy_target_groups(DBProxyName="orders-proxy")["TargetGroups"][0]["TargetGroupArn"]
    sandbox.control.set_iam_policy(policy(allow("rds:RegisterDBProxyTargets", group)))
    error = access_denied(
        lambda: rds.register_db_proxy_targets(DBProxyName="billing-proxy", DBInstanceIdentifiers=["orders-pg"])
    )
    assert (
        "rds:RegisterDBProxyTargets on resource: arn:aws:rds:us-east-1:123456789012:target-group:prx-tg-"
        in (error["Message"])
    )


def test_request_tags_and_the_documented_blue_green_permissions_are_evaluated(sandbox: Sandbox, rds: Any) -> None:
    # Tags in a request are aws:RequestTag/<key>, rds:req-tag/<key> and aws:TagKeys; a blue/green deployment also
    # needs rds:AddTagsToResource (for its tags) and rds:CreateDBInstanceReadReplica ("Authorizing access to Amazon
    # RDS blue/green deployment operations").
    tag_rules = {
        "ForAllValues:StringEquals": {"aws:TagKeys": ["bluegreen-run", "team"]},
        "StringEquals": {"aws:RequestTag/team": "orders", "rds:req-tag/bluegreen-run": "r1"},
        "StringEqualsIfExists": {"aws:RequestedRegion": "us-east-1"},
    }
    sandbox.control.set_iam_policy(
        policy(allow(["rds:AddTagsToResource", "rds:CreateBlueGreenDeployment"], Condition=tag_rules))
    )
    orders = db_arn("orders-pg")
    rds.add_tags_to_resource(
        ResourceName=orders, Tags=[{"Key": "team", "Value": "orders"}, {"Key": "bluegreen-run", "Value": "r1"}]
    )
    access_denied(lambda: rds.add_tags_to_resource(ResourceName=orders, Tags=[{"Key": "owner", "Value": "x"}]))
    access_denied(lambda: rds.add_tags_to_resource(ResourceName=orders, Tags=[{"Key": "team", "Value": "billing"}]))
    create = {"BlueGreenDeploymentName": "iam-check", "Source": orders, "TargetEngineVersion": "16.3"}
    tags = [{"Key": "team", "Value": "orders"}, {"Key": "bluegreen-run", "Value": "r1"}]
    error = access_denied(lambda: rds.create_blue_green_deployment(**create, Tags=tags))
    # Green is named internally: the replica is authorised against a resource id, not a name the caller chose.
    assert "rds:CreateDBInstanceReadReplica on resource: arn:aws:rds:us-east-1:123456789012:db:db-" in error["Message"]
    sandbox.control.set_iam_policy(None)
    assert not rds.describe_blue_green_deployments()["BlueGreenDeployments"]
    assert {"Key": "bluegreen-run", "Value": "r1"} in rds.list_tags_for_resource(ResourceName=orders)["TagList"]


def test_the_policy_is_set_and_cleared_over_http_and_reset_restores_the_start(
    sandbox: Sandbox, sandbox_client: SandboxClient, aws_client: Callable[..., Any]
) -> None:
    rds, sts = aws_client("rds", max_attempts=1), aws_client("sts", max_attempts=1)
    assert sandbox_client.set_iam_policy(policy(deny("*")))["iam_policy"] is not None
    access_denied(lambda: rds.describe_db_instances())
    # sts:GetCallerIdentity needs no permission, even against an explicit deny (STS API reference).
    assert sts.get_caller_identity()["Arn"] == CALLER
    assert "every AWS call" in banner(sandbox)
    # Limited to a role, the policy is its sessions' alone: the source credentials assume it and read freely.
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/bluegreen-bot"
    sandbox_client.set_iam_policy(policy(allow("rds:DescribeDBInstances", db_arn("orders-pg"))), principal=role)
    assert rds.describe_db_instances()["DBInstances"]
    grant = sts.assume_role(RoleArn=role, RoleSessionName="check")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=grant["AccessKeyId"],
        aws_secret_access_key=grant["SecretAccessKey"],
        aws_session_token=grant["SessionToken"],
        region_name="us-east-1",
    ).client("rds", endpoint_url=sandbox.endpoint, config=Config(retries={"total_max_attempts": 1}))
    assert session.describe_db_instances(DBInstanceIdentifier="orders-pg")["DBInstances"]
    error = access_denied(lambda: session.describe_db_instances(DBInstanceIdentifier="billing-mysql"))
    assert error["Message"].startswith(
        f"User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/bluegreen-bot/check is not authorized to perform: "
        f"rds:DescribeDBInstances on resource: {db_arn('billing-mysql')} because"
    )
    with pytest.raises(SandboxControlError, match=r"HTTP 400.*Effect"):
        sandbox_client.set_iam_policy(policy({"Effect": "Permit", "Action": "*", "Resource": "*"}))
    sandbox_client.set_iam_policy(policy(deny("*")))
    sandbox_client.reset()
    assert sandbox_client.iam_policy() == {"iam_policy": None, "principal": None}
    assert rds.describe_db_instances()["DBInstances"]
