"""The bot under the shipped IAM policy: its role in the sandbox's IAM, tagged for `production`, and an engine that
assumes it (`role_arn`), with the sandbox enforcing `iam-policy.json` on that role's calls alone.

- `bot_role` (per worker): the role, trusted by the account, tagged `bluegreen-bot:environment=production`. The
  sandbox's IAM survives resets, so it is made once.
- `iam_engine`: the engine (rehearsals allowed) whose environment assumes `bot_role`, through `gateway_pool`; the
  policy is in force.
- `role_client(sandbox, role, service)`: a boto3 client signed as a session of the role.
- Reading the timeline: `grants` (each authorization of each allowed call and the statements that allowed it),
  `needed` (the statements some authorization needed alone), `refusals` (what the policy denied).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from bot.aws.gateway import AwsGateway
from bot.config import Settings, load_settings
from bot.workflow.engine import Engine
from bot.workflow.gateway_pool import GatewayPool
from sandbox.aws import Sandbox
from storage import open_store
from tests.engine_fixtures import RecordingSink, engine_env
from tests.sandbox_fixtures import ACCOUNT_ID, REGION

REPO = Path(__file__).resolve().parent.parent
POLICY: dict[str, Any] = json.loads((REPO / "iam-policy.json").read_text())
STATEMENTS = {s["Sid"]: s for s in POLICY["Statement"]}
ENVIRONMENT_TAG = "bluegreen-bot:environment"


def policy_without(sid: str) -> dict[str, Any]:
    return {**POLICY, "Statement": [s for s in POLICY["Statement"] if s["Sid"] != sid]}


def actions_of(sid: str) -> set[str]:
    return set(STATEMENTS[sid]["Action"])


@pytest.fixture(scope="session")
def bot_role(_aws_clients: Callable[..., Any]) -> str:
    trust = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "sts:AssumeRole"}
    created = _aws_clients("iam").create_role(
        RoleName=f"bluegreen-bot-production-{secrets.token_hex(3)}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]}),
        Tags=[{"Key": ENVIRONMENT_TAG, "Value": "production"}],
    )
    return str(created["Role"]["Arn"])


@pytest.fixture
def iam_settings(tmp_path: Path, bot_role: str) -> Settings:
    settings = load_settings(engine_env(tmp_path / "bluegreen.db", BLUEGREEN_REHEARSALS="true"))
    environments = {name: dataclasses.replace(env, role_arn=bot_role) for name, env in settings.environments.items()}
    return dataclasses.replace(settings, environments=environments)


@pytest.fixture
def gateway_pool(sandbox: Sandbox) -> GatewayPool:
    return GatewayPool(lambda env: AwsGateway(region=REGION, endpoint_url=sandbox.endpoint, role_arn=env.role_arn))


@pytest.fixture
async def iam_engine(
    sandbox: Sandbox, iam_settings: Settings, bot_role: str, gateway_pool: GatewayPool
) -> AsyncIterator[Engine]:
    sandbox.control.set_iam_policy(POLICY, principal=bot_role)
    store = open_store(iam_settings.db_path)
    engine = Engine(store=store, settings=iam_settings, sinks=[RecordingSink()], gateways=gateway_pool)
    yield engine
    await engine.aclose()
    store.close()


def role_client(sandbox: Sandbox, role: str, service: str = "rds") -> Any:
    sts = boto3.client("sts", endpoint_url=sandbox.endpoint, region_name=REGION)
    granted = sts.assume_role(RoleArn=role, RoleSessionName="iam-test")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=granted["AccessKeyId"],
        aws_secret_access_key=granted["SecretAccessKey"],
        aws_session_token=granted["SessionToken"],
        region_name=REGION,
    )
    return session.client(service, endpoint_url=sandbox.endpoint, config=Config(retries={"total_max_attempts": 1}))


def grants(sandbox: Sandbox, since: int = 0) -> list[dict[str, Any]]:
    """Each authorization of each call the policy allowed: {action, resource, allowed_by}."""
    return [
        grant
        for entry in sandbox.control.timeline(since=since)
        if entry["kind"] == "call" and entry.get("code") is None
        for grant in entry.get("iam") or []
    ]


def needed(sandbox: Sandbox, since: int = 0) -> set[str]:
    """The statements that alone allowed some authorization: without any of them, something was refused."""
    return {grant["allowed_by"][0] for grant in grants(sandbox, since) if len(grant["allowed_by"]) == 1}


def refusals(sandbox: Sandbox, since: int = 0) -> list[dict[str, Any]]:
    """What the policy denied: {action, resource} of each refused call."""
    return [
        denied
        for entry in sandbox.control.timeline(since=since)
        if entry["kind"] == "call" and entry.get("code") == "AccessDenied"
        for denied in entry.get("iam") or []
    ]
