"""`python -m bot check` as an operator runs it: a real process (forked from a warm interpreter that has done the
imports, tests/process_fixtures.py) against the sandbox AWS and the Slack stand-in over HTTP. All rows pass on a good
set-up; a missing scope, a channel without the bot, a role that does not trust the bot and an unreachable AWS endpoint
each fail their own row, with its fix, and exit 1."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.check import manifest_scopes
from sandbox.aws import Sandbox
from sandbox.slack import SlackStandInThread
from tests.process_fixtures import Zygote, run_forked, zygote_fixture  # noqa: F401  (the `zygote` fixture)

REPO = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
TOKEN = "xoxb-check"
OPS, DEV = "C0OPS", "C0DEV"
POLICY = (REPO / "iam-policy.json").read_text()
SIMULATE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:SimulatePrincipalPolicy", "Resource": "*"}],
    }
)


def trust(account: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture
def slack() -> Iterator[SlackStandInThread]:
    with SlackStandInThread(signing_secret="check-secret-not-real", bot_token=TOKEN) as standin:
        yield standin


@pytest.fixture
def make_role(aws_client: Callable[..., Any]) -> Callable[..., str]:
    """A role in the sandbox's IAM (which a reset keeps: each name is new), with the given trust and policies."""
    iam = aws_client("iam")

    def make(*, trusted_account: str = ACCOUNT, policies: tuple[str, ...] = (POLICY, SIMULATE)) -> str:
        name = f"bluegreen-bot-{secrets.token_hex(4)}"
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(trusted_account))["Role"]["Arn"]
        for index, document in enumerate(policies):
            iam.put_role_policy(RoleName=name, PolicyName=f"p{index}", PolicyDocument=document)
        return arn

    return make


def run_check(
    zygote: Zygote,
    tmp_path: Path,
    sandbox: Sandbox,
    slack: SlackStandInThread,
    environments: str,
    *args: str,
    endpoint: str = "",
) -> tuple[int, dict[str, tuple[str, str, str | None]], str]:
    """Runs the command; returns its exit code, {check: (status, detail, fix)} and its whole output."""
    config = tmp_path / "bluegreen.toml"
    config.write_text(environments)
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_URL": slack.base_url,
        "BLUEGREEN_CONFIG": str(config),
        "BLUEGREEN_DB": str(tmp_path / "bluegreen.db"),
        "AWS_ENDPOINT_URL": endpoint or sandbox.endpoint,
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_REGION": "us-east-1",
    }
    done = run_forked(zygote, ["check", *args], env, tmp_path, timeout=90)
    rows: dict[str, tuple[str, str, str | None]] = {}
    last = ""
    for line in done.stdout.splitlines():
        status = line[:5].strip()
        if status in {"ok", "FAIL", "skip"}:
            check, _, detail = line[6:].partition("  ")
            last = check.strip()
            rows[last] = (status, detail.strip(), None)
        elif line.strip().startswith("fix: ") and last:
            rows[last] = (*rows[last][:2], line.strip().removeprefix("fix: "))
    assert TOKEN not in done.stdout + done.stderr, "the token was printed"
    return done.returncode, rows, done.stdout + done.stderr


def environment(name: str, channel: str, role_arn: str | None = None) -> str:
    role = f'role_arn = "{role_arn}"\n' if role_arn else ""
    return (
        f'[environments.{name}]\nregion = "us-east-1"\n{role}channels = ["{channel}"]\n'
        'operators = ["U0ALICE"]\napprovers = ["U0BOB"]\n'
    )


def failing(rows: dict[str, tuple[str, str, str | None]]) -> set[str]:
    return {check for check, (status, _, _) in rows.items() if status == "FAIL"}


def test_every_row_passes_against_the_sandbox_and_the_stand_in(
    tmp_path: Path, sandbox: Sandbox, slack: SlackStandInThread, make_role: Callable[..., str], zygote: Zygote
) -> None:
    role = make_role()
    code, rows, output = run_check(zygote, tmp_path, sandbox, slack, environment("prod", OPS, role))
    assert code == 0, output
    assert set(rows) == {
        "config",
        "slack: auth.test",
        "slack: scopes",
        f"slack prod: {OPS}",
        "aws prod: sts get-caller-identity",
        "aws prod: sts assume-role",
        "aws prod: describe-db-proxies",
        "aws prod: iam-policy.json",
    }, output
    assert all(status == "ok" for status, _, _ in rows.values()), output
    assert f"all {len(manifest_scopes())} scopes" in rows["slack: scopes"][1]
    assert role in rows["aws prod: sts assume-role"][1] and "assumed-role/" in rows["aws prod: sts assume-role"][1]
    assert "orders-proxy" in rows["aws prod: describe-db-proxies"][1]
    statements = json.loads(POLICY)["Statement"]
    actions = sum(len(s["Action"]) for s in statements)
    assert rows["aws prod: iam-policy.json"][1] == (
        f"all {actions} actions of {len(statements)} statements allowed for {role}"
    )
    assert "8 of 8 checks passed." in output


