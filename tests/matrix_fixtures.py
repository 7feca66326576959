"""Helpers for the crash and fault matrices: the matrix read from the engine's own plans, bot processes that are
started early and released on cue, an approver, and the checks of the final AWS state through boto3."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name

from bot.config import load_settings
from bot.errors import ApprovalRefused
from bot.planning.plan import Plan, StepSpec
from bot.planning.requests import RunRequest
from bot.workflow.engine import Engine
from sandbox.aws import Sandbox
from sandbox.clients import boto3_client
from sandbox.waiting import WaitTimeout, async_wait_until, wait_until
from storage import Store, open_store
from tests.engine_fixtures import APPROVER, engine_env, request, sandbox_gateways
from tests.sandbox_fixtures import FAST_DURATIONS

REPO = Path(__file__).resolve().parent.parent
DATABASE = "orders-pg"
TARGET_VERSION = "16.4"
STRATEGIES = ("workaround", "native")
READ_ONLY_PREFIXES = ("Describe", "List", "Get", "Download")
SETTLE_TIMEOUT = 60.0

# `python -m bot ARGS` (bot/__main__.py calls bot.cli.main()), except that the interpreter and the imports (~1.5 s)
# are done before the test releases the process: the matrix then costs AWS time, not start-up time.
LAUNCHER = "import sys\nimport bot.cli\nsys.stdin.readline()\nsys.exit(bot.cli.main(sys.argv[1:]))"


# ----- the matrix, read from the plans ------------------------------------------------------------------------------


@functools.cache
def _cli_names_of_mutations() -> dict[str, str]:
    """`deregister-db-proxy-targets` -> `DeregisterDBProxyTargets`, for every mutating RDS operation."""
    model = botocore.session.get_session().get_service_model("rds")
    return {
        xform_name(op).replace("_", "-"): op for op in model.operation_names if not op.startswith(READ_ONLY_PREFIXES)
    }


def mutation_in(command: str) -> str | None:
    """The mutating action of an `aws rds ...` command line, None for a read."""
    parts = command.split()
    return _cli_names_of_mutations().get(parts[2]) if parts[:2] == ["aws", "rds"] and len(parts) > 2 else None


def mutations_of(spec: StepSpec) -> list[str]:
    """The mutating AWS actions a step makes, read from its `aws rds ...` equivalents (each action once)."""
    return list(dict.fromkeys(action for command in spec.commands if (action := mutation_in(command))))


@dataclass(frozen=True)
class Boundary:
    failpoint: str  # a BLUEGREEN_FAILPOINT value
    detached: bool  # a proxy has no available target (in the bot's view) when the process dies here


def boundaries(plan: Plan) -> list[Boundary]:
    """Every step boundary of a plan in order: after each mutation of a step, then after the step itself."""
    found: list[Boundary] = []
    detached = False
    for spec in plan.steps:
        for action in mutations_of(spec):
            detached = detached or action == "DeregisterDBProxyTargets"
            found.append(Boundary(f"after-call:{action}", detached))
        if spec.kind == "reattach":
            detached = False  # the step ends once every target was seen AVAILABLE
        found.append(Boundary(f"after-step:{spec.kind}", detached))
    return found


def expected_mutations(plan: Plan) -> dict[str, int]:
    """How many successful calls of each mutation the plan makes (one command per proxy for (de)registrations)."""
    actions = [mutation_in(command) for spec in plan.steps for command in spec.commands]
    return dict(Counter(action for action in actions if action))


_shared_plans_dir: Path | None = None  # under xdist: the run's temporary directory, which all its workers share


def share_plans_in(directory: Path) -> None:
    """Plan once per test run: the first xdist worker to need the plans makes them, the others read them from
    `directory` (called by tests/conftest.py with the run's own temporary directory)."""
    global _shared_plans_dir
    _shared_plans_dir = directory


@functools.cache  # the crash and SIGTERM matrices share one planning per process
def matrix_plans() -> dict[tuple[str, str], Plan]:
    """The create and switchover plans of both strategies for orders-pg, planned by the engine itself on a
    short-lived sandbox (moto allows one sandbox per process; this runs at collection, before the session one).
    Under xdist, once per run rather than once per worker (about 1.3 s of CPU each): see `share_plans_in`."""
    if _shared_plans_dir is None:
        return asyncio.run(_matrix_plans())
    with (_shared_plans_dir / "matrix-plans.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait here while the first one plans
        made = _shared_plans_dir / "matrix-plans.pickle"
        if made.exists():
            return pickle.loads(made.read_bytes())
        plans = asyncio.run(_matrix_plans())
        made.write_bytes(pickle.dumps(plans))
        return plans


async def _matrix_plans() -> dict[tuple[str, str], Plan]:
    plans: dict[tuple[str, str], Plan] = {}
    with tempfile.TemporaryDirectory() as tmp, Sandbox(durations=FAST_DURATIONS, proxy_mode="native") as sandbox:
        store = open_store(None)
        engine = Engine(
            store=store, settings=load_settings(engine_env(Path(tmp) / "plan.db")), gateways=sandbox_gateways(sandbox)
        )
        try:
            for strategy in STRATEGIES:
                plans["create", strategy] = await engine.plan(_create_request(strategy))
            _create_deployment_directly(sandbox)
            for strategy in STRATEGIES:
                plans["switchover", strategy] = await engine.plan(request("switchover", DATABASE, mode=strategy))
        finally:
            await engine.aclose()
            store.close()
    return plans


def _create_deployment_directly(sandbox: Sandbox) -> None:
    """An AVAILABLE deployment for the switchover plans, faster than a run (the native sandbox allows the proxy)."""
    rds = boto3_client(sandbox.endpoint, "rds")
    source = rds.describe_db_instances(DBInstanceIdentifier=DATABASE)["DBInstances"][0]["DBInstanceArn"]
    rds.create_blue_green_deployment(BlueGreenDeploymentName="matrix-plans", Source=source)

    def available() -> bool:
        deployments = rds.describe_blue_green_deployments()["BlueGreenDeployments"]
        return bool(deployments) and deployments[0]["Status"] == "AVAILABLE"

    wait_until(available, timeout=SETTLE_TIMEOUT, what="the deployment for the switchover plans")


def _create_request(strategy: str) -> RunRequest:
    return request("create", DATABASE, mode=strategy, engine_version=TARGET_VERSION)


# ----- bot processes --------------------------------------------------------------------------------------------------


def bot_env(sandbox: Sandbox, db_path: str, failpoint: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLUEGREEN_")}
    env.update(engine_env(Path(db_path), **extra))
    env.update(AWS_ENDPOINT_URL=sandbox.endpoint, AWS_DEFAULT_REGION="us-east-1", PYTHONUNBUFFERED="1")
    if failpoint:
        env["BLUEGREEN_FAILPOINT"] = failpoint
    return env


class BotProcess:
    """`python -m bot ARGS`, started at once and held before `main()` until `release()`."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.released_at: float | None = None

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.close()
        self.released_at = time.time()

    async def ended(self, timeout: float = SETTLE_TIMEOUT) -> int:
        """Wait for the process to exit (and reap it, so its pid no longer looks alive); return its exit code."""
        try:
            await async_wait_until(
                lambda: self.proc.poll() is not None, timeout, what=f"`python -m bot {' '.join(self.args)}` to exit"
            )
        except WaitTimeout:
            self.stop()
            raise
        return self.proc.returncode

    async def killed_at_failpoint(self, timeout: float = SETTLE_TIMEOUT) -> float:
        code = await self.ended(timeout)
        assert code == -signal.SIGKILL, f"expected SIGKILL at the failpoint, got exit {code}:\n{self.output()}"
        return time.time()

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


@contextlib.contextmanager
def bot_processes(tmp_path: Path) -> Iterator[Any]:
    """A factory of BotProcess; whatever is still running at the end is killed (only processes started here)."""
    started: list[BotProcess] = []

    def start(args: list[str], env: dict[str, str]) -> BotProcess:
        process = BotProcess(args, env, tmp_path / f"bot-{len(started)}.log")
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@contextlib.asynccontextmanager
async def approving(store: Store, engine: Engine, approver: str = APPROVER) -> AsyncIterator[None]:
    """Approve every pending approval request of every active run, whichever process drives the run."""

    async def approve_forever() -> None:
        while True:
            for run in store.runs.list(active_only=True, limit=20):
                pending = store.approvals.latest(run.id)
                if pending and pending.status == "pending":
                    with contextlib.suppress(ApprovalRefused):  # decided meanwhile
                        await engine.approve(pending.id, approver)
            await asyncio.sleep(0.05)

    task = asyncio.ensure_future(approve_forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# ----- AWS state and call counts ------------------------------------------------------------------------------------


def successful_calls(sandbox: Sandbox, since_seq: int = 0) -> dict[str, int]:
    """Successful mutating calls per action in the sandbox timeline after `since_seq`."""
    counts: dict[str, int] = {}
    for entry in sandbox.control.timeline(since=since_seq):
        action = entry.get("action") or ""
        if entry["kind"] == "call" and entry.get("code") is None and not action.startswith(READ_ONLY_PREFIXES):
            counts[action] = counts.get(action, 0) + 1
    return counts


def all_calls(sandbox: Sandbox, action: str, since_seq: int = 0) -> list[dict[str, Any]]:
    """Every call of `action` after `since_seq`, failed or not."""
    return [e for e in sandbox.control.timeline(since=since_seq) if e["kind"] == "call" and e["action"] == action]


def last_seq(sandbox: Sandbox) -> int:
    timeline = sandbox.control.timeline()
    return timeline[-1]["seq"] if timeline else 0


def aws_no_target_period(sandbox: Sandbox, proxy: str, database: str, since_seq: int) -> tuple[float, float]:
    """When AWS removed the database from the proxy and when it was AVAILABLE there again, by the sandbox's own
    record, as wall-clock times (the timeline uses time.monotonic(); the windows use time.time())."""
    to_wall = time.time() - time.monotonic()
    resource = f"proxy-target:{proxy}/default/{database}"
    changes = [
        (e["t"] + to_wall, e["state"])
        for e in sandbox.control.timeline(since=since_seq)
        if e["kind"] == "transition" and e.get("resource") == resource
    ]
    removed = next(t for t, state in changes if state == "DEREGISTERED")
    available = [t for t, state in changes if state == "AVAILABLE" and t > removed]
    assert available, f"AWS never showed {database} AVAILABLE on {proxy} again: {changes}"
    return removed, available[-1]


def audited_mutations(store: Store, run_id: str) -> dict[str, int]:
    """Successful AWS mutations the run's audit log records, per action."""
    counts: dict[str, int] = {}
    for entry in store.audit.list(run_id=run_id):
        if entry.action.startswith("aws:") and entry.detail.get("outcome") == "ok":
            action = entry.action.removeprefix("aws:")
            counts[action] = counts.get(action, 0) + 1
    return counts


def instance(rds: Any, identifier: str) -> dict[str, Any]:
    return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


def proxy_target_states(rds: Any, proxy: str) -> dict[str, str]:
    """RdsResourceId -> health state of every instance target of the proxy's default target group."""
    targets = rds.describe_db_proxy_targets(DBProxyName=proxy, TargetGroupName="default")["Targets"]
    return {t["RdsResourceId"]: t["TargetHealth"]["State"] for t in targets if t["Type"] == "RDS_INSTANCE"}


def assert_proxy_serves(rds: Any, proxy: str, database: str) -> None:
    """The proxy's only instance target is `database`, AVAILABLE, on the instance that now has that name."""
    targets = rds.describe_db_proxy_targets(DBProxyName=proxy, TargetGroupName="default")["Targets"]
    entries = [t for t in targets if t["Type"] == "RDS_INSTANCE"]
    assert [(t["RdsResourceId"], t["TargetHealth"]["State"]) for t in entries] == [(database, "AVAILABLE")], entries
    address = instance(rds, database)["Endpoint"]["Address"]
    assert entries[0]["Endpoint"] == address, (entries[0], address)


def deployment_named(rds: Any, name: str) -> dict[str, Any]:
    deployments = rds.describe_blue_green_deployments()["BlueGreenDeployments"]
    found = [d for d in deployments if d["BlueGreenDeploymentName"] == name]
    assert len(found) == 1, f"expected one deployment named {name}, found {found}"
    return found[0]


def assert_created(rds: Any, deployment_name: str, database: str = DATABASE, version: str = TARGET_VERSION) -> None:
    """One AVAILABLE deployment with that name, from the database, to a green at the requested version."""
    deployment = deployment_named(rds, deployment_name)
    blue = instance(rds, database)
    assert deployment["Status"] == "AVAILABLE", deployment
    assert deployment["Source"] == blue["DBInstanceArn"]
    green = instance(rds, deployment["Target"].rsplit(":", 1)[-1])
    assert green["EngineVersion"] == version
    assert blue["EngineVersion"] != version


def assert_switched(rds: Any, deployment_name: str, database: str = DATABASE, version: str = TARGET_VERSION) -> None:
    """The deployment completed, green carries the original name at the new version, blue is `-old1`."""
    deployment = deployment_named(rds, deployment_name)
    assert deployment["Status"] == "SWITCHOVER_COMPLETED", deployment
    assert instance(rds, database)["EngineVersion"] == version
    assert instance(rds, f"{database}-old1")["EngineVersion"] != version
