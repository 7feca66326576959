"""Shared pieces for the Slack-front tests: the real Bolt app served over HTTP, driven through the Slack stand-in.

- `slack` (import `slack_fixture`): a started `SlackStandIn`.
- `make_settings(...)`: Settings with an ops channel, operators and approvers (ids and user groups).
- `serve_bot(...)`: builds client, resolver, Slack sink, engine and the real app, serves it on a free port and
  points the stand-in at it. `FakeEngine` stands in for the engine where AWS does not matter (parsing, guards,
  signatures, rendering); the approval rules run against the real Engine and the sandbox AWS.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import build_app, build_web_app
from bot.approver_resolver import ApproverResolver
from bot.config import Settings, load_settings
from bot.engine import DatabaseStatus
from bot.errors import ApprovalRefused, BadRequest
from bot.models import Database, ProxyTarget, Registration
from bot.plan import Plan, StepSpec
from bot.requests import RunRequest
from bot.sandbox.slack import SlackStandIn
from bot.sinks.slack_thread import SlackThreadSink
from storage import ApprovalRequest, RunRecord, Store, open_store

SIGNING_SECRET = "test-signing-secret-not-real"
BOT_TOKEN = "xoxb-standin"
OPS = "C0OPS"  # the production environment's channel
ELSEWHERE = "C0RANDOM"  # a channel no environment lists
ALICE = "U0ALICE"  # operator (by id), requester
BOB = "U0BOB"  # operator and approver (by id)
CAROL = "U0CAROL"  # approver through the S0SRE user group
DAVE = "U0DAVE"  # neither operator nor approver
ERIN = "U0ERIN"  # operator through the S0DBAS user group
SRE_GROUP = "S0SRE"
DBA_GROUP = "S0DBAS"


def make_settings(
    tmp_path: Path, api_url: str, *, approval_ttl: float = 600, extra: dict[str, str] | None = None
) -> Settings:
    config = tmp_path / "bluegreen.toml"
    config.write_text(
        "[environments.production]\n"
        'region = "us-east-1"\n'
        f'channels = ["{OPS}"]\n'
        f'operators = ["{ALICE}", "{BOB}", "{DBA_GROUP}"]\n'
        f'approvers = ["{BOB}", "{SRE_GROUP}"]\n'
        f"approval_ttl = {approval_ttl}\n"
        "switchover_timeout = 60\n"
    )
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api_url,
        "BLUEGREEN_CONFIG": str(config),
        "BLUEGREEN_DB": str(tmp_path / "bluegreen.db"),
        "AWS_REGION": "us-east-1",
        **(extra or {}),
    }
    return load_settings(env, require_slack=True)


def fast_client(base_url: str) -> AsyncWebClient:
    """Like `bot.app.build_client`, with retry waits of 50 ms instead of Retry-After seconds."""
    quick = FixedValueRetryIntervalCalculator(0.05)
    return AsyncWebClient(
        token=BOT_TOKEN,
        base_url=base_url,
        timeout=5,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=5, interval_calculator=quick),
            AsyncServerErrorRetryHandler(max_retry_count=3, interval_calculator=quick),
            AsyncConnectionErrorRetryHandler(max_retry_count=3, interval_calculator=quick),
        ],
    )


@dataclass
class Bot:
    """The app under test, as served over HTTP."""

    settings: Settings
    store: Store
    client: AsyncWebClient
    approvers: ApproverResolver
    sink: SlackThreadSink
    engine: Any
    url: str


EngineFactory = Callable[[Store, Settings, list[Any], ApproverResolver], Any]


@contextlib.asynccontextmanager
async def serve_bot(
    slack: SlackStandIn, settings: Settings, engine_factory: EngineFactory, *, edit_interval: float = 0.05
) -> AsyncIterator[Bot]:
    store = open_store(settings.db_path)
    client = fast_client(slack.base_url)
    approvers = ApproverResolver(client)
    sink = SlackThreadSink(client, store, edit_interval=edit_interval, retry_delays=(0.05, 0.1, 0.2))
    engine = engine_factory(store, settings, [sink], approvers)
    app = build_app(engine, settings, client=client, approvers=approvers)
    runner = web.AppRunner(build_web_app(app, engine), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    slack.app_url = f"http://127.0.0.1:{port}/slack/events"
    try:
        yield Bot(settings, store, client, approvers, sink, engine, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
        if hasattr(engine, "aclose"):
            await engine.aclose()
        await sink.aclose(grace=2)
        store.close()


@pytest.fixture(name="slack")
async def slack_fixture() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN) as standin:
        standin.set_usergroup(SRE_GROUP, [CAROL])
        standin.set_usergroup(DBA_GROUP, [ERIN])
        yield standin


# ---------------------------------------------------------------- a recording engine for Slack-only tests

ORDERS = Database(
    identifier="orders-pg",
    kind="instance",
    arn="arn:aws:rds:us-east-1:123456789012:db:orders-pg",
    engine="postgres",
    engine_version="15.7",
    status="available",
)
LEDGER = Database(
    identifier="ledger-aurora",
    kind="cluster",
    arn="arn:aws:rds:us-east-1:123456789012:cluster:ledger-aurora",
    engine="aurora-postgresql",
    engine_version="15.4",
    status="available",
    members=("ledger-aurora-1",),
)
KNOWN = {ORDERS.identifier: ORDERS, LEDGER.identifier: LEDGER}


@dataclass
class FakeEngine:
    """Implements the Engine facade's signatures and records what the handlers asked for. Knows two databases."""

    store: Store
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def _database(self, identifier: str) -> Database:
        if identifier not in KNOWN:
            raise BadRequest(f"no DB instance or Aurora cluster named `{identifier}`.", fix="Check the spelling.")
        return KNOWN[identifier]

    def _active(self, database: str) -> RunRecord | None:
        active = self.store.runs.list(active_only=True, database=database, limit=1)
        return active[0] if active else None

    async def status(self, database: str, environment: str | None = None) -> DatabaseStatus:
        self.calls.append(("status", (database, environment)))
        found = self._database(database)
        target = ProxyTarget(
            proxy="orders-proxy",
            target_group="default",
            rds_resource_id=database,
            type="RDS_INSTANCE",
            role="READ_WRITE",
            state="AVAILABLE",
        )
        return DatabaseStatus(found, [Registration("orders-proxy")], [target], None, self._active(database))

    async def plan(self, request: RunRequest) -> Plan:
        self.calls.append(("plan", (request,)))
        self._database(request.database)
        steps = (
            StepSpec(
                "deregister",
                "Detach orders-pg from orders-proxy",
                commands=(
                    "aws rds deregister-db-proxy-targets "
                    "--db-proxy-name orders-proxy --db-instance-identifiers orders-pg",
                ),
                disruptive=True,
            ),
            StepSpec("create_deployment", "Create the blue/green deployment"),
        )
        return Plan(
            request.kind,
            request.database,
            "workaround",
            "RDS Proxy is a target",
            steps,
            {"engine": "postgres 15.7"},
            "about 5 s per proxy",
        )

    async def start(self, request: RunRequest) -> RunRecord:
        self.calls.append(("start", (request,)))
        self._database(request.database)
        active = self._active(request.database)
        if active:
            raise BadRequest(f"run {active.id} is already active on {request.database}.", fix="Wait for it.")
        return self.store.runs.create(
            kind=request.kind,
            database=request.database,
            params=request.params(),
            requester=request.requester,
            environment=request.environment,
            channel=request.channel,
        )

    async def approve(self, request_id: str, user: str, fingerprint: str | None = None) -> ApprovalRequest:
        self.calls.append(("approve", (request_id, user, fingerprint)))
        raise ApprovalRefused("no such request")

    async def reject(self, request_id: str, user: str, fingerprint: str | None = None) -> ApprovalRequest:
        self.calls.append(("reject", (request_id, user, fingerprint)))
        raise ApprovalRefused("no such request")

    async def cancel(self, run_id: str, user: str) -> RunRecord:
        self.calls.append(("cancel", (run_id, user)))
        run = self.store.runs.get(run_id)
        if run is None:
            raise BadRequest(f"no run `{run_id}`.", fix="`runs` lists the active runs.")
        return run

    def runs(self, *, active_only: bool = False, limit: int = 20) -> list[RunRecord]:
        self.calls.append(("runs", ()))
        return self.store.runs.list(active_only=active_only, limit=limit)

    async def databases(self, environment: str | None = None) -> list[Database]:
        self.calls.append(("databases", (environment,)))
        return list(KNOWN.values())

    async def upgrade_targets(self, database: str, environment: str | None = None) -> list[str]:
        self.calls.append(("upgrade_targets", (database, environment)))
        return ["16.4", "17.2"] if database == "orders-pg" else ["16.6"]

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [args for called, args in self.calls if called == name]


def fake_engine(store: Store, settings: Settings, sinks: list[Any], approvers: ApproverResolver) -> FakeEngine:
    return FakeEngine(store)
