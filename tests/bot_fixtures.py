"""The bot side of the Slack-front tests: the real Bolt app served over HTTP and pointed at the Slack stand-in of
`tests.slack_fixtures`, or `python -m bot serve` as a real process.

- `make_settings(...)`: Settings with an ops channel, operators and approvers (ids and user groups).
- `serve_bot(...)`: builds client, resolver, Slack sink, engine and the real app, serves it on a free port and
  points the stand-in at it. `FakeEngine` stands in for the engine where AWS does not matter (parsing, guards,
  signatures, rendering); `sandbox_engine(endpoint)` is the real Engine against the sandbox AWS.
- `bot` (import `bot_fixture`, next to `slack_fixture`): the app on a FakeEngine, with `make_settings`'s defaults.
- `serve_processes(zygote, tmp_path)`: `python -m bot serve` processes, forked from the warm zygote on cue.
"""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot.aws.gateway import AwsGateway
from bot.aws.models import Database, ProxyTarget, Registration
from bot.config import Settings, load_settings
from bot.errors import ApprovalRefused, BadRequest
from bot.planning.plan import Plan, StepSpec
from bot.planning.requests import RunRequest
from bot.workflow.engine import DatabaseStatus, Engine
from bot.workflow.gateway_pool import GatewayPool
from handlers.app import build_app, build_web_app
from handlers.approvers import ApproverResolver
from handlers.thread.sink import SlackThreadSink
from sandbox.slack import SlackStandIn
from sandbox.waiting import WaitTimeout, async_wait_until, wait_until
from storage import ApprovalRequest, RunRecord, Store, open_store
from tests.process_fixtures import ForkedBot, Zygote
from tests.slack_fixtures import ALICE, BOB, BOT_TOKEN, DBA_GROUP, OPS, SIGNING_SECRET, SRE_GROUP

# ---------------------------------------------------------------- the app, served in this process


