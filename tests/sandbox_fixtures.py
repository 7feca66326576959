"""Fixtures for tests that drive the sandbox AWS over HTTP (imported by conftest.py).

- `sandbox_server` (session): one Sandbox on a free port with short durations.
- `sandbox` (function): the same Sandbox, reset first (fresh fleet, no faults, initial config, empty timeline).
- `sandbox_client`: a SandboxClient for the HTTP control surface.
- `aws_client`: a factory of sync boto3 clients pointing at the sandbox, `aws_client("rds", max_attempts=1)`.
- `rds`: a boto3 RDS client with retries disabled, so injected faults surface at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox.aws import Durations, Sandbox
from sandbox.aws.client import SandboxClient
from sandbox.clients import boto3_client

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
FAST_DURATIONS = Durations(
    provisioning_task=0.08,
    switchover=0.3,
    switchover_guardrail_failure=0.1,
    registering=0.25,
    native_follow_registering=0.25,
    deleting=0.2,
    upgrading=0.25,
    restoring=0.15,
    backing_up=0.1,
    instance_creating=0.1,
    proxy_creating=0.15,
    proxy_deleting=0.1,
)


def db_arn(db_id: str) -> str:
    return f"arn:aws:rds:{REGION}:{ACCOUNT_ID}:db:{db_id}"


def cluster_arn(cluster_id: str) -> str:
    return f"arn:aws:rds:{REGION}:{ACCOUNT_ID}:cluster:{cluster_id}"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    with Sandbox(durations=FAST_DURATIONS) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def sandbox_client(sandbox: Sandbox) -> SandboxClient:
    return SandboxClient(sandbox.endpoint)


@pytest.fixture(scope="session")
def _aws_clients(sandbox_server: Sandbox) -> Callable[..., Any]:
    cache: dict[tuple[str, int], Any] = {}

    def factory(service: str, max_attempts: int = 3) -> Any:
        key = (service, max_attempts)
        if key not in cache:
            cache[key] = boto3_client(sandbox_server.endpoint, service, max_attempts)
        return cache[key]

    return factory


@pytest.fixture
def aws_client(sandbox: Sandbox, _aws_clients: Callable[..., Any]) -> Callable[..., Any]:
    return _aws_clients


@pytest.fixture
def rds(aws_client: Callable[..., Any]) -> Any:
    return aws_client("rds", max_attempts=1)
