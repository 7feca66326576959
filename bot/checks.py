"""The rows of `python -m bot check` that need no Slack: the configuration, and per environment AWS (who the bot is,
the role it assumes, `describe-db-proxies`, and, where it may simulate, every statement of `iam-policy.json` with
resources and tags that fit it: `bot/iam_statements.py`).

Each check is a `Row`: passed, failed (with the fix), or skipped (with why). `render` prints them one per line.
The Slack rows and the command itself are in `handlers/check.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError

from bot import errors
from bot.aws.identity import IdentityGateway, simulation_principal
from bot.config import Environment, Settings
from bot.iam_statements import simulations

IAM_POLICY = Path(__file__).resolve().parent.parent / "iam-policy.json"
NO_SIMULATE = "skipped (no permission to simulate)"
Status = Literal["ok", "fail", "skip"]
GatewayFactory = Callable[[Environment, bool], IdentityGateway]  # (environment, assume its role?) -> gateway


@dataclass(frozen=True, slots=True)
class Row:
    check: str
    status: Status
    detail: str
    fix: str | None = None


def render(rows: Sequence[Row]) -> str:
    """The rows as a table, each failure followed by its fix, then a one-line verdict."""
    width = max((len(row.check) for row in rows), default=10) + 2
    labels = {"ok": "ok", "fail": "FAIL", "skip": "skip"}
    lines = []
    for row in rows:
        lines.append(f"{labels[row.status]:<5} {row.check:<{width}}{row.detail}")
        if row.fix and row.status != "ok":
            lines.append(f"{'':<5} {'':<{width}}fix: {row.fix}")
    failed = sum(row.status == "fail" for row in rows)
    skipped = sum(row.status == "skip" for row in rows)
    passed = len(rows) - failed - skipped
    verdict = f"{failed} of {len(rows)} checks FAILED" if failed else f"{passed} of {len(rows)} checks passed"
    lines.append(verdict + (f" ({skipped} skipped)." if skipped else "."))
    return "\n".join(lines)


def config_row(settings: Settings, config_path: str | None) -> Row:
    source = config_path or "the BLUEGREEN_* variables (no BLUEGREEN_CONFIG)"
    names = ", ".join(settings.environments)
    return Row("config", "ok", f"{source}: {len(settings.environments)} environment(s): {names}")


def default_gateway(environment: Environment, assume: bool) -> IdentityGateway:
    return IdentityGateway(region=environment.region, role_arn=environment.role_arn if assume else None)


def _failure(exc: Exception) -> tuple[str, str]:
    """(what happened, the fix) for an AWS call that failed."""
    code = getattr(exc, "code", None) or type(exc).__name__
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if code == "NoRegionError":
        return "no AWS region", "set `region` for the environment, or AWS_REGION"
    if code in {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}:
        return "no AWS credentials", "give the bot credentials: an instance or task role, AWS_PROFILE, or access keys"
    if code in {"InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "UnrecognizedClientException"}:
        return f"AWS refused the credentials ({code})", "renew or replace the bot's AWS credentials"
    if getattr(exc, "http_status", None) == 599 or isinstance(exc, BotoCoreError):
        where = endpoint or "AWS"
        fix = "check the network path to AWS (proxy, VPC endpoint, firewall)"
        if endpoint:
            fix += "; AWS_ENDPOINT_URL points elsewhere: unset it to reach AWS itself"
        return f"{where} is unreachable ({code})", fix
    cause = exc if isinstance(exc, ClientError) else exc.__cause__
    if isinstance(cause, ClientError):  # AWS's own words, without the gateway's advice
        message = f"{code}: {cause.response.get('Error', {}).get('Message', '')}"
    else:
        message = getattr(exc, "message", None) or str(exc)
    return message.splitlines()[0][:240], "see the AWS error above"


async def aws_rows(environment: Environment, factory: GatewayFactory = default_gateway) -> list[Row]:
    """Identity, assumed role, describe-db-proxies and the IAM policy simulation for one environment."""
    name = f"aws {environment.name}"
    rows: list[Row] = []
    async with factory(environment, False) as gateway:
        try:
            own = await gateway.caller_identity()
        except (errors.AwsError, BotoCoreError, ClientError) as exc:
            problem, fix = _failure(exc)
            rows.append(Row(f"{name}: sts get-caller-identity", "fail", problem, fix))
            return [*rows, *_not_checked(name, environment, "AWS did not say who the bot is")]
        rows.append(Row(f"{name}: sts get-caller-identity", "ok", f"{own.arn} (account {own.account})"))
        if not environment.role_arn:
            rows.append(Row(f"{name}: sts assume-role", "skip", "no role_arn: the bot acts as the identity above"))
            rows.append(await _proxies_row(name, environment, gateway))
            principal = simulation_principal(own.arn) or own.arn
            rows.append(await _policy_row(name, gateway, principal, environment, own.account))
            return rows
    async with factory(environment, True) as assumed:
        try:
            acting = await assumed.caller_identity()
        except (errors.AwsError, BotoCoreError, ClientError) as exc:
            problem, _ = _failure(exc)
            fix = (
                f"let {own.arn} assume the role (its trust policy must allow it sts:AssumeRole), or correct `role_arn`"
            )
            rows.append(Row(f"{name}: sts assume-role", "fail", f"{environment.role_arn}: {problem}", fix))
            return [*rows, *_not_checked(name, environment, "the role could not be assumed", role=False)]
        rows.append(Row(f"{name}: sts assume-role", "ok", f"{environment.role_arn} as {acting.arn}"))
        rows.append(await _proxies_row(name, environment, assumed))
        rows.append(await _policy_row(name, assumed, environment.role_arn, environment, acting.account))
    return rows


def _not_checked(name: str, environment: Environment, why: str, *, role: bool = True) -> list[Row]:
    checks = (["sts assume-role"] if role and environment.role_arn else []) + ["describe-db-proxies", "iam-policy.json"]
    return [Row(f"{name}: {check}", "skip", f"not checked: {why}") for check in checks]


async def _proxies_row(name: str, environment: Environment, gateway: IdentityGateway) -> Row:
    check = f"{name}: describe-db-proxies"
    try:
        proxies = await gateway.proxies()
    except (errors.AwsError, BotoCoreError, ClientError) as exc:
        problem, fix = _failure(exc)
        if isinstance(exc, errors.AccessDenied):
            fix = "attach iam-policy.json to the bot's principal (rds:DescribeDBProxies)"
        return Row(check, "fail", problem, fix)
    region = environment.region or "the default region"
    shown = ", ".join(proxy.name for proxy in proxies[:5]) + (", ..." if len(proxies) > 5 else "")
    return Row(check, "ok", f"{len(proxies)} proxies in {region}" + (f": {shown}" if proxies else ""))


async def _policy_row(
    name: str, gateway: IdentityGateway, principal: str, environment: Environment, account: str
) -> Row:
    """Every statement of iam-policy.json simulated for `principal`; the actions any statement's simulation does not
    allow, by statement."""
    check = f"{name}: iam-policy.json"
    if not IAM_POLICY.exists():
        return Row(check, "skip", f"skipped ({IAM_POLICY.name} is not installed next to the package)")
    if simulation_principal(principal) is None:
        return Row(check, "skip", f"skipped ({principal} is not a user or role the simulator can evaluate)")
    missing: dict[str, list[str]] = {}
    checked = statements = 0
    for simulation in simulations(IAM_POLICY, region=environment.region or "us-east-1", account=account):
        try:
            decisions = await gateway.simulate(principal, simulation.actions, simulation.resources, simulation.context)
        except errors.AccessDenied:
            return Row(
                check, "skip", NO_SIMULATE, f"to check the policy, allow iam:SimulatePrincipalPolicy on {principal}"
            )
        except (errors.AwsError, BotoCoreError, ClientError) as exc:
            code = getattr(exc, "code", "")
            if code in {"NoSuchEntity", "InvalidInput"}:
                return Row(check, "skip", f"skipped (the simulator cannot evaluate {principal}: {code})")
            problem, fix = _failure(exc)
            return Row(check, "fail", f"SimulatePrincipalPolicy: {problem}", fix)
        checked += len(simulation.actions)
        statements += 1
        denied = [action for action in simulation.actions if decisions.get(action) != "allowed"]
        if denied:
            missing[simulation.sid] = denied
    if missing:
        count = sum(len(actions) for actions in missing.values())
        listed = "; ".join(f"{sid}: {', '.join(actions)}" for sid, actions in missing.items())
        return Row(
            check,
            "fail",
            f"{count} of {checked} actions not allowed ({listed})",
            f"attach iam-policy.json to {principal} (and tag it bluegreen-bot:environment; see the README)",
        )
    return Row(check, "ok", f"all {checked} actions of {statements} statements allowed for {principal}")