def bot_environment(
    tmp_path: Path, api_url: str, *, approval_ttl: float = 600, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The bot's environment variables: Slack settings, a production environment for the ops channel, a database
    file under `tmp_path`. Also what a `python -m bot serve` subprocess is started with."""
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
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api_url,
        "BLUEGREEN_CONFIG": str(config),
        "BLUEGREEN_DB": str(tmp_path / "bluegreen.db"),
        "AWS_REGION": "us-east-1",
        "BLUEGREEN_AWS_DESCRIBE_RATE": "1000",  # as in engine_fixtures.engine_env: the sandbox needs no budget
        **(extra or {}),
    }


def make_settings(
    tmp_path: Path, api_url: str, *, approval_ttl: float = 600, extra: dict[str, str] | None = None
) -> Settings:
    env = bot_environment(tmp_path, api_url, approval_ttl=approval_ttl, extra=extra)
    return load_settings(env, require_slack=True)


def fast_client(base_url: str, *, token: str = BOT_TOKEN, timeout: float = 5) -> AsyncWebClient:
    """Like `handlers.app.build_client`, with 50 ms between retries of 5xx and connection errors (a 429 still waits
    its Retry-After: slack_sdk's rate-limit handler ignores the interval calculator)."""
    quick = FixedValueRetryIntervalCalculator(0.05)
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,  # type: ignore[arg-type]  (aiohttp takes float seconds)
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
    slack: SlackStandIn,
    settings: Settings,
    engine_factory: EngineFactory,
    *,
    edit_interval: float = 0.05,
    client_timeout: float = 5,
) -> AsyncIterator[Bot]:
    store = open_store(settings.db_path)
    client = fast_client(slack.base_url, token=settings.slack.bot_token or BOT_TOKEN, timeout=client_timeout)
    approvers = ApproverResolver(client)
    sink = SlackThreadSink(client, store, edit_interval=edit_interval, retry_delays=(0.05, 0.1, 0.2), settings=settings)
    engine = engine_factory(store, settings, [sink], approvers)
    if isinstance(engine, Engine):
        sink.report_to(engine)  # as handlers.app.bot_runtime wires it
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


@pytest.fixture(name="bot")
async def bot_fixture(slack: SlackStandIn, tmp_path: Path) -> AsyncIterator[Bot]:
    """The app under test on a `FakeEngine`, served over HTTP to the `slack` stand-in."""
    async with serve_bot(slack, make_settings(tmp_path, slack.base_url), fake_engine) as served:
        yield served


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

    async def cancel(self, run_id: str, user: str, *, abandon_proxy: bool = False) -> RunRecord:
        self.calls.append(("cancel", (run_id, user, "abandon_proxy") if abandon_proxy else (run_id, user)))
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


# ---------------------------------------------------------------- the real engine on the sandbox AWS

READ_ONLY_AWS_PREFIXES = ("Describe", "List", "GetMetric")


def sandbox_engine(endpoint: str) -> EngineFactory:
    """An `EngineFactory` for the real Engine against the sandbox AWS at `endpoint`."""

    def factory(store: Store, settings: Settings, sinks: list[Any], approvers: ApproverResolver) -> Engine:
        gateways = GatewayPool(lambda env: AwsGateway(region=env.region, endpoint_url=endpoint))
        return Engine(
            store=store, settings=settings, sinks=sinks, approver_check=approvers.approver_check, gateways=gateways
        )

    return factory


def aws_mutations(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calls in a sandbox timeline that could change something (anything but Describe*/List*/GetMetric*)."""
    return [e for e in timeline if e["kind"] == "call" and not e["action"].startswith(READ_ONLY_AWS_PREFIXES)]


# ---------------------------------------------------------------- `python -m bot serve` as a real process

REPO = Path(__file__).resolve().parent.parent


class ServeProcess:
    """`python -m bot serve` on a free port: a process of its own, forked from the warm zygote
    (tests/process_fixtures.py, the imports done once) on `release()`."""

    def __init__(self, zygote: Zygote, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._bot = ForkedBot(zygote, ["serve"], {**env, "PORT": str(self.port)}, log_path)

    async def release(self, *, healthy_within: float = 30) -> None:
        """Starts the process and waits for `GET /healthz`."""
        self._bot.release()
        async with aiohttp.ClientSession() as session:

            async def healthy() -> bool:
                code = self._bot.returncode
                assert code is None, f"the bot exited with {code}:\n{self.output()}"
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/healthz") as response:
                        return response.status == 200
                return False

            try:
                await async_wait_until(healthy, healthy_within, interval=0.05, what="GET /healthz to answer 200")
            except WaitTimeout as waited:
                raise AssertionError(f"{waited}:\n{self.output()}") from None

    async def exited(self, timeout: float = 60) -> int:
        try:
            return await self._bot.ended(timeout)
        except WaitTimeout as waited:
            raise AssertionError(f"{waited}:\n{self.output()}") from None

    def send_signal(self, signum: int) -> None:
        self._bot.send_signal(signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def output(self) -> str:
        return self._bot.output()

    def stop(self) -> None:
        """SIGTERM (the bot stops cleanly), SIGKILL if it does not within 10 s."""
        if self._bot.pid is None or self._bot.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.terminate()
        with contextlib.suppress(WaitTimeout):
            wait_until(lambda: self._bot.returncode is not None, 10, interval=0.05, what="the bot to stop")
        self._bot.stop()  # SIGKILL if still running


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_processes(zygote: Zygote, tmp_path: Path) -> Iterator[Callable[[dict[str, str]], ServeProcess]]:
    """A factory of ServeProcess; every process started here is stopped at the end (and only those)."""
    started: list[ServeProcess] = []

    def start(env: dict[str, str]) -> ServeProcess:
        process = ServeProcess(zygote, env, tmp_path / f"serve-{len(started)}.log")
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()