def test_missing_scope_wrong_role_and_absent_bot_fail_with_their_fix(
    tmp_path: Path, sandbox: Sandbox, slack: SlackStandInThread, make_role: Callable[..., str], zygote: Zygote
) -> None:
    slack.set_scopes([scope for scope in manifest_scopes() if scope != "usergroups:read"])
    slack.set_member(DEV, False)
    stranger = make_role(trusted_account="999999999999")  # trusts another account, not the bot
    environments = environment("prod", OPS, stranger) + environment("dev", DEV)
    code, rows, output = run_check(zygote, tmp_path, sandbox, slack, environments)
    assert code == 1, output
    assert failing(rows) == {"slack: scopes", f"slack dev: {DEV}", "aws prod: sts assume-role"}, output
    _, detail, fix = rows["slack: scopes"]
    assert detail == "missing usergroups:read" and fix and "reinstall" in fix
    _, detail, fix = rows[f"slack dev: {DEV}"]
    assert "not a member" in detail and fix and "/invite" in fix
    _, detail, fix = rows["aws prod: sts assume-role"]
    assert stranger in detail and "AccessDenied" in detail and fix and "trust policy" in fix
    assert rows["aws prod: describe-db-proxies"][0] == "skip"  # not run as the wrong role
    assert rows[f"slack prod: {OPS}"][0] == "ok" and rows["aws dev: describe-db-proxies"][0] == "ok"
    assert "3 of 13 checks FAILED" in output


def test_unreachable_aws_endpoint_fails_its_row_with_the_fix(
    tmp_path: Path, sandbox: Sandbox, slack: SlackStandInThread, zygote: Zygote
) -> None:
    closed = "http://127.0.0.1:9"  # discard: nothing listens there
    code, rows, output = run_check(zygote, tmp_path, sandbox, slack, environment("prod", OPS), endpoint=closed)
    assert code == 1, output
    assert failing(rows) == {"aws prod: sts get-caller-identity"}, output
    _, detail, fix = rows["aws prod: sts get-caller-identity"]
    assert closed in detail and "unreachable" in detail and fix and "AWS_ENDPOINT_URL" in fix
    assert rows["slack: auth.test"][0] == "ok"


def test_a_role_that_may_not_simulate_skips_the_policy_row(
    tmp_path: Path, sandbox: Sandbox, slack: SlackStandInThread, make_role: Callable[..., str], zygote: Zygote
) -> None:
    role = make_role(policies=(POLICY,))
    code, rows, output = run_check(
        zygote, tmp_path, sandbox, slack, environment("prod", OPS, role), "--environment", "prod"
    )
    assert code == 0, output
    assert rows["aws prod: iam-policy.json"][:2] == ("skip", "skipped (no permission to simulate)"), output


def test_a_policy_missing_actions_fails_naming_them(
    tmp_path: Path, sandbox: Sandbox, slack: SlackStandInThread, make_role: Callable[..., str], zygote: Zygote
) -> None:
    narrow = json.loads(POLICY)
    # Each statement is simulated with resources and tags that fit it: without the proxy statement, the
    # registrations are not allowed on this environment's proxies (nor is an old blue's deletion without its own).
    gone = {"DetachAndAttachProxyTargetsOfThisEnvironment", "DeleteOldBlueOfThisEnvironment"}
    narrow["Statement"] = [s for s in narrow["Statement"] if s["Sid"] not in gone]
    role = make_role(policies=(json.dumps(narrow), SIMULATE))
    code, rows, output = run_check(zygote, tmp_path, sandbox, slack, environment("prod", OPS, role))
    assert code == 1, output
    assert failing(rows) == {"aws prod: iam-policy.json"}, output
    _, detail, fix = rows["aws prod: iam-policy.json"]
    assert detail.startswith("6 of ") and "actions not allowed" in detail, detail
    assert "DetachAndAttachProxyTargetsOfThisEnvironment: rds:RegisterDBProxyTargets, rds:DeregisterDBProxyTargets" in (
        detail
    )
    assert "DeleteOldBlueOfThisEnvironment: rds:DeleteDBInstance, rds:DeleteDBCluster, rds:CreateDBSnapshot" in detail
    assert fix and fix.startswith(f"attach iam-policy.json to {role}")


def test_check_refuses_a_bad_configuration_with_exit_2(
    tmp_path: Path, sandbox: Sandbox, slack: SlackStandInThread, zygote: Zygote
) -> None:
    code, rows, output = run_check(
        zygote, tmp_path, sandbox, slack, environment("prod", OPS).replace('["C0OPS"]', '"C0OPS"')
    )
    assert code == 2, output
    assert rows["config"][0] == "FAIL" and "environments.prod.channels" in rows["config"][1], output
    assert set(rows) == {"config"}, "nothing else may run on a refused configuration"
