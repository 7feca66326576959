"""The engine wired to the sandbox AWS over HTTP, with a sink that records every event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.aws.gateway import AwsGateway
from bot.config import Settings, load_settings
from bot.planning.requests import RunRequest
from bot.workflow.engine import Engine
from bot.workflow.events import Event
from bot.workflow.gateway_pool import GatewayPool
from sandbox.aws import Sandbox
from sandbox.waiting import async_wait_until
from storage import ApprovalRequest, Store, open_store

REQUESTER, APPROVER, OUTSIDER = "U0ALICE", "U0BOB", "U0MALLORY"


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def emit(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def engine_env(db_path: Path, **extra: str) -> dict[str, str]:
    return {
        "BLUEGREEN_DB": str(db_path),
        "BLUEGREEN_OPERATORS": f"{REQUESTER},{APPROVER}",
        "BLUEGREEN_APPROVERS": f"{APPROVER},U0CAROL",
        "BLUEGREEN_APPROVAL_TTL": "30",
        "BLUEGREEN_TARGET_TIMEOUT": "10",
        "BLUEGREEN_NATIVE_FOLLOW_TIMEOUT": "3",
        # The sandbox has no RDS rate limit and runs simulated time fast: the default budget (10 calls a second)
        # would only slow the suite down. tests/test_proxy_index.py tests the budget itself with low rates.
        "BLUEGREEN_AWS_DESCRIBE_RATE": "1000",
        **extra,
    }


def sandbox_gateways(sandbox: Sandbox) -> GatewayPool:
    return GatewayPool(lambda env: AwsGateway(region="us-east-1", endpoint_url=sandbox.endpoint))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(engine_env(tmp_path / "bluegreen.db"))


@pytest.fixture
def store(settings: Settings) -> Store:
    return open_store(settings.db_path)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def engine(sandbox: Sandbox, settings: Settings, store: Store, sink: RecordingSink) -> AsyncIterator[Engine]:
    engine = Engine(store=store, settings=settings, sinks=[sink], gateways=sandbox_gateways(sandbox))
    yield engine
    await engine.aclose()
    store.close()


def request(kind: str, database: str, **kwargs: Any) -> RunRequest:
    return RunRequest(kind=kind, database=database, requester=kwargs.pop("requester", REQUESTER), **kwargs)  # type: ignore[arg-type]


async def pending_request(store: Store, run_id: str, kind: str | None = None) -> ApprovalRequest:
    def latest() -> ApprovalRequest | None:
        found = store.approvals.latest(run_id, kind)
        return found if found and found.status == "pending" else None

    return await async_wait_until(latest, 10, what=f"an approval request on {run_id}")


async def run_to_end(engine: Engine, req: RunRequest, *, approver: str | None = APPROVER, within: float = 30) -> Any:
    """Start a run, approve every request it makes (as `approver`), and wait for its end."""
    run = await engine.start(req)
    if approver:

        async def approve_all() -> None:
            while True:
                found = engine.store.approvals.latest(run.id)
                if found and found.status == "pending":
                    await engine.approve(found.id, approver)
                await asyncio.sleep(0.05)

        helper = asyncio.ensure_future(approve_all())
        try:
            return await engine.wait(run.id, within)
        finally:
            helper.cancel()
    return await engine.wait(run.id, within)


def calls(sandbox: Sandbox, action: str, *, ok_only: bool = True) -> list[dict[str, Any]]:
    return [
        e
        for e in sandbox.control.timeline()
        if e["kind"] == "call" and e["action"] == action and (not ok_only or e.get("code") is None)
    ]


def targets(rds: Any, proxy: str, target_group: str = "default") -> list[dict[str, Any]]:
    return rds.describe_db_proxy_targets(DBProxyName=proxy, TargetGroupName=target_group)["Targets"]
